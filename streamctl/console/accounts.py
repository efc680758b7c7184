"""Console accounts: creation, memory-hard password hashes (scrypt) and sign-in checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from ..events import now
from ..store import ROLES, Store

LANGS = ("vi", "en")
USER_ROLES = tuple(r for r in ROLES if r != "overlay")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024

# scrypt cost: 16 MiB of memory and ~50 ms per hash on a 2-core machine; stored with each hash so it can grow.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_MAXMEM = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=_MAXMEM)


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$hash` with a fresh 16-byte salt."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time comparison of `password` against a stored hash; malformed hashes never match."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# Checked against when the user does not exist, so a wrong name costs as much time as a wrong password.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def _check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValueError(f"the password must have {MIN_PASSWORD} to {MAX_PASSWORD} characters")


def add_user(store: Store, name: str, role: str, password: str, lang: str = "vi") -> int:
    """Create a console account; ValueError says what is wrong with the name, role, password or language."""
    if not NAME_RE.match(name or ""):
        raise ValueError(f"user name {name!r} is not valid, expected 1-64 letters, digits or . _ @ - "
                         "(starting with a letter or digit)")
    if role not in USER_ROLES:
        raise ValueError(f"role {role!r} is not valid, expected one of {', '.join(USER_ROLES)}")
    if lang not in LANGS:
        raise ValueError(f"language {lang!r} is not valid, expected one of {', '.join(LANGS)}")
    _check_password(password)
    hashed = hash_password(password)
    with store.transaction() as db:
        if db.execute("SELECT 1 FROM users WHERE username = ?", (name,)).fetchone():
            raise ValueError(f"user {name!r} already exists")
        cur = db.execute("INSERT INTO users (username, password_hash, role, lang, created_at) VALUES (?,?,?,?,?)",
                         (name, hashed, role, lang, now()))
    return int(cur.lastrowid)


def authenticate(store: Store, name: str, password: str) -> dict | None:
    """The user's row (id, username, role, lang) when the password matches, else None."""
    row = store.query_one("SELECT id, username, role, lang, password_hash FROM users WHERE username = ?", (name,))
    if len(password) > MAX_PASSWORD:
        return None
    ok = verify_password(password, row["password_hash"] if row else _DUMMY_HASH)
    if row is None or not ok:
        return None
    return {"id": row["id"], "username": row["username"], "role": row["role"], "lang": row["lang"]}


def set_lang(store: Store, user_id: int, lang: str) -> None:
    """Remember the console language a user chose."""
    if lang not in LANGS:
        raise ValueError(f"language {lang!r} is not valid, expected one of {', '.join(LANGS)}")
    with store.transaction() as db:
        db.execute("UPDATE users SET lang = ? WHERE id = ?", (lang, user_id))


def official_names(store: Store) -> list[str]:
    """Officials' account names, offered when a moderator assigns a question."""
    return [r["username"] for r in store.query("SELECT username FROM users WHERE role = 'official' ORDER BY username")]


def list_users(store: Store) -> list[dict]:
    """Every account by name: name, role, language, created, and how many sessions are signed in now."""
    rows = store.query(
        "SELECT u.username, u.role, u.lang, u.created_at,"
        " (SELECT COUNT(*) FROM sessions s WHERE s.user_id = u.id AND s.expires_at > ?) AS sessions"
        " FROM users u ORDER BY u.username", (now(),))
    return [dict(r) for r in rows]


def _user_id(db, name: str) -> int:
    row = db.execute("SELECT id FROM users WHERE username = ?", (name,)).fetchone()
    if row is None:
        raise LookupError(f"there is no user {name!r} (see `streamctl user list`)")
    return int(row["id"])


def set_password(store: Store, name: str, password: str) -> int:
    """Give `name` a new password and sign out every session of theirs (a new password is for a leaked one).

    Returns how many sessions were ended; LookupError for an unknown user, ValueError for a bad password.
    """
    _check_password(password)
    hashed = hash_password(password)
    with store.transaction() as db:
        user_id = _user_id(db, name)
        db.execute("UPDATE users SET password_hash = ? WHERE id = ?", (hashed, user_id))
        return db.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,)).rowcount


def remove_user(store: Store, name: str) -> int:
    """Delete the account `name` and end its sessions; returns how many sessions were ended."""
    with store.transaction() as db:
        user_id = _user_id(db, name)
        ended = db.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,)).rowcount
        db.execute("DELETE FROM users WHERE id = ?", (user_id,))
    return ended

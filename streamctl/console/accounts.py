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


def add_user(store: Store, name: str, role: str, password: str, lang: str = "vi") -> int:
    """Create a console account; ValueError says what is wrong with the name, role, password or language."""
    if not NAME_RE.match(name or ""):
        raise ValueError(f"user name {name!r} is not valid, expected 1-64 letters, digits or . _ @ - "
                         "(starting with a letter or digit)")
    if role not in USER_ROLES:
        raise ValueError(f"role {role!r} is not valid, expected one of {', '.join(USER_ROLES)}")
    if lang not in LANGS:
        raise ValueError(f"language {lang!r} is not valid, expected one of {', '.join(LANGS)}")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValueError(f"the password must have {MIN_PASSWORD} to {MAX_PASSWORD} characters")
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

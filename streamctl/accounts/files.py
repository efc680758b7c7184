"""Credential files: written owner-only (0600) in one step, read with errors that name the file and the fix."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..redact import MASK


class CredentialFileError(Exception):
    """A credentials file is missing, unreadable or not what it should be; the message says what to do."""


def write_private(path: str | os.PathLike, data: dict) -> Path:
    """Write JSON readable by its owner only: created 0600 before any byte of the secret is in it."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing .tmp keeps its old mode through O_CREAT
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, ensure_ascii=False)
            f.write("\n")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return path


def read_json(path: str | os.PathLike, fix: str) -> dict:
    """A JSON object from `path`; CredentialFileError naming the file and `fix` otherwise."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CredentialFileError(f"{path}: not found; {fix}") from None
    except OSError as e:
        raise CredentialFileError(f"{path}: cannot be read ({e.strerror}); {fix}") from None
    except (ValueError, UnicodeDecodeError):
        raise CredentialFileError(f"{path}: not JSON; {fix}") from None
    if not isinstance(data, dict):
        raise CredentialFileError(f"{path}: not a JSON object; {fix}")
    return data


def tail(secret: str | None) -> str:
    """A secret shown only by its last four characters, so a person can tell two apart."""
    if not secret:
        return "(none)"
    return MASK + secret[-4:] if len(secret) > 12 else MASK

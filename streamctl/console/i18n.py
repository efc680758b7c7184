"""Vietnamese and English message catalogues (web/i18n/*.json) for the console pages and overlays."""

from __future__ import annotations

import json
import logging
from functools import cache

from .. import assets

log = logging.getLogger(__name__)

CATALOGUES = assets.path("web/i18n")
LANGS = ("vi", "en")
DEFAULT_LANG = "vi"


@cache
def catalogue(lang: str) -> dict[str, str]:
    """Every message of one language, by key."""
    return json.loads((CATALOGUES / f"{lang}.json").read_text(encoding="utf-8"))


def pick_lang(*candidates: str | None) -> str:
    """The first candidate that is a language we have, else Vietnamese."""
    return next((c for c in candidates if c in LANGS), DEFAULT_LANG)


def translate(lang: str, key: str, **params: object) -> str:
    """The message `key` in `lang`, with `{name}` placeholders filled; the key itself if it is missing."""
    text = catalogue(lang).get(key)
    if text is None:
        log.warning("message %r missing from the %s catalogue", key, lang)
        return key
    return text.format(**params) if params else text

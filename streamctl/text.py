"""Text folding for diacritics-insensitive search, and the Vietnamese/English question cues."""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def fold(text: str) -> str:
    """Lower-case ASCII skeleton of `text`: "Hạ Long" and "ha long" fold alike; "Đ" becomes "d"."""
    text = text.replace("Đ", "D").replace("đ", "d")
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"\s+", " ", stripped.casefold()).strip()


def strip_controls(text: str) -> str:
    """Text without control characters (newlines and tabs kept), for display."""
    return _CONTROL.sub("", text)


# Cues matched against fold(text): Vietnamese phrases anywhere, English question words as whole words.
VIETNAMESE_CUES = (
    "cho hoi", "xin hoi", "muon hoi", "tai sao", "vi sao", "bao gio", "khi nao", "nhu the nao",
    "co duoc khong", "duoc khong", "co phai", "bao nhieu", "o dau", "lam sao", "lam the nao",
    "de nghi", "kien nghi",
)
_ENGLISH_CUE = re.compile(r"\b(?:how|when|why|what|where|who|which)\b")
_ENGLISH_LEAD = re.compile(r"^(?:is|are|will|can|could|should|would|do|does|did)\b")
_VIETNAMESE_TAIL = re.compile(r"\b(?:khong|chua)(?: (?:a|vay|nhi|the))?[.!… ]*$")


def looks_like_question(text: str) -> bool:
    """True when a comment reads as a question: a '?' or a Vietnamese/English question cue."""
    if "?" in text or "？" in text:
        return True
    folded = fold(text)
    if not folded:
        return False
    return (
        any(cue in folded for cue in VIETNAMESE_CUES)
        or bool(_ENGLISH_CUE.search(folded))
        or bool(_ENGLISH_LEAD.match(folded))
        or bool(_VIETNAMESE_TAIL.search(folded))
    )

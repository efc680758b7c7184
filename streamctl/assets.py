"""The package data: console templates, static files, catalogues, overlays and report templates.

They ship inside the package (`streamctl/web`, `streamctl/overlays`; in a checkout those two are links to the
top-level `web/` and `overlays/`), so a wheel, `pip install .`, pipx and an editable install all find them
through `importlib.resources`, whatever the current folder.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

# What each part of the package data is for, so a broken install names what it lacks.
PARTS = {
    "web/templates": "the console's page templates",
    "web/templates/report": "the report's template",
    "web/static": "the console's scripts and styles",
    "web/i18n/vi.json": "the Vietnamese messages",
    "web/i18n/en.json": "the English messages",
    "overlays": "the on-air overlay templates",
    "overlays/assets": "the overlays' scripts and styles",
}
CONSOLE = tuple(PARTS)
REPORT = ("web/templates/report", "web/i18n/vi.json", "web/i18n/en.json")


class AssetMissing(Exception):
    """Part of streamctl's package data is not where the installed package should have it."""


def package_root() -> Path:
    """The installed package's folder on disk."""
    root = resources.files("streamctl")
    if not isinstance(root, Path):  # a zipped install: aiohttp and jinja2 need real folders
        raise AssetMissing(f"streamctl is installed as {root}, not as a folder: install the wheel with pip or pipx")
    return root


def path(part: str) -> Path:
    """Where one part of the package data is (not checked: see `require`)."""
    return package_root().joinpath(*part.split("/"))


def require(parts: tuple[str, ...] = CONSOLE) -> None:
    """Raise AssetMissing naming every part that is missing, and where it was looked for."""
    root = package_root()
    missing = [f"{part} ({PARTS.get(part, 'package data')})" for part in parts if not path(part).exists()]
    if missing:
        raise AssetMissing(f"streamctl's package data is incomplete: {', '.join(missing)} not found in {root}; "
                           "reinstall streamctl (pip install --force-reinstall streamctl, or pipx reinstall streamctl)")

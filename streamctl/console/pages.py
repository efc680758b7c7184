"""Console routes: pages (being built)."""

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register this area's routes."""

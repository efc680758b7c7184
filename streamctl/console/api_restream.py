"""Console routes: api_restream (being built)."""

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register this area's routes."""

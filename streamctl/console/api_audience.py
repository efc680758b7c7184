"""Console routes: api_audience (being built)."""

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register this area's routes."""

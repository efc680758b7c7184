"""Console routes: api_questions (being built)."""

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register this area's routes."""

"""The console application's typed keys, in one place so every area imports them without an import circle."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ..controller import Controller
    from ..questions import QuestionDesk
    from .auth import LoginLimiter
    from .ws import Hub

CONTROLLER: web.AppKey[Controller] = web.AppKey("controller")
DESK: web.AppKey[QuestionDesk] = web.AppKey("question_desk")
HUB: web.AppKey[Hub] = web.AppKey("ws_hub")
LIMITER: web.AppKey[LoginLimiter] = web.AppKey("login_limiter")

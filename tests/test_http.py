"""The console's request/response helpers over a real aiohttp server: one error shape, bounded JSON bodies."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from streamctl.console.http import MAX_JSON_BODY, json_response, path_int, query_choice, query_int, read_json
from streamctl.console.i18n import LANGS, catalogue
from streamctl.redact import register_secret


async def echo(request: web.Request) -> web.Response:
    body = await read_json(request, '{"n": N}', required=request.query.get("required") == "1")
    return json_response({"body": body, "id": path_int(request, "id"), "limit": query_int(request, "limit", 5, 1, 9),
                          "order": query_choice(request, "order", ("newest", "oldest"), "newest")})


async def client() -> TestClient:
    app = web.Application()
    app.router.add_post("/x/{id}", echo)
    c = TestClient(TestServer(app))
    await c.start_server()
    return c


async def test_bodies_and_numbers_are_read_one_way_with_errors_that_name_a_catalogue_key():
    c = await client()
    try:
        ok = await c.post("/x/7?limit=3&order=oldest", json={"n": 1})
        assert ok.status == 200 and await ok.json() == {"body": {"n": 1}, "id": 7, "limit": 3, "order": "oldest"}
        empty = await c.post("/x/7")
        assert (await empty.json())["body"] == {}
        cases = [
            ("/x/7?required=1", None, 400, "error.body_empty"),
            ("/x/7", "not json", 400, "error.body_json"),
            ("/x/7", "[1, 2]", 400, "error.body_json"),
            ("/x/7", "{" + " " * MAX_JSON_BODY + "}", 413, "error.body_large"),
            ("/x/seven", "{}", 404, "error.path_number"),
            ("/x/7?limit=10", "{}", 400, "error.query_number"),
            ("/x/7?limit=-1", "{}", 400, "error.query_number"),
            ("/x/7?order=sideways", "{}", 400, "error.query_choice"),
        ]
        for path, body, status, key in cases:
            answer = await c.post(path, data=body, headers={"Content-Type": "application/json"})
            error = await answer.json()
            assert answer.status == status and error["key"] == key, (path, error)
            assert error["error"] and isinstance(error["params"], dict)
            for lang in LANGS:
                assert key in catalogue(lang), (lang, key)
    finally:
        await c.close()


async def test_an_error_body_never_carries_a_secret():
    from streamctl.console.http import error_body

    register_secret("sk-desk-secret-123")
    body = error_body("cannot reach rtmp://x/app/sk-desk-secret-123", "error.request", {"url": "rtmp://x/sk-desk-secret-123"})
    assert "sk-desk-secret-123" not in str(body)

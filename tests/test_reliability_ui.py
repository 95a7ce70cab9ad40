"""The web chat's own routes under hostile use, on real servers with the Gradio app mounted:
the upload route has a size limit and needs a login with a token, failed logins are
throttled, and with a token the API documentation is not public."""
from __future__ import annotations

import httpx
from servers import TOKEN, LiveServer, live_server, token_server  # noqa: F401 (fixtures)

from app.http_guard import LOGIN_FAILURES


def test_the_chat_upload_has_a_size_limit(live_server: LiveServer) -> None:  # noqa: F811
    """The documents tab's upload route takes files up to the upload limit (the document is
    stored only by the tab's own handler, which checks the caller's scope)."""
    with live_server.client(timeout=60) as http:
        ok = http.post("/gradio_api/upload", files=[("files", ("x.txt", b"a" * 100_000))])
        assert ok.status_code == 200, ok.text
        big = http.post("/gradio_api/upload",
                        files=[("files", ("x.txt", b"a" * (50 * 1024 * 1024 + 10)))])
        assert big.status_code in (400, 413), big.status_code
        assert http.get("/").status_code == 200  # the chat itself is still served


SESSION_PROBES = [("post", "/gradio_api/reset", {"json": {"event_id": "x"}}),
                  ("post", "/gradio_api/upload", {"files": [("files", ("x.txt", b"a"))]}),
                  ("post", "/gradio_api/cancel", {"json": {"session_hash": "x", "fn_index": 0,
                                                           "event_id": "x"}}),
                  ("get", "/gradio_api/heartbeat/x", {})]


def test_session_routes_need_a_login_with_a_token(token_server: LiveServer) -> None:  # noqa: F811
    # Runs before the throttle test below, which locks this address out of /login for a minute.
    with httpx.Client(base_url=token_server.url, timeout=30, trust_env=False) as anon:
        for method, path, kwargs in SESSION_PROBES:
            assert getattr(anon, method)(path, **kwargs).status_code == 401, path
    with httpx.Client(base_url=token_server.url, timeout=30, trust_env=False) as user:
        assert user.post("/login", data={"username": "x", "password": TOKEN}).status_code == 200
        r = user.post("/gradio_api/reset", json={"event_id": "x"})
        assert r.status_code == 200, r.text
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=token_server.url, timeout=30, trust_env=False,
                      headers=bearer) as api:
        assert api.post("/gradio_api/reset", json={"event_id": "x"}).status_code == 200


def test_failed_logins_are_throttled(token_server: LiveServer) -> None:  # noqa: F811
    with httpx.Client(base_url=token_server.url, timeout=30, trust_env=False) as http:
        for _ in range(LOGIN_FAILURES):
            r = http.post("/login", data={"username": "x", "password": "wrong"})
            assert r.status_code == 400, r.text
        r = http.post("/login", data={"username": "x", "password": "wrong"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        # Once throttled, even the right password waits: guessing gains nothing.
        assert http.post("/login", data={"username": "x", "password": TOKEN}).status_code == 429


def test_api_docs_are_closed_with_a_token(token_server: LiveServer,  # noqa: F811
                                          live_server: LiveServer) -> None:  # noqa: F811
    with httpx.Client(base_url=token_server.url, timeout=30, trust_env=False) as http:
        for path in ("/openapi.json", "/docs", "/redoc"):
            assert http.get(path).status_code in (401, 404), path
    with httpx.Client(base_url=live_server.url, timeout=30, trust_env=False) as http:
        assert http.get("/openapi.json").status_code == 200  # open without a token

"""API keys: the key store, the CLI, and the route x key table over a real uvicorn server."""
from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from servers import LiveServer, serve

from app.keys import ApiKeyError, KeyStore

DE_Q = "Wie viele nordkoreanische Soldaten kämpfen im Ukraine-Krieg?"
SEED_SOURCE = "000_218c33ea26fbfb53.txt"


# ---- the store ----------------------------------------------------------------------------------

def test_keys_are_hashed_shown_once_and_revocable(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    assert not store.configured()
    key, secret = store.create("hr-bot", ["ask", "read"])
    assert secret.startswith("blg_") and len(secret) > 40
    raw = (tmp_path / "keys.json").read_text(encoding="utf-8")
    assert secret not in raw and key.hash in raw  # only the hash is at rest
    assert stat.S_IMODE((tmp_path / "keys.json").stat().st_mode) == 0o600
    assert store.verify(secret) == key and key.scopes == ("read", "ask")
    assert store.verify(secret + "x") is None and store.verify("") is None
    # another process (the CLI) revokes: a running server's store sees it at once
    assert [k.name for k in KeyStore(tmp_path / "keys.json").revoke("hr-bot")] == ["hr-bot"]
    assert store.verify(secret) is None and store.configured()
    assert store.revoke("hr-bot") == []


@pytest.mark.parametrize("name,scopes,words", [
    ("bad name", ["ask"], "letters"), ("x" * 65, ["ask"], "letters"),
    ("ok", ["root"], "unknown"), ("ok", [], "missing")])
def test_bad_keys_are_refused(tmp_path: Path, name: str, scopes: list[str], words: str) -> None:
    with pytest.raises(ApiKeyError, match=words):
        KeyStore(tmp_path / "keys.json").create(name, scopes)
    assert not (tmp_path / "keys.json").exists()


def test_a_live_name_is_unique_and_a_broken_file_says_so(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    store.create("ops", ["admin"])
    with pytest.raises(ApiKeyError, match="exists"):
        store.create("ops", ["read"])
    (tmp_path / "keys.json").write_text("{broken", encoding="utf-8")
    with pytest.raises(ApiKeyError, match="unreadable"):
        store.verify("blg_x")


# ---- the route x key table ----------------------------------------------------------------------

ROUTES = [  # (method, path, body, scope it needs)
    ("POST", "/api/ask", {"question": DE_Q}, "ask"),
    ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": DE_Q}]}, "ask"),
    ("GET", "/v1/models", None, "ask"),
    ("POST", "/api/search", {"query": "Soldaten", "k": 2}, "read"),
    ("GET", "/api/documents", None, "read"),
    ("GET", f"/api/documents/{SEED_SOURCE}", None, "read"),
    ("DELETE", "/api/documents/none-such.txt", None, "write"),
    ("GET", "/metrics", None, "admin"),
]
CALLERS = ("none", "wrong", "revoked", "other scope", "right", "admin")


@pytest.fixture(scope="module")
def keyed(seed_engine: Any, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[LiveServer, dict[str, dict[str, str]]]]:
    from app.api import create_app

    store = KeyStore(tmp_path_factory.mktemp("keys") / "keys.json")
    secrets: dict[str, dict[str, str]] = {}
    for scope in ("read", "ask", "write"):
        other = {"read": "ask", "ask": "write", "write": "read"}[scope]
        secrets[scope] = {
            "right": store.create(f"{scope}-key", [scope])[1],
            "other scope": store.create(f"{scope}-other", [other])[1],
            "revoked": store.create(f"{scope}-old", [scope])[1],
            "admin": store.create(f"{scope}-admin", ["admin"])[1],
            "wrong": "blg_" + "x" * 43, "none": ""}
        store.revoke(f"{scope}-old")
    secrets["admin"] = {"right": secrets["read"]["admin"], "other scope": secrets["read"]["right"],
                        "revoked": secrets["read"]["revoked"], "admin": secrets["read"]["admin"],
                        "wrong": "blg_" + "y" * 43, "none": ""}
    with serve(create_app(seed_engine, keys=store)) as server:
        yield server, secrets


@pytest.mark.parametrize("method,path,body,scope", ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
@pytest.mark.parametrize("caller", CALLERS)
def test_route_by_key(keyed: tuple[LiveServer, dict[str, dict[str, str]]], method: str,
                      path: str, body: Any, scope: str, caller: str) -> None:
    server, secrets = keyed
    secret = secrets[scope][caller]
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    with server.client(token="", timeout=180) as http:
        r = http.request(method, path, json=body, headers=headers)
    expected = {"none": 401, "wrong": 401, "revoked": 401, "other scope": 403}.get(caller)
    if expected is None:  # the right scope, or admin: the route runs (404 for the missing doc)
        assert r.status_code in (200, 404), r.text
        assert r.status_code == 200 or "none-such" in r.text
    else:
        assert r.status_code == expected, (caller, r.text)
        message = r.json()["error"]["message"] if path.startswith("/v1/") \
            else r.json()["detail"]
        assert ("lacks the scope" in message) if expected == 403 else ("API key" in message)


def test_open_routes_stay_open(keyed: tuple[LiveServer, dict[str, dict[str, str]]]) -> None:
    server, _ = keyed
    with server.client(token="") as http:
        for path in ("/api/health", "/api/live", "/api/ready"):
            assert http.get(path).status_code == 200
        assert http.get("/docs").status_code == 404  # no API docs once keys exist


def test_openai_client_with_a_key(keyed: tuple[LiveServer, dict[str, dict[str, str]]]) -> None:
    server, secrets = keyed
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=secrets["ask"]["right"],
                           max_retries=0, http_client=httpx.Client(trust_env=False, timeout=180))
    r = client.chat.completions.create(model="beleg", messages=[{"role": "user", "content": DE_Q}])
    assert "15'000" in (r.choices[0].message.content or "")
    reader = openai.OpenAI(base_url=server.url + "/v1", api_key=secrets["ask"]["other scope"],
                           max_retries=0, http_client=httpx.Client(trust_env=False, timeout=60))
    with pytest.raises(openai.PermissionDeniedError):
        reader.models.list()


# ---- the CLI ------------------------------------------------------------------------------------

def test_cli_create_list_revoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli import main

    monkeypatch.setenv("BELEG_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert main(["keys", "create", "wiki", "--scope", "ask", "--scope", "read", "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["key"].startswith("blg_") and made["scopes"] == ["read", "ask"]
    assert main(["keys", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [k["name"] for k in listed] == ["wiki"] and "key" not in listed[0]
    assert made["key"] not in (tmp_path / "keys.json").read_text(encoding="utf-8")
    assert main(["keys", "revoke", made["id"]]) == 0
    assert main(["keys", "revoke", "wiki"]) != 0  # nothing live left by that name
    assert "no live key" in capsys.readouterr().err
    assert main(["keys", "create"]) != 0
    assert KeyStore(tmp_path / "keys.json").verify(made["key"]) is None


def test_serve_refuses_the_network_without_access_control(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    from app.cli import main

    monkeypatch.setenv("BELEG_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("BELEG_API_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--host", "0.0.0.0", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "no access control" in err and "beleg keys create" in err


def test_chat_login_takes_a_key_that_may_ask(
        keyed: tuple[LiveServer, dict[str, dict[str, str]]]) -> None:
    server, secrets = keyed
    with httpx.Client(base_url=server.url, timeout=30, trust_env=False) as anon:
        assert anon.post("/gradio_api/reset", json={"event_id": "x"}).status_code == 401
    with httpx.Client(base_url=server.url, timeout=30, trust_env=False) as user:
        reader = user.post("/login", data={"username": "read-key",
                                           "password": secrets["read"]["right"]})
        assert reader.status_code != 200  # a read-only key may not chat
        # the user name is the key's own: it tells the session's collections
        other = user.post("/login", data={"username": "x", "password": secrets["ask"]["right"]})
        assert other.status_code != 200
        ok = user.post("/login", data={"username": "ask-key", "password": secrets["ask"]["right"]})
        assert ok.status_code == 200, ok.text
        assert user.post("/gradio_api/reset", json={"event_id": "x"}).status_code == 200
    for secret, status in ((secrets["ask"]["right"], 200), (secrets["read"]["right"], 401),
                           (secrets["ask"]["revoked"], 401)):
        with httpx.Client(base_url=server.url, timeout=30, trust_env=False,
                          headers={"Authorization": f"Bearer {secret}"}) as api:
            assert api.post("/gradio_api/reset", json={"event_id": "x"}).status_code == status

"""Users a reverse proxy vouches for (trusted user and groups headers): believed from the
trusted proxy only, limited to read and ask, and to the collections their groups name."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import LiveServer, serve

from app.trusted_proxy import TrustedHeaders
from ingest.documents import Document

USER, GROUPS = "X-User-Email", "X-User-Groups"
HR_Q = "Wie viele Urlaubstage haben Mitarbeitende pro Jahr?"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from app.settings import Settings
    from app.wiring import build_engine, build_library

    data = tmp_path_factory.mktemp("proxy-users")
    settings = Settings.load(env={}, data_dir=data, llm="extractive")
    build_library(settings=settings).add_document(
        Document("kantine.txt", "Die Kantine öffnet um 11 Uhr und schliesst um 14 Uhr."))
    build_library(settings=settings, collection="hr").add_document(Document(
        "urlaub.txt", "Mitarbeitende haben Anspruch auf 28 Urlaubstage pro Kalenderjahr."))
    return build_engine(settings)


@pytest.fixture(scope="module")
def behind_proxy(engine: Any, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[tuple[LiveServer, str]]:
    """Trusts the headers from 127.0.0.1 (where the tests connect from); one key exists too."""
    from app.api import create_app
    from app.keys import KeyStore

    keys = KeyStore(tmp_path_factory.mktemp("proxy-keys") / "keys.json")
    secret = keys.create("uploader", ["write"], ["hr"])[1]
    app = create_app(engine, keys=keys, trusted=TrustedHeaders(USER, GROUPS, ("127.0.0.1",)))
    with serve(app) as server:
        yield server, secret


@pytest.fixture(scope="module")
def not_the_proxy(engine: Any) -> Iterator[LiveServer]:
    """Trusts only a proxy at 10.9.9.9: the tests' own headers must count for nothing."""
    from app.api import create_app

    app = create_app(engine, trusted=TrustedHeaders(USER, GROUPS, ("10.9.9.9",)),
                     proxies=("10.9.9.9",))
    with serve(app) as server:
        yield server


def test_the_proxy_user_reads_and_asks_in_their_groups(
        behind_proxy: tuple[LiveServer, str]) -> None:
    server, _ = behind_proxy
    ana = {USER: "ana@example.org", GROUPS: "Staff, hr, not a collection!"}
    with server.client(token="") as http:
        assert http.get("/api/documents").status_code == 401  # nobody named: no access
        r = http.post("/api/ask", json={"question": HR_Q, "collection": "hr"}, headers=ana)
        assert r.status_code == 200 and {s["source"] for s in r.json()["sources"]} == {
            "urlaub.txt"}
        listed = http.get("/api/collections", headers=ana).json()["collections"]
        assert [c["name"] for c in listed] == ["hr"]
        other = http.get("/api/documents", headers=ana)  # the default collection: no group
        assert other.status_code == 403 and "may not use the collection 'default'" in other.text
        write = http.post("/api/documents?collection=hr", headers=ana,
                          files={"files": ("x.txt", b"Neu.", "text/plain")})
        assert write.status_code == 403 and "needs an API key" in write.text
        assert http.get("/metrics", headers=ana).status_code == 403


def test_without_a_groups_match_only_nothing_or_default(
        behind_proxy: tuple[LiveServer, str]) -> None:
    server, secret = behind_proxy
    with server.client(token="") as http:
        bob = {USER: "bob@example.org", GROUPS: "default"}
        assert http.get("/api/documents", headers=bob).json()["documents"][0]["source"] == \
            "kantine.txt"
        eve = {USER: "eve@example.org"}  # no groups at all: no collection
        assert http.get("/api/collections", headers=eve).json()["collections"] == []
        # a key still works beside the proxy's users
        up = http.post("/api/documents?collection=hr",
                       headers={"Authorization": f"Bearer {secret}"},
                       files={"files": ("neu.txt", b"Die Probezeit dauert sechs Monate.",
                                        "text/plain")})
        assert up.status_code == 200, up.text
        assert http.delete("/api/documents/neu.txt?collection=hr",
                           headers={"Authorization": f"Bearer {secret}"}).status_code == 200


def test_headers_from_elsewhere_are_ignored(not_the_proxy: LiveServer) -> None:
    with not_the_proxy.client(token="") as http:
        r = http.get("/api/documents", headers={USER: "admin@example.org", GROUPS: "default",
                                                "X-Forwarded-For": "10.0.0.7"})
        assert r.status_code == 401


def test_the_chat_signs_in_the_proxy_user(behind_proxy: tuple[LiveServer, str]) -> None:
    from gradio_client import Client

    server, _ = behind_proxy
    client = Client(server.url + "/", headers={USER: "ana@example.org", GROUPS: "hr"},
                    verbose=False, httpx_kwargs={"trust_env": False, "timeout": 180})
    try:
        _, _, html = client.predict(HR_Q, [], "hr", api_name="/ask")
        assert "28 Urlaubstage" in html
        _, turns, _ = client.predict(HR_Q, [], "default", api_name="/ask")
        assert "may not use the collection 'default'" in turns[-1]["error"]
    finally:
        client.close()
    with pytest.raises(Exception, match="401|Unauthorized|Could not"):
        Client(server.url + "/", verbose=False, httpx_kwargs={"trust_env": False, "timeout": 60})


def test_settings_check_the_header_names(tmp_path: Path) -> None:
    from app.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="header name"):
        Settings.load(env={"BELEG_TRUSTED_USER_HEADER": "X User"})
    with pytest.raises(SettingsError, match="needs trusted_user_header"):
        Settings.load(env={"BELEG_TRUSTED_GROUPS_HEADER": "X-Groups"})
    s = Settings.load(env={"BELEG_TRUSTED_PROXIES": "10.0.0.2, 10.0.0.3"})
    assert s.trusted_proxy_list == ("10.0.0.2", "10.0.0.3")

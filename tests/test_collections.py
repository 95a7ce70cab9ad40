"""Collections: names, isolated stores, keys bound to collections, and the route x key table over
real HTTP (the IDOR check: no document of a collection a key may not use reaches it)."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from conftest import SEED, HashEmbedder
from servers import LiveServer, serve

from app.keys import ApiKeyError, KeyStore
from ingest.documents import Document
from store.naming import CollectionNameError, checked_collection, chroma_name, collection_names

SEED_SOURCE = SEED.name
HR_SOURCE = "handbuch.txt"
HR_TEXT = ("Personalhandbuch. Mitarbeitende haben Anspruch auf 28 Urlaubstage pro Kalenderjahr. "
           "Urlaubsanträge werden mindestens zwei Wochen vorher im Personalportal gestellt. "
           "Die Probezeit dauert sechs Monate. Überstunden werden innerhalb von drei Monaten "
           "durch Freizeit ausgeglichen.")
HR_Q = "Wie viele Urlaubstage haben Mitarbeitende pro Jahr?"


# ---- names and stores ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["hr", "a", "eng-2", "x" * 40])
def test_valid_collection_names(name: str) -> None:
    assert checked_collection(name) == name


@pytest.mark.parametrize("name", ["HR", "../x", "a_b", "a.b", "-a", "a-", "x" * 41, "hr ",
                                  "ü"])
def test_invalid_collection_names_say_what_is_allowed(name: str) -> None:
    with pytest.raises(CollectionNameError, match="lower-case letters"):
        checked_collection(name)


def test_default_collection_keeps_the_old_chroma_name() -> None:
    assert checked_collection(None) == checked_collection("") == "default"
    assert chroma_name("beleg", "default") == "beleg"
    assert chroma_name("beleg", "hr") == "beleg.hr"


def test_collections_are_separate_stores(tmp_path: Path) -> None:
    from app.collection_set import Collections
    from app.library import Library
    from store.collection import UnknownCollection, connect

    emb = HashEmbedder()
    client = connect(path=tmp_path / "chroma")
    cols = Collections(client, "beleg", emb, tmp_path / "lexical")
    with pytest.raises(UnknownCollection, match="no collection named 'hr'"):
        cols.retriever("hr")  # reading never creates a collection
    assert collection_names(client, "beleg") == ["default"]
    Library(cols.store(), emb).add_document(Document("a.txt", "Panzer rollen über die Grenze."))
    Library(cols.store("hr", create=True), emb).add_document(
        Document("b.txt", "Panzer der Personalabteilung sind Aktenschränke."))
    client.get_or_create_collection("beleg.x_sentences")  # a part, not a collection
    client.get_or_create_collection("other")  # another install's collection
    assert collection_names(client, "beleg") == ["default", "hr"]
    for name, own in (("default", "a.txt"), ("hr", "b.txt")):
        hits = cols.retriever(name).search("Panzer", 5)
        assert {h.chunk.source for h in hits} == {own}
        assert [d.source for d in cols.store(name).documents()] == [own]
    # each lexical index is its own folder and names its store: one never serves another
    fingerprints = {cols.retriever(n).lexical().fingerprint for n in ("default", "hr")}
    assert len(fingerprints) == 2
    assert {p.name for p in (tmp_path / "lexical").iterdir()} == {"beleg", "beleg.hr"}


# ---- keys ---------------------------------------------------------------------------------------

def test_keys_carry_their_collections(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    plain, _ = store.create("plain", ["ask"])
    assert plain.collections == ("default",)  # a new collection is never opened by accident
    hr, _ = store.create("hr", ["ask"], ["hr", "hr", "eng"])
    assert hr.collections == ("hr", "eng")
    every, _ = store.create("all", ["read"], ["hr", "*"])
    assert every.collections == ("*",)
    with pytest.raises(ApiKeyError, match="lower-case"):
        store.create("bad", ["ask"], ["../hr"])
    # a record written before collections existed reads as the default collection only
    raw = json.loads((tmp_path / "keys.json").read_text(encoding="utf-8"))
    del raw["keys"][0]["collections"]
    (tmp_path / "keys.json").write_text(json.dumps(raw), encoding="utf-8")
    assert KeyStore(tmp_path / "keys.json").keys()[0].collections == ("default",)


def test_caller_checks_before_it_looks() -> None:
    from app.access import AccessDenied, Caller

    hr = Caller("hr-bot", ("hr",))
    assert hr.may_use("hr") and not hr.may_use("default")
    assert hr.usable(["default", "hr", "eng"]) == ["hr"]
    assert Caller("token").usable(["default", "hr"]) == ["default", "hr"]
    with pytest.raises(AccessDenied, match="may not use the collection 'eng'") as err:
        hr.check("eng")
    assert err.value.status == 403


# ---- the route x key table over HTTP ------------------------------------------------------------

@pytest.fixture(scope="module")
def two_collections(tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[LiveServer, dict[str, str], Path]]:
    """A server whose default collection holds the seed article and whose 'hr' collection holds
    a staff handbook, with keys for hr, for the default collection, for all, and a revoked one."""
    from app.api import create_app
    from app.settings import Settings
    from app.wiring import build_engine, build_library

    data = tmp_path_factory.mktemp("two-collections")
    settings = Settings.load(env={}, data_dir=data, llm="extractive")
    build_library(settings=settings).add_paths([SEED])
    build_library(settings=settings, collection="hr").add_document(Document(HR_SOURCE, HR_TEXT))
    build_library(settings=settings, collection="secret").add_document(
        Document("plan.txt", "Der Geheimplan sieht 40 neue Stellen vor."))
    keys = KeyStore(data / "keys.json")
    secrets = {"hr": keys.create("hr-bot", ["read", "ask", "write"], ["hr"])[1],
               "main": keys.create("main-bot", ["read", "ask", "write"])[1],
               "all": keys.create("all-bot", ["read", "ask", "write"], ["*"])[1],
               "revoked": keys.create("hr-old", ["read", "ask", "write"], ["hr"])[1],
               "wrong": "blg_" + "z" * 43, "none": ""}
    keys.revoke("hr-old")
    with serve(create_app(build_engine(settings), keys=keys)) as server:
        yield server, secrets, data


HR_ROUTES = [  # (method, path, body) for the collection 'hr'
    ("POST", "/api/ask", {"question": HR_Q, "collection": "hr"}),
    ("POST", "/api/search", {"query": "Urlaubstage", "k": 3, "collection": "hr"}),
    ("GET", "/api/documents?collection=hr", None),
    ("GET", f"/api/documents/{HR_SOURCE}?collection=hr", None),
    ("DELETE", "/api/documents/none-such.txt?collection=hr", None),
    ("POST", "/v1/chat/completions",
     {"model": "beleg-extractive:hr", "messages": [{"role": "user", "content": HR_Q}]}),
]
HR_CALLERS = {"none": 401, "wrong": 401, "revoked": 401, "main": 403, "hr": 200, "all": 200}


def _sources_of(r: httpx.Response, path: str) -> set[str]:
    """Every document name a response lets through."""
    body = r.json()
    if path.startswith("/api/ask"):
        return {s["source"] for s in body["sources"]} | {c["source"] for c in body["citations"]}
    if path.startswith("/api/search"):
        return {h["source"] for h in body["hits"]}
    if path.startswith("/v1/"):
        return {c["source"] for c in body["beleg"]["citations"]}
    if "documents" in body:
        return {d["source"] for d in body["documents"]}
    return {body["source"]} if "source" in body else set()


@pytest.mark.parametrize("method,path,body", HR_ROUTES, ids=[f"{m} {p}" for m, p, _ in HR_ROUTES])
@pytest.mark.parametrize("caller", list(HR_CALLERS))
def test_hr_route_by_key(two_collections: tuple[LiveServer, dict[str, str], Path], method: str,
                         path: str, body: Any, caller: str) -> None:
    server, secrets, _ = two_collections
    headers = {"Authorization": f"Bearer {secrets[caller]}"} if secrets[caller] else {}
    with server.client(token="", timeout=180) as http:
        r = http.request(method, path, json=body, headers=headers)
    expected = HR_CALLERS[caller]
    if path.startswith("/v1/") and caller == "main":
        expected = 404  # a model over a collection the key may not use does not exist for it
    if "none-such" in path and expected == 200:
        expected = 404
    assert r.status_code == expected, (caller, r.text)
    if expected == 200:
        assert _sources_of(r, path) <= {HR_SOURCE}, r.text
        assert _sources_of(r, path) or "DELETE" == method
    elif expected == 403:
        assert "may not use the collection 'hr'" in r.json()["detail"]
    elif path.startswith("/v1/") and expected == 404:
        assert r.json()["error"]["code"] == "model_not_found"


def test_no_document_crosses_collections(two_collections: tuple[LiveServer, dict[str, str], Path]
                                         ) -> None:
    server, secrets, _ = two_collections
    hr = {"Authorization": f"Bearer {secrets['hr']}"}
    main = {"Authorization": f"Bearer {secrets['main']}"}
    with server.client(token="") as http:
        # the seed article by name, through a key that may read only 'hr'
        assert http.get(f"/api/documents/{SEED_SOURCE}", headers=hr).status_code == 403
        assert http.get(f"/api/documents/{SEED_SOURCE}?collection=hr",
                        headers=hr).status_code == 404
        assert http.delete(f"/api/documents/{SEED_SOURCE}?collection=hr",
                           headers=hr).status_code == 404
        # the same words for a collection that exists and one that does not
        denied = [http.get(f"/api/documents?collection={c}", headers=hr) for c in ("secret", "nope")]
        assert [d.status_code for d in denied] == [403, 403]
        # the handbook's question, asked where the key may ask: nothing of 'hr' comes back
        r = http.post("/api/ask", json={"question": HR_Q}, headers=main)
        assert r.status_code == 200 and HR_SOURCE not in r.text
        hits = http.post("/api/search", json={"query": "Urlaubstage Probezeit"}, headers=main)
        assert HR_SOURCE not in hits.text
        # each key lists only its own collections
        listed = http.get("/api/collections", headers=hr).json()["collections"]
        assert [c["name"] for c in listed] == ["hr"] and listed[0]["documents"] == 1
        every = http.get("/api/collections",
                         headers={"Authorization": f"Bearer {secrets['all']}"}).json()
        assert [c["name"] for c in every["collections"]] == ["default", "hr", "secret"]


def test_unknown_and_bad_collections(two_collections: tuple[LiveServer, dict[str, str], Path]
                                     ) -> None:
    server, secrets, _ = two_collections
    every = {"Authorization": f"Bearer {secrets['all']}"}
    with server.client(token="") as http:
        missing = http.post("/api/ask", json={"question": HR_Q, "collection": "nope"},
                            headers=every)
        assert missing.status_code == 404 and "no collection named 'nope'" in missing.text
        bad = http.get("/api/documents", params={"collection": "../etc"}, headers=every)
        assert bad.status_code == 400 and "lower-case letters" in bad.text
        v1 = http.post("/v1/chat/completions", headers=every, json={
            "model": "beleg:nope", "messages": [{"role": "user", "content": HR_Q}]})
        assert v1.status_code == 404 and v1.json()["error"]["code"] == "model_not_found"


def test_an_upload_creates_its_collection(two_collections: tuple[LiveServer, dict[str, str], Path]
                                          ) -> None:
    server, secrets, _ = two_collections
    every = {"Authorization": f"Bearer {secrets['all']}"}
    hr = {"Authorization": f"Bearer {secrets['hr']}"}
    files = {"files": ("werk.txt", "Die Werkstatt öffnet um 7 Uhr.".encode(), "text/plain")}
    with server.client(token="") as http:
        assert http.post("/api/documents?collection=eng", files=files, headers=hr
                         ).status_code == 403
        assert http.get("/api/documents?collection=eng", headers=every).status_code == 404
        made = http.post("/api/documents?collection=eng", files=files, headers=every)
        assert made.status_code == 200 and made.json()["added"] == ["werk.txt"]
        names = [c["name"] for c in http.get("/api/collections", headers=every).json()[
            "collections"]]
        assert "eng" in names
        r = http.post("/api/search", json={"query": "Werkstatt", "collection": "eng"},
                      headers=every)
        assert {h["source"] for h in r.json()["hits"]} == {"werk.txt"}
        assert http.delete("/api/documents/werk.txt?collection=eng", headers=every
                           ).status_code == 200


def test_openai_models_name_the_collections(two_collections: tuple[LiveServer, dict[str, str],
                                                                   Path]) -> None:
    server, secrets, _ = two_collections

    def client(secret: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=server.url + "/v1", api_key=secret, max_retries=0,
                             http_client=httpx.Client(trust_env=False, timeout=180))

    hr_ids = [m.id for m in client(secrets["hr"]).models.list()]
    assert hr_ids and all(i.endswith(":hr") for i in hr_ids)
    assert "beleg-extractive" in [m.id for m in client(secrets["main"]).models.list()]
    r = client(secrets["hr"]).chat.completions.create(
        model="beleg-extractive:hr", messages=[{"role": "user", "content": HR_Q}])
    extra = r.model_extra["beleg"]
    assert extra["collection"] == "hr"
    links = [a.url_citation.url for a in r.choices[0].message.annotations or []]
    assert links and all("?collection=hr#" in u for u in links)
    with pytest.raises(openai.NotFoundError):
        client(secrets["hr"]).chat.completions.create(
            model="beleg-extractive", messages=[{"role": "user", "content": HR_Q}])


def test_chat_session_reads_only_its_collections(
        two_collections: tuple[LiveServer, dict[str, str], Path]) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    server, secrets, _ = two_collections
    client = Client(server.url + "/", auth=("hr-bot", secrets["hr"]), verbose=False,
                    httpx_kwargs={"trust_env": False, "timeout": 180})
    try:
        _, turns, html = client.predict(HR_Q, [], "hr", api_name="/ask")
        assert "28 Urlaubstage" in html and turns[-1]["collection"] == "hr"
        _, turns, html = client.predict(HR_Q, [], "default", api_name="/ask")
        assert "may not use the collection 'default'" in turns[-1]["error"]
        assert SEED_SOURCE not in html and turns[-1]["answer"] is None
    finally:
        client.close()
    with pytest.raises((AuthenticationError, ValueError), match="Could not login"):
        # the user name must be the key's own
        Client(server.url + "/", auth=("main-bot", secrets["hr"]), verbose=False,
               httpx_kwargs={"trust_env": False, "timeout": 60})


# ---- the CLI ------------------------------------------------------------------------------------

def test_cli_collections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli import main

    monkeypatch.setenv("BELEG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BELEG_LLM", "extractive")
    monkeypatch.chdir(tmp_path)
    (tmp_path / HR_SOURCE).write_text(HR_TEXT, encoding="utf-8")
    assert main(["ingest", "--collection", "hr", str(tmp_path / HR_SOURCE), "--json"]) == 0
    capsys.readouterr()
    assert main(["collections", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [{"name": "default", "documents": 0, "chunks": 0},
                    {"name": "hr", "documents": 1, "chunks": rows[1]["chunks"]}]
    assert main(["documents", "--collection", "hr", "--json"]) == 0
    assert [d["source"] for d in json.loads(capsys.readouterr().out)] == [HR_SOURCE]
    assert main(["documents", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["ask", "--collection", "hr", "--json", HR_Q]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["collection"] == "hr" and {c["source"] for c in answer["citations"]} <= {HR_SOURCE}
    assert main(["documents", "--collection", "nope"]) == 2
    assert "no collection named 'nope'" in capsys.readouterr().err
    assert main(["ask", "--collection", "Bad_Name", HR_Q]) == 2
    assert "lower-case letters" in capsys.readouterr().err
    assert main(["keys", "create", "hr-bot", "--collection", "hr", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["collections"] == ["hr"]

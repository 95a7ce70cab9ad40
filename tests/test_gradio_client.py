"""The web chat's named endpoint "/ask" through the official gradio_client.

Found while writing these: the conversation is a gr.BrowserState, which gradio_client treats as
an ordinary parameter, so "/ask" is ``predict(question, turns, collection)`` and returns
``(question box, turns, conversation HTML)``; a client passes the returned turns back for a
follow-up, as the browser does from its storage.
"""
from __future__ import annotations

import re
from typing import Any

import pytest
from servers import LiveServer, live_server, token_server  # noqa: F401 (fixtures)

gradio_client = pytest.importorskip("gradio_client")

SEED_SOURCE = "000_218c33ea26fbfb53.txt"
DE_Q = "Wie viele nordkoreanische Soldaten kämpfen im Ukraine-Krieg?"
EN_Q = "How many North Korean soldiers have died?"
FOLLOW_UP_Q = "Und wie viele sind gefallen?"
CHIP = re.compile(r'<button type="button" class="cite" data-turn="(\d+)" data-cite="(\d+)"')


def make_client(server: LiveServer) -> Any:
    return gradio_client.Client(server.url + "/", verbose=False,
                                httpx_kwargs={"timeout": 180, "trust_env": False})


@pytest.fixture(scope="module")
def client(live_server: LiveServer):  # noqa: F811
    c = make_client(live_server)
    yield c
    c.close()


@pytest.fixture(scope="module")
def german(client: Any) -> tuple[Any, ...]:
    """One "/ask" of the German seed question: (box, turns, html)."""
    return client.predict(DE_Q, [], "default", api_name="/ask")


def test_view_api_signature(client: Any) -> None:
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(api) == {"/ask"}  # nothing else of the page is an API
    params = api["/ask"]["parameters"]
    assert [p["parameter_name"] for p in params] == ["question", "turns", "collection"]
    assert params[2]["parameter_has_default"] and params[2]["parameter_default"] == "default"
    assert [r["component"] for r in api["/ask"]["returns"]] == ["Textbox", "Browserstate", "Html"]


def test_ask_returns_the_answer_with_exact_citations(german: tuple[Any, ...],
                                                     seed_text: str) -> None:
    _, turns, html = german
    assert len(turns) == 1 and turns[0]["q"] == DE_Q
    answer = turns[0]["answer"]
    assert "15'000" in answer["answer"] and answer["kind"] in ("answered", "candidates")
    for c in answer["citations"]:
        assert c["quote"] == seed_text[c["start"]:c["end"]] and c["source"] == SEED_SOURCE
    assert turns[0]["titles"][SEED_SOURCE].startswith("Die russisch-nordkoreanische")
    chips = CHIP.findall(html)  # every [n] of the text became a chip of this turn
    assert chips and {t for t, _ in chips} == {"0"}
    assert "15&#x27;000" in html or "15'000" in html


def test_ask_streams_a_status_before_the_answer(client: Any) -> None:
    job = client.submit(EN_Q, [], "default", api_name="/ask")
    final = job.result(timeout=180)
    outputs = job.outputs()
    assert len(outputs) >= 2, outputs
    first_turns, first_html = outputs[0][1], outputs[0][2]
    assert first_turns[-1]["answer"] is None and 'class="status"' in first_html
    assert final[1][-1]["answer"]["kind"] and "2000" in final[1][-1]["answer"]["answer"]


def test_follow_up_carries_the_conversation(client: Any, german: tuple[Any, ...]) -> None:
    _, turns, _ = german
    _, turns2, html = client.predict(FOLLOW_UP_Q, turns, "default", api_name="/ask")
    assert [t["q"] for t in turns2] == [DE_Q, FOLLOW_UP_Q]
    assert "2000" in turns2[1]["answer"]["answer"]
    assert {t for t, _ in CHIP.findall(html)} == {"0", "1"}  # both answers keep their chips


def test_empty_question_is_a_chat_message_not_an_error(client: Any) -> None:
    _, turns, html = client.predict("   ", [], "default", api_name="/ask")
    assert turns[-1]["answer"] is None and "empty" in turns[-1]["error"]
    assert "⚠" in html


def test_unknown_collection_is_said_in_the_chat(client: Any) -> None:
    _, turns, _ = client.predict(DE_Q, [], "nope", api_name="/ask")
    assert "no collection named 'nope'" in turns[-1]["error"]


def test_token_also_guards_the_chat_api(token_server: LiveServer) -> None:  # noqa: F811
    with token_server.client(token="") as anon:
        assert anon.post("/api/ask", json={"question": EN_Q}).status_code == 401  # the REST API
        r = anon.post("/gradio_api/call/ask", json={"data": [EN_Q, [], "default"]})
        assert r.status_code in (401, 403), (r.status_code, r.text)


def test_two_sessions_are_answered_at_once(seed_engine: Any, answering_selector: Any) -> None:
    """A long answer in one session does not hold another session's question: both reach the
    model together (Gradio alone would run one call of the event at a time)."""
    import time

    from conftest import EndlessLLM
    from servers import serve

    from app.api import create_app
    from app.engine import AnswerEngine

    endless = EndlessLLM(limit_s=20.0)
    engine = AnswerEngine(seed_engine.retriever, answering_selector, llm=endless)
    with serve(create_app(engine)) as server:
        first, second = make_client(server), make_client(server)
        try:
            jobs = [c.submit(DE_Q, [], "default", api_name="/ask") for c in (first, second)]
            deadline = time.monotonic() + 15
            while endless.peak < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert endless.peak == 2, endless.peak
            for job in jobs:
                job.result(timeout=60)
        finally:
            first.close()
            second.close()


def test_only_questions_and_uploads_use_the_event_queue(live_server: LiveServer) -> None:  # noqa: F811
    """The page's light events answer their own request. A queued event can be lost when it is
    queued as the page's event stream closes (app/ui.py, LIGHT), so only the streamed answer
    and the writes, which need the queue (streaming, one write at a time), use it."""
    with live_server.client() as http:
        config = http.get("/config").json()
    names = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    queued = sorted((names.get(dep["targets"][0][0]), dep["targets"][0][1])
                    for dep in config["dependencies"] if dep.get("queue") is not False)
    assert queued == [("ask", "click"), ("question", "submit"), ("remove", "click"),
                      ("upload", "upload")]
    light = [dep for dep in config["dependencies"] if dep.get("queue") is False]
    assert len(light) >= 9  # export (twice), stop, new, past, chip, collection, language, load

"""The web chat's named endpoints ("/ask", "/show") through the official gradio_client.

Found while writing these: gr.State is not an API parameter, so "/ask" is
``predict(question, chat[, collection])``
and "/show" is ``predict(label)``; the citations live in the client's session state, so "/show" only
knows the citations of an "/ask" made earlier by the same Client (same session_hash). Chat messages
come back in Gradio 6's shape: ``content`` is a list of ``{"type": "text", "text": ...}`` parts.
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
LABEL = re.compile(r"^\[(\d+)\] " + re.escape(SEED_SOURCE) + r" \((\d+)–(\d+)\): (.+)$", re.MULTILINE)


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
    """One "/ask" of the German seed question: (chat, textbox, radio update)."""
    return client.predict(DE_Q, [], api_name="/ask")


def text_of(message: dict[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if isinstance(p, dict))


def last_assistant(chat: list[dict[str, Any]]) -> str:
    assert chat and chat[-1]["role"] == "assistant", chat
    return text_of(chat[-1])


def radio_choices(update: Any) -> list[str]:
    """Radio choices from a gr.update dict: [[label, value], ...] or [label, ...]."""
    assert isinstance(update, dict), update
    return [c[1] if isinstance(c, (list, tuple)) else c for c in update["choices"]]


def test_view_api_signature(client: Any) -> None:
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(api) >= {"/ask", "/show"}
    params = api["/ask"]["parameters"]
    assert [p["parameter_name"] for p in params] == ["question", "chat", "collection"]
    assert params[2]["parameter_has_default"] and params[2]["parameter_default"] == "default"
    assert [r["component"] for r in api["/ask"]["returns"]] == ["Chatbot", "Textbox", "Radio"]
    assert [p["parameter_name"] for p in api["/show"]["parameters"]] == ["label"]
    assert [r["component"] for r in api["/show"]["returns"]] == ["Highlightedtext"]


def test_ask_returns_answer_with_citation_labels(german: tuple[Any, ...], seed_text: str) -> None:
    chat, box, picker = german
    assert box == ""  # the question box is cleared
    assert [m["role"] for m in chat] == ["user", "assistant"]
    assert text_of(chat[0]) == DE_Q
    answer = last_assistant(chat)
    assert "15'000" in answer
    labels = LABEL.findall(answer)
    assert labels and labels[0][0] == "1"
    for _, start, end, quote in labels:
        span = seed_text[int(start):int(end)]
        assert quote == span or (quote.endswith("…") and span.startswith(quote[:-1]))
    choices = radio_choices(picker)
    assert choices and all(LABEL.fullmatch(c) for c in choices)
    assert choices[0] in answer


def test_ask_streams_sources_before_the_answer(client: Any) -> None:
    job = client.submit(EN_Q, [], api_name="/ask")
    final = job.result(timeout=180)
    outputs = job.outputs()
    assert len(outputs) >= 2, outputs
    texts = [last_assistant(o[0]) for o in outputs]
    assert texts[0].startswith("Sources: [1] " + SEED_SOURCE), texts[0]
    assert "2000" not in texts[0]  # sources first, no answer yet
    assert final == outputs[-1]
    assert "2000" in texts[-1] and not texts[-1].startswith("Sources:")
    assert LABEL.search(texts[-1])
    first_answer = next(i for i, t in enumerate(texts) if "2000" in t)
    assert first_answer > 0


def test_german_stream_says_quellen(client: Any) -> None:
    job = client.submit(DE_Q, [], api_name="/ask")
    job.result(timeout=180)
    first = last_assistant(job.outputs()[0][0])
    assert first.startswith("Quellen: [1] " + SEED_SOURCE), first


def test_show_marks_exactly_the_cited_span(client: Any, seed_text: str) -> None:
    # Re-ask in this client's session so its citation state is the German answer's.
    _, _, picker = client.predict(DE_Q, [], api_name="/ask")
    def span_of(label: str) -> str:
        _, a, b, _ = LABEL.fullmatch(label).groups()
        return seed_text[int(a):int(b)]

    label = next(c for c in radio_choices(picker) if "15'000" in span_of(c))  # the figure's span
    n, start, end, _ = LABEL.fullmatch(label).groups()
    start, end = int(start), int(end)
    update = client.predict(label, api_name="/show")
    # show() returns gr.update(value=..., label=...), which gradio_client hands back as a dict.
    assert isinstance(update, dict) and update.get("__type__") == "update", update
    assert update["label"] == f"{SEED_SOURCE} · characters {start}–{end}"
    view = update["value"]
    assert isinstance(view, list) and view, view
    marked = [p for p in view if p["class_or_confidence"] is not None]
    assert len(marked) == 1, view
    assert marked[0]["class_or_confidence"] == f"[{n}]"
    assert marked[0]["token"] == seed_text[start:end]
    assert "15'000" in marked[0]["token"]
    # The unmarked parts are the document's own text around the span.
    i = view.index(marked[0])
    before = "".join(p["token"] for p in view[:i]).removeprefix("… ")
    after = "".join(p["token"] for p in view[i + 1:]).removesuffix(" …")
    assert seed_text[:start].endswith(before) and seed_text[end:].startswith(after)
    assert before and after


def test_show_rejects_a_label_that_is_not_a_choice(client: Any, german: tuple[Any, ...]) -> None:
    # Gradio validates the Radio value against the current choices before show() runs.
    with pytest.raises(gradio_client.exceptions.AppError, match="not in the list of choices"):
        client.predict("[9] nope.txt (1–2): x", api_name="/show")


def test_follow_up_through_the_chat(client: Any, german: tuple[Any, ...]) -> None:
    chat, _, _ = german
    chat2, _, picker = client.predict(FOLLOW_UP_Q, chat, api_name="/ask")
    assert [m["role"] for m in chat2] == ["user", "assistant", "user", "assistant"]
    answer = last_assistant(chat2)
    assert "2000" in answer and "gefallen" in answer
    assert radio_choices(picker)


def test_empty_question_is_a_chat_message_not_an_error(client: Any) -> None:
    chat, _, picker = client.predict("   ", [], api_name="/ask")
    assert last_assistant(chat).startswith("⚠") and "empty" in last_assistant(chat)
    assert radio_choices(picker) == []


def test_token_also_guards_the_chat_api(token_server: LiveServer) -> None:  # noqa: F811
    with token_server.client(token="") as anon:
        assert anon.post("/api/ask", json={"question": EN_Q}).status_code == 401  # the REST API
        r = anon.post("/gradio_api/call/ask", json={"data": [EN_Q, []]})
        assert r.status_code in (401, 403), (r.status_code, r.text)

"""The web chat (Gradio): streamed answers, numbered citations, a source view with the span marked."""
from __future__ import annotations

import html
import logging
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from app.access import Caller
from app.engine import MAX_TURN_CHARS, AnswerEngine, BusyError, QuestionError
from app.messages import public_detail
from store.collection import StoreError
from store.naming import DEFAULT_COLLECTION, CollectionNameError, checked_collection

logger = logging.getLogger(__name__)

EXAMPLES = [
    "Wie viele nordkoreanische Soldaten kämpfen im Ukraine-Krieg?",
    "How many North Korean soldiers have died?",
    "Wie viel kam von Russland zurück?",
    "What is the population of North Korea?",
]
CONTEXT_CHARS = 500


def citation_label(c: dict[str, Any]) -> str:
    quote = c["quote"] if len(c["quote"]) <= 70 else c["quote"][:67] + "…"
    return f"[{c['n']}] {c['source']} ({c['start']}–{c['end']}): {quote}"


def highlight(text: str, start: int, end: int, label: str,
              context: int = CONTEXT_CHARS) -> list[tuple[str, str | None]]:
    """The passage around text[start:end], split so that exactly the cited span is marked."""
    lo, hi = max(0, start - context), min(len(text), end + context)
    while lo > 0 and not text[lo - 1].isspace():  # widen to whole words
        lo -= 1
    while hi < len(text) and not text[hi].isspace():
        hi += 1
    parts: list[tuple[str, str | None]] = []
    if lo > 0:
        parts.append(("… ", None))
    parts += [(text[lo:start], None), (text[start:end], label), (text[end:hi], None)]
    if hi < len(text):
        parts.append((" …", None))
    return [p for p in parts if p[0]]


# A visible line that says how sure the answer is (the answer kinds of app/answer/selection.py).
_KIND_LABELS = {
    "answered": {"de": "✔ Antwort aus den Quellen", "en": "✔ Answer from the sources"},
    "candidates": {"de": "? Keine eindeutige Antwort – die nächsten Stellen",
                   "en": "? No single clear answer – the closest passages"},
}


UI_HISTORY_TURNS = 8


class UIRefusal(Exception):
    """This session may not do what it asked (the message is shown in the chat)."""


def build_ui(engine: AnswerEngine,
             caller_of: Callable[[str | None], Caller | None] | None = None) -> gr.Blocks:
    """The chat as a Blocks app; its endpoints are named for gradio_client ("/ask", "/show").
    ``caller_of`` maps a logged-in user name to the caller (see Access.caller_named): every
    question and source view is checked against the caller's collections."""
    caller_of = caller_of or (lambda _user: Caller("anonymous"))

    def usable(request: gr.Request | None) -> list[str]:
        caller = caller_of(getattr(request, "username", None))
        return caller.usable(engine.collections.names()) if caller is not None else []

    def allowed(collection: str | None, request: gr.Request | None) -> str:
        """The collection to read, or UIRefusal saying why this session may not."""
        caller = caller_of(getattr(request, "username", None))
        if caller is None:
            raise UIRefusal("this session's key was revoked or may no longer ask; log in again")
        name = checked_collection(collection)
        if not caller.may_use(name):
            raise UIRefusal(f"you may not use the collection '{name}'")
        return name

    def ask(question: str, chat: list[dict[str, Any]], collection: str | None,
            cites: list[dict[str, Any]], request: gr.Request
            ) -> Iterator[tuple[Any, ...]]:
        try:
            name = allowed(collection, request)
            yield from answer_turn(question, chat, name, cites)
        except (StoreError, BusyError, UIRefusal, CollectionNameError) as exc:
            logger.warning("answer failed: %s", exc)
            yield chat + [{"role": "user", "content": html.escape(question, quote=False)},
                          {"role": "assistant",
                           "content": _safe(f"⚠ {public_detail(str(exc), 300)}")}], \
                question, cites, gr.update()

    def answer_turn(question: str, chat: list[dict[str, Any]], collection: str,
                    cites: list[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
        # The answer reads the last user turn and the model the last 4 turns: older turns of a
        # long conversation (or a crafted one) are not sent, and each is capped.
        history = [{"role": m["role"],
                    "content": html.unescape(_plain(m["content"]))[:MAX_TURN_CHARS]}
                   for m in chat[-UI_HISTORY_TURNS:] if m.get("role") in ("user", "assistant")]
        chat = chat + [{"role": "user", "content": html.escape(question, quote=False)}]
        try:
            events = engine.stream(question, history, collection=collection)
            first = next(events)
        except QuestionError as exc:
            yield chat + [{"role": "assistant", "content": _safe(f"⚠ {exc}")}], "", cites, \
                gr.update(choices=[], value=None)
            return
        sources = first.data
        head = ("Quellen: " if _is_de(question) else "Sources: ") + "  ".join(
            f"[{s.n}] {s.chunk.source}" for s in sources) + "\n\n"
        text = ""
        yield chat + [{"role": "assistant", "content": _safe(head + "…")}], "", cites, gr.update()
        for event in events:
            if event.kind == "token":
                text += event.data
                yield chat + [{"role": "assistant", "content": _safe(head + text)}], "", cites, \
                    gr.update()
            elif event.kind == "final":
                answer = event.data.to_dict(with_sources=False)
                body = answer["answer"]
                kind_label = _KIND_LABELS.get(answer["kind"], {})
                if kind_label:
                    body = f"{kind_label['de' if _is_de(question) else 'en']}\n{body}"
                if answer["notice"]:
                    body += f"\n\n{answer['notice']}"
                if answer["citations"]:
                    body += "\n\n" + "\n".join(citation_label(c) for c in answer["citations"])
                cites = [{**c, "collection": collection} for c in answer["citations"]]
                labels = [citation_label(c) for c in cites]
                yield chat + [{"role": "assistant", "content": _safe(body)}], "", cites, \
                    gr.update(choices=labels, value=None)

    def show(label: str | None, cites: list[dict[str, Any]], request: gr.Request) -> Any:
        chosen = next((c for c in cites if citation_label(c) == label), None)
        if chosen is None:
            return gr.update(value=[])
        try:
            store = engine.collections.store(allowed(chosen.get("collection"), request))
        except (UIRefusal, StoreError) as exc:
            return gr.update(value=[(f"⚠ {public_detail(str(exc), 300)}", None)])
        doc = store.document(chosen["source"])
        if doc is None:
            return gr.update(value=[(f"'{chosen['source']}' is no longer stored.", None)])
        return gr.update(value=highlight(doc.text, chosen["start"], chosen["end"],
                                         f"[{chosen['n']}]"),
                         label=f"{chosen['source']} · characters {chosen['start']}–{chosen['end']}")

    with gr.Blocks(title="beleg") as blocks:
        gr.Markdown("## beleg — answers with sources you can check")
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Chat", height=480, render_markdown=False,
                                     elem_id="chat")
                box = gr.Textbox(label="Question / Frage", placeholder="Ask about your documents",
                                 elem_id="question")
                send = gr.Button("Ask", variant="primary", elem_id="ask")
                # Filled when the page loads, with the collections this session may use.
                # Any value is accepted here: ``allowed`` checks it against the session's key.
                collection = gr.Dropdown([DEFAULT_COLLECTION], value=DEFAULT_COLLECTION,
                                         label="Collection", elem_id="collection",
                                         allow_custom_value=True)
                gr.Examples(EXAMPLES, inputs=box)
            with gr.Column(scale=2):
                picker = gr.Radio(label="Citations (click to view)", choices=[],
                                  elem_id="citations")
                view = gr.HighlightedText(label="Source", elem_id="source-view",
                                          combine_adjacent=False, show_legend=False)
        cites = gr.State([])
        for trigger in (box.submit, send.click):
            trigger(ask, [box, chatbot, collection, cites], [chatbot, box, cites, picker],
                    api_name="ask" if trigger == send.click else False)
        picker.change(show, [picker, cites], [view], api_name="show")

        def choices(request: gr.Request) -> Any:
            names = usable(request)
            return gr.update(choices=names or [DEFAULT_COLLECTION],
                             value=names[0] if names else DEFAULT_COLLECTION,
                             visible=len(names) > 1)
        blocks.load(choices, None, [collection], api_name=False)
    return blocks


def _safe(text: str) -> str:
    """Chat bubbles render HTML: escape so that document and user text show as typed."""
    return html.escape(text, quote=False)


def _plain(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) if isinstance(p, dict) else str(p)
                        for p in content)
    return str(content)


def _is_de(text: str) -> bool:
    from app.answer.analysis import detect_language

    return detect_language(text) == "de"

"""The web chat (Gradio): answers stream with a timer and a Stop button, every [n] is a chip that
opens the cited span in a readable source view, the conversation survives a reload, and the
documents of a collection can be uploaded, listed and removed."""
from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from app.access import Caller
from app.engine import MAX_TURN_CHARS, AnswerEngine, BusyError, QuestionError
from app.library import IngestReport, Library, load_upload
from app.messages import public_detail
from app.ui_render import (
    conversation_html,
    conversation_markdown,
    documents_html,
    source_html,
    turn_citations,
)
from app.ui_text import LANGUAGES, pick_language, t
from ingest.documents import Document
from ingest.loaders import supported_suffixes
from store.collection import StoreError
from store.naming import DEFAULT_COLLECTION, CollectionNameError, checked_collection

logger = logging.getLogger(__name__)

# Turns of the conversation sent with a question (the answer reads the last user turn and the
# model the last 4; older turns would only make the request larger).
UI_HISTORY_TURNS = 8
# Turns kept in the browser: a long-running conversation stays a few hundred KB of storage.
KEPT_TURNS = 50
STORAGE_KEY = "beleg-conversation"
ARCHIVE_KEY = "beleg-earlier-conversations"
KEPT_CONVERSATIONS = 20
# Gradio runs one call of each event at a time unless told otherwise, so a long answer would
# hold every other session's question. Questions are gated by the engine's answer slots (and
# its queue timeout), so the chat adds no limit of its own. Uploads and removals stay one at a
# time.
UNLIMITED: int | None = None
WRITES_AT_ONCE = 1
# The light events (source view, document list, conversations, export, language) skip Gradio's
# queue and answer their own HTTP request. Queued events share one event stream per page, which
# the server closes when its last event completes; an event queued in the instant between that
# decision and the page reading it is never delivered (Gradio 6.31's client keeps the closing
# stream for it), and the page waits forever. That lost a chip click after a reload and a
# question asked as the previous answer's export finished (tests/test_browser.py, CI of stops
# 20 and 21). With only questions and uploads on the queue, the stream closes only when an
# answer or an upload ends.
LIGHT = dict(api_name=False, queue=False)

# The chat's own script: a click (or Enter) on a chip asks for that span; a running answer's
# timer is counted here, so it moves while the server is busy.
CHAT_JS = """
element.addEventListener('click', (e) => {
  const chip = e.target.closest('button.cite');
  if (!chip) return;
  trigger('click', {turn: Number(chip.dataset.turn), cite: Number(chip.dataset.cite)});
});
setInterval(() => {
  const running = element.querySelector('.elapsed[data-running]');
  if (!running) { element._t0 = null; return; }
  element._t0 = element._t0 || Date.now();
  running.textContent = ((Date.now() - element._t0) / 1000).toFixed(1) + ' s';
}, 100);
watch('value', () => {
  const conv = element.querySelector('.conv');
  if (conv) conv.scrollTop = conv.scrollHeight;
});
"""
SOURCE_JS = """
watch('value', () => {
  const hit = element.querySelector('#beleg-hit');
  if (hit) hit.scrollIntoView({block: 'center'});
});
"""
LANG_JS = "(lang, turns) => { document.documentElement.lang = lang; return [lang, turns]; }"

CSS = """
.form:has(> #language) { background: transparent; border: none; box-shadow: none; }
#chat .conv { max-height: 62vh; overflow-y: auto; padding: 4px; }
#chat .msg { margin: 8px 0; padding: 10px 12px; border-radius: 10px; line-height: 1.5;
  overflow-wrap: break-word; }
#chat .user { background: var(--background-fill-secondary); margin-left: 15%; }
#chat .user .who { display: none; }
#chat .bot { border: 1px solid var(--border-color-primary); margin-right: 5%; }
#chat .kind { font-size: .85em; font-weight: 600; margin-bottom: 4px; }
#chat .kind-answered { color: var(--color-green-600, #15803d); }
#chat .kind-candidates { color: var(--color-orange-600, #c2410c); }
#chat .kind-refused { color: var(--body-text-color-subdued); }
#chat .short { margin: 4px 0 8px; }
#chat .short-label, #chat .used, #chat .notice, #chat .status { font-size: .85em;
  color: var(--body-text-color-subdued); }
#chat .used { margin-top: 6px; }
#chat details.removed { margin-top: 6px; font-size: .85em; }
#chat .empty { color: var(--body-text-color-subdued); padding: 12px; }
button.cite { display: inline-block; min-width: 1.6em; padding: 0 .35em; margin: 0 .1em;
  border-radius: 999px; border: 1px solid var(--color-accent); color: var(--color-accent);
  background: transparent; font-size: .8em; line-height: 1.5; cursor: pointer; }
button.cite:hover, button.cite:focus-visible { background: var(--color-accent); color: white;
  outline: 2px solid var(--color-accent); outline-offset: 1px; }
#source-view .doc { line-height: 1.6; font-size: 15px; overflow-wrap: normal; word-break: normal;
  hyphens: manual; max-height: 70vh; overflow-y: auto; padding-right: 6px; }
#source-view .doc h3 { margin: 0 0 2px; }
#source-view .facts { font-size: .85em; color: var(--body-text-color-subdued); margin-bottom: 8px; }
#source-view .para { display: block; height: .8em; }
#source-view mark { background: #fde68a; color: #111; padding: 1px 0; border-radius: 2px; }
#documents table.docs { width: 100%; border-collapse: collapse; font-size: .9em; }
#documents td, #documents th { text-align: left; padding: 4px 6px;
  border-bottom: 1px solid var(--border-color-primary); vertical-align: top; }
"""


class UIRefusal(Exception):
    """This session may not do what it asked (the message is shown in the page)."""


def build_ui(engine: AnswerEngine,
             caller_of: Callable[[str | None], Caller | None] | None = None,
             examples: tuple[str, ...] = (),
             max_upload_bytes: int = 50 * 1024 * 1024) -> gr.Blocks:
    """The chat as a Blocks app. ``caller_of`` maps a logged-in user name to the caller (see
    Access.caller_named): every question, source view and document change is checked against
    the caller's collections and scopes. Named endpoints for gradio_client: "/ask"."""
    caller_of = caller_of or (lambda _user: Caller("anonymous"))
    stops: dict[str, threading.Event] = {}  # a session's running answer, for its Stop button

    def caller(request: gr.Request | None) -> Caller:
        found = caller_of(getattr(request, "username", None))
        if found is None:
            raise UIRefusal("this session's key was revoked or may no longer ask; log in again")
        return found

    def allowed(collection: str | None, request: gr.Request | None, scope: str = "ask") -> str:
        """The collection to use, or UIRefusal saying why this session may not."""
        who = caller(request)
        name = checked_collection(collection)
        if not who.may_use(name):
            raise UIRefusal(f"you may not use the collection '{name}'")
        if not who.allows(scope):
            raise UIRefusal(f"your key lacks the scope '{scope}'")
        return name

    def titles_of(collection: str) -> dict[str, str]:
        return {d.source: str(d.metadata.get("title") or d.source)
                for d in engine.collections.store(collection).documents()}

    # ---- asking
    def ask(question: str, turns: list[dict[str, Any]] | None, collection: str | None,
            lang: str, request: gr.Request) -> Iterator[tuple[Any, ...]]:
        turns = list(turns or [])[-KEPT_TURNS:]
        lang = lang if lang in LANGUAGES else "en"
        question = question or ""
        turn: dict[str, Any] = {"q": question, "collection": collection or DEFAULT_COLLECTION,
                                "answer": None, "partial": ""}
        turns.append(turn)
        busy = (gr.update(interactive=False), gr.update(interactive=True))
        idle = (gr.update(interactive=True), gr.update(interactive=False))
        stop = threading.Event()
        session = getattr(request, "session_hash", None) or ""
        stops[session] = stop
        try:
            name = allowed(collection, request)
            turn["collection"] = name
            history = _history(turns[:-1])
            events = engine.stream(question, history, collection=name, cancel=stop)
            next(events)  # the sources: validation errors surface here
            yield "", turns, conversation_html(turns, lang), *busy
            # From here on the box is left alone: what is typed meanwhile stays in it.
            for event in events:
                if event.kind == "token":
                    turn["partial"] += event.data
                    yield gr.update(), turns, conversation_html(turns, lang), *busy
                elif event.kind == "final":
                    turn["answer"] = _kept(event.data.to_dict(with_sources=False))
                    turn["titles"] = titles_of(name)
                    turn.pop("partial", None)
        except (QuestionError, StoreError, BusyError, UIRefusal, CollectionNameError) as exc:
            logger.info("chat question refused: %s", exc)
            turn["error"] = public_detail(str(exc), 300)
            turn.pop("partial", None)
        finally:
            if stops.get(session) is stop:
                del stops[session]
        # The box is not touched: a refused question stays there to be fixed, and a question
        # typed while the answer ran stays to be asked next.
        yield gr.update(), turns, conversation_html(turns, lang), *idle

    def stop_answer(request: gr.Request) -> None:
        running = stops.get(getattr(request, "session_hash", None) or "")
        if running is not None:
            running.set()

    def new_conversation(current: list[dict[str, Any]] | None,
                         archive: list[dict[str, Any]] | None, lang: str) -> tuple[Any, ...]:
        """Keep the current conversation among the earlier ones and start an empty one."""
        archive = _archived(current, list(archive or []))
        return ([], archive, conversation_html([], lang), source_html(None, None, lang), None,
                _choices(archive))

    def open_conversation(index: int | None, current: list[dict[str, Any]] | None,
                          archive: list[dict[str, Any]] | None, lang: str) -> tuple[Any, ...]:
        """Swap an earlier conversation in; the current one joins the earlier ones."""
        archive = list(archive or [])
        if index is None or not 0 <= int(index) < len(archive):
            return gr.update(), gr.update(), gr.update(), gr.update(), gr.update()
        chosen = archive.pop(int(index))["turns"]
        archive = _archived(current, archive)
        return (chosen, archive, conversation_html(chosen, lang), export(chosen, lang),
                _choices(archive))

    def export(turns: list[dict[str, Any]] | None, lang: str) -> str | None:
        if not turns:
            return None
        path = Path(tempfile.mkdtemp(prefix="beleg-export-")) / "beleg-conversation.md"
        path.write_text(conversation_markdown(turns, lang), encoding="utf-8")
        return str(path)

    # ---- the source view
    def show(turns: list[dict[str, Any]] | None, lang: str, evt: gr.EventData,
             request: gr.Request) -> tuple[Any, ...]:
        data = getattr(evt, "_data", None) or {}
        try:
            turn = (turns or [])[int(data.get("turn", -1))]
            cite = turn_citations(turn["answer"])[int(data.get("cite", -1))]
        except (IndexError, KeyError, TypeError, ValueError):
            return gr.update(), gr.update()
        try:
            store = engine.collections.store(allowed(turn.get("collection"), request, "ask"))
            doc = store.document(cite["source"])
        except (UIRefusal, StoreError, CollectionNameError) as exc:
            return f'<div class="hint">⚠ {public_detail(str(exc), 300)}</div>', gr.update()
        view = None if doc is None else {"source": doc.source, "text": doc.text,
                                         "metadata": doc.metadata}
        return source_html(view, cite, lang), gr.Tabs(selected="source-tab")

    # ---- documents
    def doc_list(collection: str | None, lang: str, request: gr.Request) -> tuple[Any, ...]:
        try:
            name = allowed(collection, request, "read")
            docs = engine.collections.store(name).documents()
        except (UIRefusal, StoreError, CollectionNameError) as exc:
            return f'<div class="hint">⚠ {public_detail(str(exc), 300)}</div>', gr.update(
                choices=[], value=None)
        rows = [{"source": d.source, "chunks": d.chunks, "metadata": d.metadata} for d in docs]
        return documents_html(rows, lang), gr.update(choices=[d.source for d in docs],
                                                      value=None)

    def upload(files: list[Any] | None, collection: str | None, lang: str,
               request: gr.Request) -> tuple[Any, ...]:
        try:
            name = allowed(collection, request, "write")
        except (UIRefusal, CollectionNameError) as exc:
            return (t("may_not_write", lang) if isinstance(exc, UIRefusal) else str(exc),
                    *doc_list(collection, lang, request), None)
        report = IngestReport()
        parsed: list[Document] = []
        for f in files or []:
            path = Path(getattr(f, "name", None) or str(f))
            shown = Path(getattr(f, "orig_name", "") or path.name).name
            doc = load_upload(shown, path, report, max_upload_bytes, shown)
            if doc is not None:
                parsed.append(doc)
        if report.failed:  # all or nothing, as the API's upload
            message = t("refused_files", lang, failed="; ".join(f"{p}: {r}"
                                                              for p, r in report.failed))
            return message, *doc_list(name, lang, request), None
        store = engine.collections.store(name, create=True)
        Library(store, engine.retriever.embedder).add_documents(parsed, report)
        message = t("ingested", lang, added=", ".join(report.added) or "–",
                    replaced=", ".join(report.replaced) or "–",
                    unchanged=", ".join(report.unchanged) or "–")
        return message, *doc_list(name, lang, request), None

    def remove(source: str | None, collection: str | None, lang: str,
               request: gr.Request) -> tuple[Any, ...]:
        if not source:
            return gr.update(), *doc_list(collection, lang, request)
        try:
            name = allowed(collection, request, "write")
            engine.collections.store(name).remove(source)
        except UIRefusal:
            return t("may_not_write", lang), *doc_list(collection, lang, request)
        except (StoreError, CollectionNameError) as exc:
            return public_detail(str(exc), 300), *doc_list(collection, lang, request)
        return t("removed_doc", lang, name=source), *doc_list(name, lang, request)

    # ---- the page
    def on_load(turns: list[dict[str, Any]] | None, archive: list[dict[str, Any]] | None,
                request: gr.Request) -> tuple[Any, ...]:
        lang = pick_language(request.headers.get("accept-language") if request else None)
        try:
            names = caller(request).usable(engine.collections.names())
        except UIRefusal:
            names = []
        choice = names[0] if names else DEFAULT_COLLECTION
        return (lang, gr.update(value=lang), gr.update(
            choices=names or [DEFAULT_COLLECTION], value=choice, visible=len(names) > 1),
            conversation_html(list(turns or []), lang), source_html(None, None, lang),
            *doc_list(choice, lang, request), export(turns, lang), _choices(list(archive or [])),
            gr.update(interactive=True))

    def relabel(lang: str, _turns: list[dict[str, Any]] | None) -> tuple[Any, ...]:
        lang = lang if lang in LANGUAGES else "en"
        return (lang, f"## {t('title', lang)}",
                gr.update(label=t("question", lang), placeholder=t("placeholder", lang)),
                gr.update(value=t("ask", lang)), gr.update(value=t("stop", lang)),
                gr.update(value=t("clear", lang)), gr.update(label=t("export", lang)),
                gr.update(label=t("collection", lang)), gr.update(label=t("language", lang)),
                gr.Tab(label=t("source", lang)), gr.Tab(label=t("docs_tab", lang)),
                gr.update(label=t("upload", lang)), gr.update(value=t("delete", lang)),
                gr.update(label=t("doc_file", lang)), gr.update(label=t("conversations", lang)))

    def rerender(turns: list[dict[str, Any]] | None, lang: str,
                 request: gr.Request) -> Any:
        """The conversation in the new language, unless an answer is running: its turns are
        newer than the ones this event read, and the answer renders itself when done."""
        if (getattr(request, "session_hash", None) or "") in stops:
            return gr.update()
        return conversation_html(list(turns or []), lang)

    with gr.Blocks(title="beleg") as blocks:  # CSS goes to mount_gradio_app (Gradio 6)
        lang = gr.State("en")
        turns = gr.BrowserState([], storage_key=STORAGE_KEY)
        archive = gr.BrowserState([], storage_key=ARCHIVE_KEY)  # the earlier conversations
        with gr.Row():
            heading = gr.Markdown(f"## {t('title', 'en')}", elem_id="heading")
            collection = gr.Dropdown([DEFAULT_COLLECTION], value=DEFAULT_COLLECTION,
                                     label=t("collection", "en"), elem_id="collection",
                                     allow_custom_value=True, scale=0, min_width=160)
            language = gr.Radio(list(LANGUAGES), value="en", label=t("language", "en"),
                                elem_id="language", scale=0, min_width=120)
        with gr.Row():
            with gr.Column(scale=3, min_width=320):
                chat = gr.HTML(conversation_html([], "en"), elem_id="chat",
                               html_template='<div class="conv">${value}</div>',
                               js_on_load=CHAT_JS, apply_default_css=False)
                box = gr.Textbox(label=t("question", "en"), placeholder=t("placeholder", "en"),
                                 elem_id="question", lines=1, max_lines=6)
                with gr.Row():
                    # enabled once the page has loaded (its language and conversation)
                    send = gr.Button(t("ask", "en"), variant="primary", elem_id="ask",
                                     interactive=False)
                    stop = gr.Button(t("stop", "en"), variant="stop", elem_id="stop",
                                     interactive=False)
                    new = gr.Button(t("clear", "en"), elem_id="clear")
                    download = gr.DownloadButton(t("export", "en"), elem_id="export")
                past = gr.Dropdown([], value=None, label=t("conversations", "en"),
                                   elem_id="conversations", interactive=True)
                if examples:
                    gr.Examples(list(examples), inputs=box, label=t("examples", "en"))
            with gr.Column(scale=2, min_width=300, elem_id="side"):
                with gr.Tabs(selected="source-tab") as tabs:
                    with gr.Tab(t("source", "en"), id="source-tab") as source_tab:
                        source = gr.HTML(source_html(None, None, "en"), elem_id="source-view",
                                         js_on_load=SOURCE_JS, apply_default_css=False)
                    with gr.Tab(t("docs_tab", "en"), id="docs-tab") as docs_tab:
                        files = gr.File(label=t("upload", "en"), file_count="multiple",
                                        file_types=sorted(supported_suffixes()),
                                        elem_id="upload")
                        doc_status = gr.Markdown(elem_id="doc-status")
                        documents = gr.HTML(elem_id="documents", apply_default_css=False)
                        with gr.Row():
                            pick = gr.Dropdown([], label=t("doc_file", "en"), elem_id="pick",
                                               scale=3)
                            drop = gr.Button(t("delete", "en"), elem_id="remove", scale=1)

        asking = dict(fn=ask, inputs=[box, turns, collection, lang],
                      outputs=[box, turns, chat, send, stop], trigger_mode="once",
                      concurrency_limit=UNLIMITED)
        send.click(**asking, api_name="ask").then(export, [turns, lang], [download], **LIGHT)
        box.submit(**asking, api_name=False).then(export, [turns, lang], [download], **LIGHT)
        stop.click(stop_answer, None, None, api_name=False, queue=False)
        new.click(new_conversation, [turns, archive, lang],
                  [turns, archive, chat, source, download, past], **LIGHT)
        past.input(open_conversation, [past, turns, archive, lang],
                   [turns, archive, chat, download, past], **LIGHT)
        chat.click(show, [turns, lang], [source, tabs], trigger_mode="always_last",
                   **LIGHT)  # the latest chip wins, none is skipped
        files.upload(upload, [files, collection, lang], [doc_status, documents, pick, files],
                     api_name=False, concurrency_limit=WRITES_AT_ONCE)
        drop.click(remove, [pick, collection, lang], [doc_status, documents, pick],
                   api_name=False, concurrency_limit=WRITES_AT_ONCE)
        collection.change(doc_list, [collection, lang], [documents, pick], **LIGHT)
        language.change(relabel, [language, turns], [lang, heading, box, send, stop, new,
                                                     download, collection, language, source_tab,
                                                     docs_tab, files, drop, pick, past],
                        js=LANG_JS, **LIGHT).then(rerender, [turns, lang], [chat], **LIGHT)
        blocks.load(on_load, [turns, archive], [lang, language, collection, chat, source,
                                                documents, pick, download, past, send],
                    **LIGHT)
    return blocks


def _history(turns: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The conversation as the engine reads it: the recent questions and answers."""
    out: list[dict[str, str]] = []
    for turn in turns[-UI_HISTORY_TURNS:]:
        answer = turn.get("answer")
        if answer is None:
            continue
        out += [{"role": "user", "content": turn["q"][:MAX_TURN_CHARS]},
                {"role": "assistant", "content": answer.get("answer", "")[:MAX_TURN_CHARS]}]
    return out


def _archived(current: list[dict[str, Any]] | None, archive: list[dict[str, Any]]
              ) -> list[dict[str, Any]]:
    """The earlier conversations with ``current`` (if it has a turn) first, named by its first
    question, the oldest dropped beyond KEPT_CONVERSATIONS."""
    if current:
        archive = [{"title": current[0]["q"][:80], "turns": current}] + archive
    return archive[:KEPT_CONVERSATIONS]


def _choices(archive: list[dict[str, Any]]) -> Any:
    return gr.update(choices=[(f"{c['title']} ({len(c['turns'])})", i)
                              for i, c in enumerate(archive)], value=None)


def _kept(answer: dict[str, Any]) -> dict[str, Any]:
    """What the browser keeps of an answer (no timings)."""
    return {k: answer[k] for k in ("answer", "kind", "short_answer", "citations", "notice",
                                   "unverified", "conflict", "collection", "language", "mode")
            if k in answer}

"""The web chat in a real browser (Debian chromium via playwright) against real uvicorn servers:
ask, click a citation chip, the source view, Stop, reload, export, upload and remove, a phone,
German and English. Screenshots go to the test's tmp dir and to reports/screenshots/.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import EndlessLLM
from servers import LiveServer, live_server, serve  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
REPORTS = Path(__file__).resolve().parents[1] / "reports" / "screenshots"
DE_Q = "Wie viele nordkoreanische Soldaten kämpfen im Ukraine-Krieg?"
EN_Q = "How many North Korean soldiers have died?"
TIMEOUT_MS = 180_000
SEED_TITLE = "Die russisch-nordkoreanische Zusammenarbeit entpuppt sich zunehmend"

if not CHROMIUM.exists():
    pytest.skip("Debian chromium is not installed at /usr/bin/chromium", allow_module_level=True)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    b = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                   headless=True)
    yield b
    b.close()


def _context(browser: Any, **kwargs: Any) -> Any:
    ctx = browser.new_context(**{"viewport": {"width": 1400, "height": 1000},
                                 "locale": "de-CH", **kwargs})
    ctx.set_default_timeout(TIMEOUT_MS)
    return ctx


@pytest.fixture(scope="module")
def browser_context(browser: Any) -> Iterator[Any]:
    profile = tempfile.mkdtemp(prefix="beleg-chromium-")
    ctx = _context(browser)
    try:
        yield ctx
    finally:
        ctx.close()
        shutil.rmtree(profile, ignore_errors=True)


def open_chat(ctx: Any, url: str) -> Any:
    """A new page of the chat, once it has loaded (the Ask button is enabled by the page's
    load event, after the language and the kept conversation are in)."""
    page = ctx.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.console = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("console", lambda msg: page.console.append(f"{msg.type}: {msg.text}"))
    page.goto(url + "/")
    page.wait_for_selector("#question textarea")
    page.wait_for_selector("#ask:not([disabled])")
    return page


def state_of(page: Any) -> str:
    """What the page shows and logged, for a failure message."""
    try:
        chat = page.locator("#chat").inner_text(timeout=2000)
        side = page.locator("#side").inner_text(timeout=2000)
    except Exception as exc:  # noqa: BLE001 (the page may be gone; say so)
        chat, side = f"<unreadable: {exc}>", ""
    return (f"chat: {chat[-1500:]!r}\nside: {side[:500]!r}\n"
            f"errors: {page.errors}\nconsole: {page.console[-20:]}\n"  # type: ignore[attr-defined]
            f"server threads (the live server runs in this process):\n{busy_threads()}")


def busy_threads(frames: int = 8) -> str:
    """The innermost frames of every thread that is inside beleg, Chroma or Gradio's queue:
    tells a server that hangs from a page that never heard the answer."""
    ours = ("/app/", "/store/", "/ingest/", "chromadb", "gradio/queueing", "gradio/utils")
    out = []
    for ident, frame in sys._current_frames().items():
        stack = traceback.extract_stack(frame)
        if ident == threading.get_ident() or not any(m in f.filename for f in stack for m in ours):
            continue
        out.append(f"-- thread {ident}\n" + "".join(traceback.format_list(stack[-frames:])))
    return "\n".join(out)[-8000:] or "(none busy)"


def shown(page: Any, selector: str) -> Any:
    """Wait until ``selector`` is visible; a timeout says what the page showed instead."""
    locator = page.locator(selector)
    try:
        locator.first.wait_for()
    except sync_api.TimeoutError as exc:
        raise AssertionError(f"{selector} never showed\n{state_of(page)}") from exc
    return locator


@pytest.fixture
def page(browser_context: Any, live_server: LiveServer) -> Iterator[Any]:  # noqa: F811
    page = open_chat(browser_context, live_server.url)
    # the page has loaded and taken the browser's language (de-CH) before anything is asked
    page.wait_for_function("() => document.querySelector('#ask').innerText.trim() === 'Fragen'")
    page.click("#clear")  # each test starts a new conversation (it is kept in the browser)
    yield page
    page.close()


def screenshot(page: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 20_000, path.stat().st_size  # not a blank page
    REPORTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, REPORTS / path.name)
    return path


def ask(page: Any, question: str, answers: int = 1) -> Any:
    """Ask and wait until the ``answers``-th answer is final (it has a kind line)."""
    page.fill("#question textarea", question)
    page.click("#ask")
    try:
        page.wait_for_function(
            "(n) => document.querySelectorAll('#chat .msg.bot .kind').length >= n", arg=answers)
    except sync_api.TimeoutError as exc:
        raise AssertionError(f"answer {answers} never came\n{state_of(page)}") from exc
    return page.locator("#chat .msg.bot").nth(answers - 1)


def test_ask_click_a_chip_and_read_the_span(page: Any, tmp_path: Path, seed_text: str) -> None:
    bot = ask(page, DE_Q)
    assert "15'000" in bot.inner_text()
    chips = bot.locator("button.cite")
    assert chips.count() >= 1
    first = chips.first
    tip = first.get_attribute("title") or ""
    assert tip.startswith(SEED_TITLE) and "«" in tip  # hover shows the quote
    assert page.input_value("#question textarea") == ""
    assert page.locator("#chat").inner_text().count(tip.split("«")[1][:40]) <= 1  # not thrice
    screenshot(page, tmp_path, "01-answer")

    first.focus()
    page.keyboard.press("Enter")  # a chip works from the keyboard
    mark = shown(page, "#source-view mark#beleg-hit")
    start, end = int(mark.get_attribute("data-start")), int(mark.get_attribute("data-end"))
    assert mark.text_content() == seed_text[start:end]
    assert tip.split("«")[1].rstrip("»").rstrip("…") in seed_text[start:end] or \
        seed_text[start:end].startswith(tip.split("«")[1][:30])
    view = page.locator("#source-view")
    assert SEED_TITLE in view.locator("h3").inner_text()
    assert "2025-09-18" in view.inner_text()
    # readable: normal wrapping, no word cut in the middle
    style = page.evaluate("() => { const d = document.querySelector('#source-view .doc');"
                          " const s = getComputedStyle(d); return [s.wordBreak, s.lineHeight]; }")
    assert style[0] == "normal" and float(style[1].rstrip("px")) < 40
    in_view = page.evaluate("() => { const r = document.querySelector('#beleg-hit')"
                            ".getBoundingClientRect(); return r.top >= 0 && r.top < innerHeight; }")
    assert in_view
    screenshot(page, tmp_path, "02-source-view")
    assert page.errors == []  # type: ignore[attr-defined]


def test_chips_of_every_answer_open_their_own_span(page: Any, seed_text: str) -> None:
    ask(page, DE_Q)
    ask(page, EN_Q, answers=2)
    first_answer = page.locator("#chat .msg.bot").nth(0)
    chip = first_answer.locator("button.cite").first
    tip = chip.get_attribute("title") or ""
    chip.click()
    shown(page, "#source-view mark#beleg-hit")
    quote = tip.split("«", 1)[1].rstrip("»")
    page.wait_for_function("(q) => document.querySelector('#beleg-hit').textContent"
                           ".startsWith(q.slice(0, 30))", arg=quote)


def test_reload_keeps_the_conversation_and_new_clears_it(page: Any, tmp_path: Path) -> None:
    ask(page, DE_Q)
    page.reload()
    page.wait_for_selector("#chat .msg.bot .kind")
    assert "15'000" in page.locator("#chat").inner_text()
    page.locator("#chat button.cite").first.click()  # chips work after a reload too
    shown(page, "#source-view mark#beleg-hit")
    with page.expect_download() as download:
        page.click("#export")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert f"**Frage:** {DE_Q}" in text and "«" in text and "000_218c33ea26fbfb53.txt" in text
    page.click("#clear")
    page.wait_for_function("() => !document.querySelector('#chat .msg')")
    page.reload()
    page.wait_for_selector("#question textarea")
    page.wait_for_timeout(500)
    assert page.locator("#chat .msg").count() == 0


def test_earlier_conversations_come_back(page: Any) -> None:
    ask(page, DE_Q)
    page.click("#clear")  # the German conversation is kept among the earlier ones
    page.wait_for_function("() => !document.querySelector('#chat .msg')")
    ask(page, EN_Q)
    page.locator("#conversations input").click()
    page.locator("[role='option']", has_text=DE_Q[:30]).first.click()
    page.wait_for_function("(q) => document.querySelector('#chat').innerText.includes(q)",
                           arg=DE_Q)
    assert EN_Q not in page.locator("#chat").inner_text()
    page.reload()  # both survive a reload: the current one shown, the other listed
    page.wait_for_selector("#chat .msg.bot .kind")
    assert DE_Q in page.locator("#chat").inner_text()
    page.locator("#conversations input").click()
    assert page.locator("[role='option']", has_text=EN_Q[:30]).count() >= 1


def test_german_and_english_follow_the_browser(browser: Any, live_server: LiveServer,  # noqa: F811
                                               tmp_path: Path) -> None:
    for locale, word, lang in (("de-CH", "Fragen", "de"), ("en-US", "Ask", "en")):
        ctx = _context(browser, locale=locale)
        try:
            page = open_chat(ctx, live_server.url)
            page.wait_for_function("(l) => document.documentElement.lang === l", arg=lang)
            page.wait_for_function("(w) => document.querySelector('#ask').innerText.trim() === w",
                                   arg=word)
        finally:
            ctx.close()
    ctx = _context(browser, locale="de-CH")
    try:
        page = open_chat(ctx, live_server.url)
        page.wait_for_function("() => document.documentElement.lang === 'de'")
        page.locator("#language label", has_text="en").click()  # the switch
        page.wait_for_function("() => document.documentElement.lang === 'en'")
        page.wait_for_function("() => document.querySelector('#ask').innerText.trim() === 'Ask'")
        # nothing of Gradio's own furniture: no footer, no API or settings links
        assert page.locator("footer").count() == 0
        screenshot(page, tmp_path, "03-english")
    finally:
        ctx.close()


def test_on_a_phone(browser: Any, live_server: LiveServer, tmp_path: Path) -> None:  # noqa: F811
    ctx = _context(browser, viewport={"width": 390, "height": 844}, is_mobile=True,
                   has_touch=True)
    try:
        page = open_chat(ctx, live_server.url)
        page.click("#clear")
        bot = ask(page, DE_Q)
        screenshot(page, tmp_path, "04-phone-answer")
        bot.locator("button.cite").first.tap()
        shown(page, "#source-view mark#beleg-hit")
        page.wait_for_timeout(300)
        box = page.evaluate("() => { const r = document.querySelector('#beleg-hit')"
                            ".getBoundingClientRect(); return [r.top, r.bottom, innerHeight]; }")
        assert 0 <= box[0] < box[2], box  # the span is scrolled into the phone's view
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 400  # nothing wider than the phone
        page.screenshot(path=str(tmp_path / "05-phone-source.png"))
        REPORTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "05-phone-source.png", REPORTS / "05-phone-source.png")
    finally:
        ctx.close()


@pytest.fixture(scope="module")
def slow_server(seed_engine: Any, answering_selector: Any) -> Iterator[tuple[LiveServer, Any]]:
    """The chat over a model that writes until it is stopped."""
    from app.api import create_app
    from app.engine import AnswerEngine

    endless = EndlessLLM(limit_s=60.0)
    engine = AnswerEngine(seed_engine.retriever, answering_selector, llm=endless)
    with serve(create_app(engine)) as server:
        yield server, endless


def test_a_running_answer_shows_time_and_stops(browser_context: Any,
                                               slow_server: tuple[LiveServer, Any]) -> None:
    server, endless = slow_server
    page = open_chat(browser_context, server.url)
    try:
        page.click("#clear")
        page.fill("#question textarea", DE_Q)
        page.click("#ask")
        shown(page, "#chat .status .elapsed")
        assert endless.started.wait(60)
        page.wait_for_function("() => parseFloat(document.querySelector('#chat .elapsed')"
                               ".textContent) >= 0.5")  # the timer moves while it waits
        assert page.locator("#ask").is_disabled() and page.locator("#stop").is_enabled()
        page.fill("#question textarea", "Eine zweite Frage?")  # typed while it runs: kept
        page.click("#stop")
        page.wait_for_function("() => document.querySelector('#chat .msg.bot .kind')", timeout=15000)
        assert endless.stopped.wait(10)  # the model itself was told to stop
        assert page.locator("#ask").is_enabled() and page.locator("#stop").is_disabled()
        assert page.input_value("#question textarea") == "Eine zweite Frage?"
    finally:
        page.close()


@pytest.fixture(scope="module")
def writable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The chat over an empty store of its own (uploads change it)."""
    from app.api import create_app
    from app.settings import Settings
    from app.wiring import build_engine

    settings = Settings.load(env={}, data_dir=tmp_path_factory.mktemp("ui-docs"),
                             llm="extractive")
    with serve(create_app(build_engine(settings))) as server:
        yield server


def test_upload_list_and_remove_documents(browser_context: Any, writable: LiveServer,
                                          tmp_path: Path) -> None:
    handbook = tmp_path / "handbuch.md"
    handbook.write_text("# Personalhandbuch\n\nMitarbeitende haben Anspruch auf 28 Urlaubstage "
                        "pro Kalenderjahr.\n", encoding="utf-8")
    broken = tmp_path / "kaputt.pdf"
    broken.write_bytes(b"%PDF-1.4 not really")
    page = open_chat(browser_context, writable.url)
    try:
        page.locator("#side button[role='tab']", has_text="Dokumente").click()
        page.locator("#documents").wait_for()
        assert "Noch keine Dokumente" in page.locator("#documents").inner_text()
        page.set_input_files("#upload input[type='file']", [str(broken)])
        page.wait_for_function("() => document.querySelector('#doc-status').innerText"
                               ".includes('kaputt.pdf')")
        assert "Nichts gespeichert" in page.locator("#doc-status").inner_text()
        page.set_input_files("#upload input[type='file']", [str(handbook)])
        page.wait_for_function("() => document.querySelector('#documents').innerText"
                               ".includes('Personalhandbuch')")
        row = page.locator("#documents tbody tr").first.inner_text()
        assert "handbuch.md" in row and "md" in row
        screenshot(page, tmp_path, "06-documents")
        bot = ask(page, "Wie viele Urlaubstage gibt es pro Jahr?")
        assert "28 Urlaubstage" in bot.inner_text()
        page.locator("#side button[role='tab']", has_text="Dokumente").click()
        page.locator("#pick input").click()
        page.locator("[role='option']", has_text="handbuch.md").click()
        page.click("#remove")
        page.wait_for_function("() => document.querySelector('#documents').innerText"
                               ".includes('Noch keine Dokumente')")
    finally:
        page.close()


HOSTILE = ('<b>fett</b> <script>window.__beleg_xss = 1</script>'
           '<img src="x" onerror="window.__beleg_xss = 2"> Wie viele Soldaten?')


def test_markup_in_messages_does_not_execute(page: Any) -> None:
    """Content reaching the chat is never run: every text is escaped before it is shown."""
    ask(page, HOSTILE)
    page.wait_for_timeout(500)
    assert page.evaluate("window.__beleg_xss") is None
    assert page.locator("#chat script").count() == 0
    assert page.locator("#chat img").count() == 0


def test_markup_in_messages_is_shown_literally(page: Any) -> None:
    ask(page, HOSTILE)
    user = page.locator("#chat .msg.user").last
    assert page.locator("#chat .msg b").count() == 0
    assert "<b>fett</b>" in user.inner_text()


# ---- embedded in another origin's page, behind a proxy on a path prefix -------------------------

EXAMPLE_PAGE = Path(__file__).resolve().parents[1] / "docs" / "embed-example.html"


@pytest.fixture(scope="module")
def intranet(seed_engine: Any) -> Iterator[dict[str, str]]:
    """The shipped example page on a portal of its own origin, framing (a) beleg under /beleg
    behind a proxy, with the portal allowed, and (b) a beleg that allows no other origin."""
    import socket

    from servers import prefix_proxy, serve, static_site

    from app.api import create_app

    with socket.socket() as s:  # the portal's port, known before its pages are written
        s.bind(("127.0.0.1", 0))
        portal_port = s.getsockname()[1]
    portal_origin = f"http://127.0.0.1:{portal_port}"
    template = EXAMPLE_PAGE.read_text(encoding="utf-8")
    with serve(create_app(seed_engine, root_path="/beleg",
                          allowed_origins=(portal_origin,))) as backend, \
            serve(prefix_proxy(backend.url, "/beleg")) as proxy, \
            serve(create_app(seed_engine)) as closed:
        pages = {"/allowed.html": template.replace("BELEG_URL", proxy.url + "/beleg/"),
                 "/blocked.html": template.replace("BELEG_URL", closed.url + "/")}
        with serve(static_site(pages), port=portal_port) as portal:
            assert portal.url == portal_origin
            yield {"portal": portal.url, "beleg": proxy.url + "/beleg", "closed": closed.url}


def test_chat_in_an_allowed_page_behind_a_proxy(browser_context: Any, intranet: dict[str, str],
                                                tmp_path: Path) -> None:
    page = browser_context.new_page()
    try:
        page.goto(intranet["portal"] + "/allowed.html")
        frame = page.frame_locator("#beleg")
        frame.locator("#question textarea").fill(DE_Q)
        frame.locator("#ask").click()
        frame.locator("#chat [data-testid='bot']").last.wait_for()
        bot = frame.locator("#chat [data-testid='bot']").last
        bot.filter(has_text="15'000").wait_for()
        # the portal's scripts may call the API too (CORS for the allowed origin)
        status = page.evaluate("(u) => fetch(u + '/api/health').then(r => r.status)",
                               intranet["beleg"])
        assert status == 200
        screenshot(page, tmp_path, "05-embedded-in-intranet")
    finally:
        page.close()


def test_chat_refuses_a_page_not_allowed(browser_context: Any, intranet: dict[str, str]) -> None:
    page = browser_context.new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "frame-ancestors" in m.text else None)
    try:
        page.goto(intranet["portal"] + "/blocked.html")
        page.wait_for_timeout(3000)
        frame = next(f for f in page.frames if f != page.main_frame)
        assert frame.locator("#question").count() == 0  # the chat never rendered in the frame
        assert refused, "Chromium should report the frame-ancestors refusal"
        # nor may the portal's scripts read its API (no CORS for an origin not allowed)
        blocked = page.evaluate(
            "(u) => fetch(u + '/api/documents').then(() => 'read', () => 'blocked')",
            intranet["closed"])
        assert blocked == "blocked"
    finally:
        page.close()

"""The web chat in a real browser (Debian chromium via playwright) against a real uvicorn server.

Screenshots go to the test's tmp dir and to reports/screenshots/ for people to look at.
"""
from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import LiveServer, live_server  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
REPORTS = Path(__file__).resolve().parents[1] / "reports" / "screenshots"
DE_Q = "Wie viele nordkoreanische Soldaten kämpfen im Ukraine-Krieg?"
TIMEOUT_MS = 180_000

if not CHROMIUM.exists():
    pytest.skip("Debian chromium is not installed at /usr/bin/chromium", allow_module_level=True)


@pytest.fixture(scope="module")
def browser_context() -> Iterator[Any]:
    profile = tempfile.mkdtemp(prefix="beleg-chromium-")
    with sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1400, "height": 1000}, locale="de-CH")
        ctx.set_default_timeout(TIMEOUT_MS)
        try:
            yield ctx
        finally:
            ctx.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser_context: Any, live_server: LiveServer) -> Iterator[Any]:  # noqa: F811
    page = browser_context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(live_server.url + "/")
    page.wait_for_selector("#question textarea")
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


def ask(page: Any, question: str, expect: str) -> None:
    page.fill("#question textarea", question)
    page.click("#ask")
    page.wait_for_function(
        "([sel, text]) => { const el = document.querySelector(sel);"
        " return !!el && el.innerText.includes(text); }", arg=["#chat", expect])


def test_ask_and_view_the_cited_span(page: Any, tmp_path: Path, seed_text: str) -> None:
    ask(page, DE_Q, "15'000")
    # Tokens stream first; the final message adds the citation list.
    page.wait_for_function(
        "() => /\\[1\\] 000_218c33ea26fbfb53\\.txt \\(\\d+/.test("
        "document.querySelector('#chat').innerText)")
    bot = page.locator("#chat [data-testid='bot']").last
    answer = bot.inner_text()
    assert "15'000" in answer
    assert re.search(r"^\[1\] 000_218c33ea26fbfb53\.txt \(\d+–\d+\): ", answer, re.MULTILINE), answer
    # The final event fills the citation picker.
    option = page.locator("#citations label").first
    option.wait_for()
    label = option.inner_text().strip()
    assert label.startswith("[1] 000_218c33ea26fbfb53.txt (")
    start, end = (int(x) for x in label.split("(", 1)[1].split(")", 1)[0].split("–"))
    quote = seed_text[start:end]
    assert "15'000" in quote
    assert page.input_value("#question textarea") == ""
    screenshot(page, tmp_path, "01-answer")

    option.click()
    marked = page.locator("#source-view .token.highlighted")
    marked.first.wait_for()
    page.wait_for_function(
        "(q) => { const m = document.querySelector('#source-view .token.highlighted .text');"
        " return !!m && m.textContent === q; }", arg=quote)
    assert marked.count() == 1
    assert marked.locator(".text").text_content() == quote
    assert marked.locator(".label").text_content().strip() == "[1]"
    view = page.locator("#source-view").inner_text()
    assert "000_218c33ea26fbfb53.txt · characters" in view
    # Context around the span is shown unmarked.
    assert page.locator("#source-view .token:not(.highlighted)").count() >= 2
    screenshot(page, tmp_path, "02-source-view")
    assert page.errors == []  # type: ignore[attr-defined]


HOSTILE = ('<b>fett</b> <script>window.__beleg_xss = 1</script>'
           '<img src="x" onerror="window.__beleg_xss = 2"> Wie viele Soldaten?')


def test_markup_in_messages_does_not_execute(page: Any) -> None:
    """Content reaching the chat is never run (Gradio sanitises HTML even with markdown off)."""
    page.fill("#question textarea", HOSTILE)
    page.click("#ask")
    page.locator("#chat [data-testid='bot']").last.wait_for()
    page.wait_for_timeout(500)
    assert page.evaluate("window.__beleg_xss") is None
    assert page.locator("#chat script").count() == 0
    assert page.locator("#chat img[onerror]").count() == 0


def test_markup_in_messages_is_shown_literally(page: Any) -> None:
    page.fill("#question textarea", HOSTILE)
    page.click("#ask")
    user = page.locator("#chat [data-testid='user']").last
    user.wait_for()
    assert page.locator("#chat .message-content b").count() == 0
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

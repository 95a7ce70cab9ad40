"""HTML of the web chat: answers with citation chips, the source view, the document list, and
the conversation as Markdown. Pure functions of plain data; every text is escaped here."""
from __future__ import annotations

import re
from html import escape
from typing import Any

from app.ui_text import t

# Characters of the document shown around a cited span in the source view (the whole document
# up to twice this); a longer document is cut at paragraph ends around the span.
SOURCE_CONTEXT_CHARS = 4000
_MARKER = re.compile(r"\[(\d+)\]")


def turn_citations(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The spans a turn's chips open: its citations, then its short answer (if it has one)."""
    cites = [dict(c) for c in answer.get("citations") or []]
    short = answer.get("short_answer")
    if short and short.get("method") != "sentence" and answer.get("kind") == "answered":
        cites.append({"n": short["n"], "source": short["source"], "start": short["start"],
                      "end": short["end"], "quote": short["text"], "short": True})
    return cites


def _chip(turn: int, index: int, cite: dict[str, Any], titles: dict[str, str], lang: str) -> str:
    title = titles.get(cite["source"]) or cite["source"]
    quote = cite["quote"] if len(cite["quote"]) <= 240 else cite["quote"][:237] + "…"
    tip = f"{title}: «{quote}»"
    return (f'<button type="button" class="cite" data-turn="{turn}" data-cite="{index}" '
            f'title="{escape(tip)}" aria-label="{escape(t("source", lang))} {cite["n"]}: '
            f'{escape(title)}">{cite["n"]}</button>')


def _with_chips(text: str, turn: int, cites: list[dict[str, Any]], titles: dict[str, str],
                lang: str) -> str:
    """Escaped ``text`` whose [n] markers become chips. The k-th [n] opens the k-th citation
    numbered n (an answer may quote two sentences of one source)."""
    by_n: dict[int, list[int]] = {}
    for i, c in enumerate(cites):
        if not c.get("short"):
            by_n.setdefault(int(c["n"]), []).append(i)
    seen: dict[int, int] = {}
    out, pos = [], 0
    for m in _MARKER.finditer(text):
        n = int(m.group(1))
        if n not in by_n:
            continue
        k = seen.get(n, 0)
        seen[n] = k + 1
        index = by_n[n][min(k, len(by_n[n]) - 1)]
        out += [escape(text[pos:m.start()]), _chip(turn, index, cites[index], titles, lang)]
        pos = m.end()
    out.append(escape(text[pos:]))
    return "".join(out).replace("\n", "<br>")


def answer_html(turn: int, answer: dict[str, Any], titles: dict[str, str], lang: str) -> str:
    """One answer: its kind, the short answer, the text with chips, what was removed and why."""
    kind = answer.get("kind", "refused")
    cites = turn_citations(answer)
    parts = []
    label = t("conflict" if answer.get("conflict") else kind, lang)
    parts.append(f'<div class="kind kind-{escape(kind)}">{escape(label)}</div>')
    short = next((i for i, c in enumerate(cites) if c.get("short")), None)
    if short is not None:
        parts.append(f'<div class="short"><span class="short-label">{t("short_answer", lang)}'
                     f'</span> <strong>{escape(cites[short]["quote"])}</strong> '
                     f'{_chip(turn, short, cites[short], titles, lang)}</div>')
    parts.append(f'<div class="text">{_with_chips(answer.get("answer", ""), turn, cites, titles, lang)}'
                 f'</div>')
    removed = answer.get("unverified") or []
    if removed:
        items = "".join(f"<li>{escape(r)}</li>" for r in removed)
        parts.append(f'<details class="removed"><summary>'
                     f'{escape(t("removed", lang, n=len(removed)))}</summary><ul>{items}</ul>'
                     f'</details>')
    elif answer.get("notice"):
        parts.append(f'<div class="notice">{escape(answer["notice"])}</div>')
    used = sorted({c["source"] for c in cites})
    if used:
        names = " · ".join(escape(titles.get(s) or s) for s in used)
        parts.append(f'<div class="used">{t("sources", lang)}: {names}</div>')
    return "".join(parts)


def conversation_html(turns: list[dict[str, Any]], lang: str) -> str:
    """The whole conversation, oldest first. A running turn shows its status and a timer that
    the page itself counts (no server round trip)."""
    if not turns:
        return f'<div class="empty">{escape(t("placeholder", lang))}</div>'
    out = []
    for i, turn in enumerate(turns):
        out.append(f'<div class="msg user" data-testid="user"><span class="who">'
                   f'{t("you", lang)}</span>{escape(turn["q"])}</div>')
        answer = turn.get("answer")
        if answer is not None:
            body = answer_html(i, answer, turn.get("titles") or {}, lang)
        elif turn.get("error"):
            body = f'<div class="error">⚠ {escape(turn["error"])}</div>'
        else:
            status = t("writing" if turn.get("partial") else "searching", lang)
            body = (f'<div class="status" role="status">{escape(status)} '
                    f'<span class="elapsed" data-running="1">0.0 s</span></div>'
                    f'<div class="text">{escape(turn.get("partial", ""))}</div>')
        out.append(f'<div class="msg bot" data-testid="bot" aria-live="polite">{body}</div>')
    return "".join(out)


def source_html(doc: dict[str, Any] | None, cite: dict[str, Any] | None, lang: str) -> str:
    """A readable view of the cited document with the span marked (scrolled to by the page)."""
    if cite is None:
        return f'<div class="hint">{escape(t("source_hint", lang))}</div>'
    if doc is None:
        return f'<div class="hint">{escape(t("gone", lang))} ({escape(cite["source"])})</div>'
    text: str = doc["text"]
    start, end = int(cite["start"]), int(cite["end"])
    lo = max(0, start - SOURCE_CONTEXT_CHARS)
    hi = min(len(text), end + SOURCE_CONTEXT_CHARS)
    if lo > 0:
        lo = text.rfind("\n\n", 0, lo) + 1 if text.rfind("\n\n", 0, lo) >= 0 else lo
    if hi < len(text):
        nxt = text.find("\n\n", hi)
        hi = nxt if nxt >= 0 else len(text)
    meta = doc.get("metadata") or {}
    title = meta.get("title") or doc["source"]
    facts = [escape(str(meta["date"]))] if meta.get("date") else []
    facts += [escape(doc["source"]), escape(t("passage", lang, start=start, end=end))]
    body = (_paragraphs(text[lo:start]) + f'<mark id="beleg-hit" data-start="{start}" '
            f'data-end="{end}">{escape(text[start:end])}</mark>' + _paragraphs(text[end:hi]))
    return (f'<article class="doc" lang="{escape(str(meta.get("language", "")))}">'
            f'<h3>{escape(str(title))}</h3><div class="facts">{" · ".join(facts)}</div>'
            f'<div class="body">{"… " if lo > 0 else ""}{body}{" …" if hi < len(text) else ""}'
            f'</div></article>')


def _paragraphs(text: str) -> str:
    """Escaped text whose blank lines become paragraph breaks (the span may sit mid-paragraph,
    so breaks are marked in place rather than wrapping paragraphs in elements)."""
    return re.sub(r"\n[ \t]*\n\s*", '<span class="para"></span>', escape(text)).replace(
        "\n", "<br>")


def documents_html(rows: list[dict[str, Any]], lang: str) -> str:
    """The document list: title, date, type, size, chunks, and the file name as a detail."""
    if not rows:
        return f'<div class="hint">{escape(t("no_documents", lang))}</div>'
    head = "".join(f"<th scope='col'>{t(k, lang)}</th>" for k in
                   ("doc_title", "doc_date", "doc_type", "doc_size", "doc_chunks"))
    body = []
    for r in rows:
        meta = r.get("metadata") or {}
        size = meta.get("chars")
        body.append(
            f"<tr><td><span class='doc-title'>{escape(str(meta.get('title') or r['source']))}"
            f"</span><br><small>{escape(r['source'])}</small></td>"
            f"<td>{escape(str(meta.get('date', '')))}</td>"
            f"<td>{escape(str(meta.get('file_type', '')))}</td>"
            f"<td>{'' if size is None else t('chars', lang, n=f'{size:,}')}"
            f"</td><td>{r['chunks']}</td></tr>")
    return f"<table class='docs'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def conversation_markdown(turns: list[dict[str, Any]], lang: str) -> str:
    """The conversation with every citation's source, offsets and quote."""
    out = [f"# {t('title', lang)}", ""]
    for turn in turns:
        out += [f"**{t('question', lang)}:** {turn['q']}", ""]
        answer = turn.get("answer")
        if answer is None:
            out += [turn.get("error") or t("stopped", lang), ""]
            continue
        out += [f"_{t('conflict' if answer.get('conflict') else answer.get('kind', 'refused'), lang)}_",
                "", answer.get("answer", ""), ""]
        titles = turn.get("titles") or {}
        for c in answer.get("citations") or []:
            title = titles.get(c["source"]) or c["source"]
            out.append(f"- [{c['n']}] {title} ({c['source']}, {c['start']}–{c['end']}): "
                       f"«{c['quote']}»")
        out.append("")
    return "\n".join(out)

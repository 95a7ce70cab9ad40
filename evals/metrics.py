"""Per-question scoring of one answer against the contract, and aggregation over a run."""
from __future__ import annotations

import logging
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from evals import matcher

logger = logging.getLogger(__name__)

HIT_KS = (1, 3, 5)

# Boolean metrics where True is good; a row fails when any of them is False.
PASS_METRICS = (
    "answer_correct",
    "right_and_cited",
    "figure_correct",
    "citation_supported",
    "quote_valid",
    "refusal_correct",
    "figures_grounded",
    "no_forbidden_figures",
)
# Boolean metrics where True is bad.
FAIL_METRICS = ("false_refusal", "confidently_wrong")
RANK_METRICS = tuple(f"hit@{k}" for k in HIT_KS) + ("mrr",)
MEAN_METRICS = PASS_METRICS + FAIL_METRICS + RANK_METRICS + ("unverified_count",)

# --------------------------------------------------------------------------- figures
# Scored with evals.matcher, written for the eval suite alone: the answer layer's own figure
# parser (app.figures) filters what beleg says, so scoring with it would grade it by itself.

_MARKERS = re.compile(r"\s*\[\d+\]")


def figure_in(expected: str, text: str) -> bool:
    """True when ``text`` states the figure written in ``expected`` (value and unit)."""
    return matcher.expected_stated(expected, _MARKERS.sub("", text))


def ungrounded_figures(claim: str, spans: list[str]) -> list[str]:
    """Figures of the claim that no cited span states."""
    pool = matcher.parse_figures("\n".join(spans))
    return [f.text for f in matcher.parse_figures(_MARKERS.sub("", claim))
            if not any(_grounded_by(f, got) for got in pool)]


def _grounded_by(stated: matcher.Figure, source: matcher.Figure) -> bool:
    """The source gives the stated figure; a unit the source leaves open may be named."""
    if source.unit is None and not source.is_year:
        return matcher.figure_matches(source, stated)  # "Kim Jong Un (41)" grounds "41 years"
    return matcher.figure_matches(stated, source)


def _contains_any(options: list[str], text: str) -> bool:
    folded = " ".join(_MARKERS.sub("", text).casefold().split())
    return any(" ".join(o.casefold().split()) in folded for o in options if o.strip())


# --------------------------------------------------------------------------- spans


def span_text(document_texts: dict[str, str], citation: dict[str, Any]) -> str | None:
    """The document text a citation points at, or None when the span is out of range."""
    text = document_texts.get(str(citation.get("source")))
    start, end = citation.get("start"), citation.get("end")
    if text is None or not isinstance(start, int) or not isinstance(end, int):
        return None
    if not 0 <= start <= end <= len(text):
        return None
    return text[start:end]


def citation_valid(document_texts: dict[str, str], citation: dict[str, Any]) -> bool:
    """A citation's quote is exactly the text of its span."""
    span = span_text(document_texts, citation)
    return span is not None and span == citation.get("quote")


def reference_spans(quote: str, document_texts: dict[str, str]) -> list[tuple[str, int, int]]:
    """Every (source, start, end) where the reference quote occurs verbatim."""
    spans: list[tuple[str, int, int]] = []
    if not quote:
        return spans
    for source, text in document_texts.items():
        i = text.find(quote)
        while i != -1:
            spans.append((source, i, i + len(quote)))
            i = text.find(quote, i + 1)
    return spans


def _overlaps(citation: dict[str, Any], spans: Iterable[tuple[str, int, int]]) -> bool:
    start, end = citation.get("start"), citation.get("end")
    if not isinstance(start, int) or not isinstance(end, int):
        return False
    return any(citation.get("source") == s and start < e and b < end for s, b, e in spans)


# --------------------------------------------------------------------------- response


def contract_problem(response: Any) -> str | None:
    """Why a response breaks the answer contract, or None when it is usable."""
    if not isinstance(response, dict):
        return f"response is {type(response).__name__}, not an object"
    if not isinstance(response.get("answer"), str):
        return "response has no string 'answer'"
    if not isinstance(response.get("refused"), bool):
        return "response has no boolean 'refused'"
    citations = response.get("citations")
    if not isinstance(citations, list):
        return "response has no list 'citations'"
    for c in citations:
        if not isinstance(c, dict) or not {"source", "start", "end", "quote"} <= c.keys():
            return f"malformed citation: {c!r}"
    return None


def _base_row(row: dict[str, Any], latency_ms: float) -> dict[str, Any]:
    return {
        "id": row["id"],
        "set": row.get("set"),
        "user_input": row["user_input"],
        "reference": row.get("reference"),
        "question": row["user_input"],
        "language": row.get("language"),
        "tags": list(row.get("tags", [])),
        "answerable": bool(row.get("answerable", True)),
        "history_turns": len(row.get("history") or []),
        "expected_figures": list(row.get("expected_figures", [])),
        "latency_ms": float(latency_ms),
    }


def _error_scores(row: dict[str, Any]) -> dict[str, Any]:
    """Every metric that applies to the row, set to its failing value."""
    answerable = bool(row.get("answerable", True))
    checkable = answerable and bool(row.get("expected_figures") or row.get("answer_contains"))
    scores: dict[str, Any] = {
        "answer_correct": False if checkable else None,
        "right_and_cited": False if checkable else None,
        "confidently_wrong": None,
        "figure_correct": False if answerable and row.get("expected_figures") else None,
        "citation_supported": False if answerable else None,
        "quote_valid": False,
        "refusal_correct": None if answerable else False,
        "false_refusal": True if answerable else None,
        "figures_grounded": False,
        "no_forbidden_figures": False if row.get("forbidden_figures") else None,
        "rank": None,
        "mrr": 0.0 if answerable else None,
        "unverified_count": None,
    }
    for k in HIT_KS:
        scores[f"hit@{k}"] = False if answerable else None
    return scores


def _finish(out: dict[str, Any]) -> dict[str, Any]:
    failures = [m for m in PASS_METRICS if out.get(m) is False]
    failures += [m for m in FAIL_METRICS if out.get(m) is True]
    if out.get("error"):
        failures.insert(0, "error")
    out["failures"] = failures
    out["passed"] = not failures
    return out


def score_answer(
    row: dict[str, Any],
    response: dict[str, Any] | None,
    error: str | None,
    latency_ms: float,
    document_texts: dict[str, str],
) -> dict[str, Any]:
    """Score one response; metrics that do not apply to the row are None.

    An error (or a response that breaks the contract) fails every applicable metric.
    """
    out = _base_row(row, latency_ms)
    if error is None:
        error = "no response" if response is None else contract_problem(response)
    if error is not None:
        out.update(error=error, answer=None, refused=None, mode=None, citations=[])
        out.update(_error_scores(row))
        return _finish(out)

    assert response is not None
    answerable = out["answerable"]
    refused = bool(response["refused"])
    citations = list(response["citations"])
    claim = response["answer"]  # citation markers such as [1] are not figures
    valid = [c for c in citations if citation_valid(document_texts, c)]
    spans = [document_texts[str(c["source"])][c["start"]:c["end"]] for c in valid]

    out.update(
        error=None,
        answer=response["answer"],
        refused=refused,
        mode=response.get("mode"),
        citations=citations,
        unverified=list(response.get("unverified") or []),
        total_ms=response.get("total_ms"),
        first_token_ms=response.get("first_token_ms"),
        retrieval_ms=response.get("retrieval_ms"),
    )
    out["quote_valid"] = len(valid) == len(citations)
    out["invalid_citations"] = [c.get("n") for c in citations if c not in valid]
    out["refusal_correct"] = None if answerable else refused
    out["false_refusal"] = refused if answerable else None
    out["unverified_count"] = len(out["unverified"])
    out.update(_figure_scores(row, refused, claim, spans))
    out.update(_rank_scores(row, citations, document_texts))
    out.update(_answer_scores(row, response, refused, claim, out))
    return _finish(out)


def _answer_scores(row: dict[str, Any], response: dict[str, Any], refused: bool, claim: str,
                   scored: dict[str, Any]) -> dict[str, Any]:
    """answer_correct (figures and expected words), right_and_cited, confidently_wrong.

    An answer counts as stated with confidence when its kind is 'answered', or, for engines
    that give no kind, when it is not a refusal.
    """
    answerable = bool(row.get("answerable", True))
    options = list(row.get("answer_contains") or [])
    correct: bool | None = None
    if answerable and (row.get("expected_figures") or options):
        correct = not refused and scored.get("figure_correct") is not False \
            and (not options or _contains_any(options, claim))
    kind = response.get("kind")
    confident = kind == "answered" if isinstance(kind, str) else not refused
    wrong = (not answerable) or correct is False
    return {"answer_correct": correct,
            "right_and_cited": None if correct is None else bool(correct and scored["hit@5"]),
            "confidently_wrong": None if (answerable and correct is None)
            else bool(confident and wrong)}


def _figure_scores(
    row: dict[str, Any], refused: bool, claim: str, spans: list[str]
) -> dict[str, Any]:
    """figure_correct, citation_supported, figures_grounded and no_forbidden_figures."""
    answerable = bool(row.get("answerable", True))
    expected = list(row.get("expected_figures", []))
    unparsable = [t for t in expected if matcher.expected_figure(t) is None]
    if unparsable:
        logger.warning("%s: an expected figure holds no figure: %s", row["id"], unparsable)
    scores: dict[str, Any] = {"figure_correct": None, "citation_supported": None,
                              "figures_grounded": None, "no_forbidden_figures": None}
    if answerable and expected:
        missing = [t for t in expected if refused or not figure_in(t, claim)]
        scores.update(figure_correct=not missing, missing_figures=missing)
    if answerable:
        unsupported = [t for t in expected if not any(figure_in(t, span) for span in spans)]
        supported = bool(spans) and not unsupported and not refused
        scores.update(citation_supported=supported, unsupported_expected=unsupported)
    if not refused:
        loose = ungrounded_figures(claim, spans)
        scores.update(figures_grounded=not loose, ungrounded_figures=loose)
    forbidden = row.get("forbidden_figures") or []
    if forbidden:
        stated = [t for t in forbidden if not refused and figure_in(t, claim)]
        scores.update(no_forbidden_figures=not stated, forbidden_stated=stated)
    return scores


def _rank_scores(
    row: dict[str, Any], citations: list[dict[str, Any]], document_texts: dict[str, str]
) -> dict[str, Any]:
    if not row.get("answerable", True):
        scores: dict[str, Any] = {"rank": None, "mrr": None}
        scores.update({f"hit@{k}": None for k in HIT_KS})
        return scores
    spans = reference_spans(row.get("reference_quote", ""), document_texts)
    rank = next((i for i, c in enumerate(citations, 1) if _overlaps(c, spans)), None)
    scores = {"rank": rank, "mrr": 1.0 / rank if rank else 0.0}
    scores.update({f"hit@{k}": rank is not None and rank <= k for k in HIT_KS})
    return scores


# --------------------------------------------------------------------------- aggregate


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _means(rows: list[dict[str, Any]]) -> tuple[dict[str, float | None], dict[str, int]]:
    means: dict[str, float | None] = {}
    support: dict[str, int] = {}
    for name in MEAN_METRICS:
        values = [float(r[name]) for r in rows if r.get(name) is not None]
        support[name] = len(values)
        means[name] = sum(values) / len(values) if values else None
    return means, support


def aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means of every metric over all rows it applies to (errors included), counts, latency."""
    means, support = _means(rows)
    latencies = [float(r["latency_ms"]) for r in rows if r.get("latency_ms") is not None]
    errors = sum(1 for r in rows if r.get("error"))
    by_language: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_tag: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_set: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get("set"):
            by_set[str(r["set"])].append(r)
        by_language[str(r.get("language"))].append(r)
        for tag in r.get("tags", []):
            by_tag[tag].append(r)
    return {
        "n_questions": len(rows),
        "n_answerable": sum(1 for r in rows if r.get("answerable")),
        "n_unanswerable": sum(1 for r in rows if not r.get("answerable")),
        "n_errors": errors,
        "error_rate": errors / len(rows) if rows else None,
        "pass_rate": sum(1 for r in rows if r.get("passed")) / len(rows) if rows else None,
        "metrics": means,
        "support": support,
        "latency_ms": {
            "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95),
            "mean": sum(latencies) / len(latencies) if latencies else None,
            "max": max(latencies) if latencies else None,
        },
        "by_language": {k: _group(v) for k, v in sorted(by_language.items())},
        "by_tag": {k: _group(v) for k, v in sorted(by_tag.items())},
        "by_set": {k: _group(v) for k, v in sorted(by_set.items())},
    }


def _group(rows: list[dict[str, Any]]) -> dict[str, Any]:
    means, _ = _means(rows)
    return {
        "n": len(rows),
        "pass_rate": sum(1 for r in rows if r.get("passed")) / len(rows),
        "errors": sum(1 for r in rows if r.get("error")),
        **{k: means[k] for k in ("answer_correct", "right_and_cited", "figure_correct",
                                 "refusal_correct", "false_refusal", "confidently_wrong",
                                 "hit@5")},
    }

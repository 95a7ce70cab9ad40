"""XQuAD end to end: every question asked through the answer engine and scored SQuAD-style.

One store serves the whole run. With the unanswerable split, a seeded half of the articles is
ingested first: the questions of the other half must be refused (nothing in the store answers
them), and the ingested half's questions measure false refusals in the same run. Then the rest
is ingested and every sampled question is asked over all articles.
"""
from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.metrics import percentile
from evals.squad import best_of, strip_citation_markers
from evals.xquad import Question, load_squad, parallel_questions

logger = logging.getLogger(__name__)

GENERATED = "generated"
ANSWER_METRICS = ("em", "f1", "contains_gold", "cited", "hit@5", "refused", "errors")
LOWER_IS_BETTER = ("refused", "errors", "false_refusal", "latency_p50_ms", "latency_p95_ms",
                   "confidently_wrong")


@dataclass(frozen=True)
class Asked:
    """One question put to the engine in one mode, with what it must be scored against."""

    question: Question
    language: str
    mode: str
    split: str  # "all", "ingested" (answerable) or "held-out" (must be refused)


def sample(questions: list[Question], limit: int | None, seed: int) -> list[Question]:
    """A seeded sample of ``limit`` questions in file order (all of them without a limit)."""
    if not limit or limit >= len(questions):
        return list(questions)
    keep = set(random.Random(seed).sample(range(len(questions)), limit))
    return [q for i, q in enumerate(questions) if i in keep]


def split_articles(sources: list[str], seed: int) -> tuple[set[str], set[str]]:
    """A seeded half of the articles to ingest, and the other half to hold out."""
    order = sorted(sources)
    random.Random(seed).shuffle(order)
    half = len(order) // 2
    return set(order[:half]), set(order[half:])


def _short_text(response: dict[str, Any]) -> str:
    short = response.get("short_answer")
    if isinstance(short, dict):
        short = short.get("text")
    return short if isinstance(short, str) and short.strip() else response.get("answer", "")


def _covers(citation: dict[str, Any], q: Question) -> bool:
    return (citation.get("source") == q.source and isinstance(citation.get("start"), int)
            and isinstance(citation.get("end"), int)
            and citation["start"] <= q.start and q.end <= citation["end"])


def score(asked: Asked, response: dict[str, Any] | None, error: str | None,
          latency_ms: float, golds: list[str]) -> dict[str, Any]:
    """One scored row; held-out questions score only whether they were refused."""
    q = asked.question
    row: dict[str, Any] = {"id": f"{q.id}:{asked.language}:{asked.mode}:{asked.split}",
                           "qid": q.id, "language": asked.language, "mode": asked.mode,
                           "split": asked.split, "user_input": q.question, "reference": q.answer,
                           "gold_source": q.source, "gold_start": q.start, "gold_end": q.end,
                           "latency_ms": latency_ms, "error": error}
    if error is not None or response is None:
        row.update(answer=None, refused=None, citations=[], failures=["error"], passed=False)
        return row
    refused = bool(response.get("refused"))
    citations = list(response.get("citations") or [])
    row.update(answer=response.get("answer", ""), short_answer=response.get("short_answer"),
               kind=response.get("kind"), refused=refused, citations=citations,
               retrieved_contexts=[s.get("text", "") for s in response.get("sources") or []])
    if asked.split == "held-out":
        row["failures"] = [] if refused else ["answered a question the store cannot answer"]
        row["passed"] = refused
        return row
    text = "" if refused else strip_citation_markers(_short_text(response))
    scores = best_of(text, golds)
    sources = response.get("sources") or []
    rank = next((i for i, s in enumerate(sources, 1) if _covers(s, q)), None)
    row.update(scores, cited=not refused and any(_covers(c, q) for c in citations),
               rank=rank, **{"hit@5": rank is not None and rank <= 5})
    failures = [name for name in ("contains_gold", "cited") if not row[name]]
    if refused:
        failures.insert(0, "refused an answerable question")
    row["failures"], row["passed"] = failures, not failures
    return row


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means per (split, mode, language): EM, F1, contains, cited, refusals, latency."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["split"], r["mode"], r["language"])].append(r)
    out: dict[str, Any] = {}
    for (split, mode, lang), group in sorted(groups.items()):
        ok = [r for r in group if r.get("error") is None]
        lat = [r["latency_ms"] for r in group]
        block: dict[str, Any] = {"n": len(group), "errors": (len(group) - len(ok)) / len(group),
                                 "latency_p50_ms": percentile(lat, 50),
                                 "latency_p95_ms": percentile(lat, 95)}
        refusals = sum(1 for r in ok if r["refused"]) / len(group)
        answered = [r for r in ok if r.get("kind") == "answered"]
        block["answered"] = len(answered) / len(group)
        block["candidates"] = sum(1 for r in ok if r.get("kind") == "candidates") / len(group)
        # Stated as the answer but wrong: the short answer lacks the gold answer, or the store
        # could not answer at all (held-out).
        block["confidently_wrong"] = sum(
            1 for r in answered if split == "held-out" or not r.get("contains_gold")) / len(group)
        if split == "held-out":
            block["refused"] = refusals
        else:
            block["false_refusal" if split == "ingested" else "refused"] = refusals
            for name in ("em", "f1", "contains_gold", "cited", "hit@5"):
                block[name] = sum(float(r.get(name) or 0.0) for r in group) / len(group)
        out[f"{split}/{mode}/{lang}"] = block
    return out


def run(de_file: Path, translated: Path | None, stack_factory: Callable[..., Any], *,
        modes: tuple[str, ...], limit: int | None, seed: int, unanswerable_split: bool,
        progress: bool = True) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Ask the sampled questions in every mode; returns (summary, rows)."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    docs, questions = load_squad(de_file)
    golds = _gold_answers(de_file)
    sets = {"de": sample(questions, limit, seed)}
    if translated is not None:
        keep = {q.id for q in sets["de"]}
        sets["en"] = [q for q in parallel_questions(questions, load_squad(translated)[1])
                      if q.id in keep]
    phases: list[tuple[list[Any], list[Asked]]] = []
    if unanswerable_split:
        ingested, held = split_articles([d.source for d in docs], seed)
        first = [d for d in docs if d.source in ingested]
        rest = [d for d in docs if d.source not in ingested]
        asked = [Asked(q, lang, m, "ingested" if q.source in ingested else "held-out")
                 for m in modes for lang, qs in sets.items() for q in qs]
        phases += [(first, asked), (rest, [])]
    else:
        phases.append((docs, []))
    phases.append(([], [Asked(q, lang, m, "all") for m in modes
                        for lang, qs in sets.items() for q in qs]))
    stack = None
    rows: list[dict[str, Any]] = []
    total = sum(len(a) for _, a in phases)
    with logging_redirect_tqdm(), tqdm(total=total, desc="xquad answers", unit="q",
                                       disable=not progress) as bar:
        for new_docs, asked in phases:
            if stack is None:
                stack = stack_factory(new_docs)
            elif new_docs:
                stack.add(new_docs)
            for a in asked:
                rows.append(_ask(stack.engine, a, golds.get(a.question.id, [a.question.answer])))
                bar.update()
    summary = summarise(rows)
    summary["corpus"] = {"documents": len(docs), "ingest_seconds": round(stack.ingest_seconds, 1),
                         "questions_per_language": len(sets["de"]), "seed": seed,
                         "limit": limit, "modes": list(modes)}
    return summary, rows


def _ask(engine: Any, a: Asked, golds: list[str]) -> dict[str, Any]:
    mode = None if a.mode == GENERATED else a.mode
    t0 = time.perf_counter()
    try:
        response, error = engine.ask(a.question.question, mode=mode).to_dict(), None
    except Exception as exc:  # noqa: BLE001 - one question never ends the run
        response, error = None, f"{type(exc).__name__}: {exc}"
        logger.warning("%s failed: %s", a.question.id, error)
    return score(a, response, error, (time.perf_counter() - t0) * 1000, golds)


def _gold_answers(path: Path) -> dict[str, list[str]]:
    """Every gold answer text of each question (SQuAD scores against the best one)."""
    import json

    data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    return {str(qa["id"]): [a["text"] for a in qa["answers"]]
            for art in data for p in art["paragraphs"] for qa in p["qas"]}


def chart_metrics(summary: dict[str, Any]) -> dict[str, float | None]:
    """The figures worth a bar: answer quality on all articles, refusals on the split."""
    chart: dict[str, float | None] = {}
    for key, block in summary.items():
        if not isinstance(block, dict) or "n" not in block:
            continue
        split, mode, lang = key.split("/")
        tag = f"{lang} {mode}"
        if split == "all":
            for name in ("em", "f1", "contains_gold", "cited"):
                chart[f"{tag} {name}"] = block.get(name)
        elif split == "held-out":
            chart[f"{tag} held-out refused"] = block.get("refused")
        else:
            chart[f"{tag} false_refusal"] = block.get("false_refusal")
    return chart


def markdown(summary: dict[str, Any]) -> str:
    """The end-to-end table printed at the end of a run."""
    lines = ["| split | mode | lang | n | EM | F1 | contains | cited | refused | p50 ms | p95 ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]

    def f(v: Any) -> str:
        return "–" if v is None else f"{v:.3f}" if isinstance(v, float) and v <= 1 else f"{v:.0f}"
    for key, b in summary.items():
        if not isinstance(b, dict) or "n" not in b:
            continue
        split, mode, lang = key.split("/")
        refused = b.get("refused", b.get("false_refusal"))
        lines.append(f"| {split} | {mode} | {lang} | {b['n']} | {f(b.get('em'))} | "
                     f"{f(b.get('f1'))} | {f(b.get('contains_gold'))} | {f(b.get('cited'))} | "
                     f"{f(refused)} | {f(b['latency_p50_ms'])} | {f(b['latency_p95_ms'])} |")
    return "\n".join(lines)

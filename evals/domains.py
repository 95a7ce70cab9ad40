"""Domain sets: several kinds of documents ingested together with the seed article, asked at once."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from evals.runners import DEFAULT_CORPUS, load_questions

logger = logging.getLogger(__name__)

DEFAULT_DOMAINS = Path(__file__).resolve().parent / "data" / "domains"


def domain_sets(root: Path = DEFAULT_DOMAINS) -> dict[str, Path]:
    """Set name -> its folder, for every folder that holds a questions.jsonl."""
    return {p.parent.name: p.parent for p in sorted(Path(root).glob("*/questions.jsonl"))}


def load_domain_questions(root: Path = DEFAULT_DOMAINS,
                          names: list[str] | None = None) -> list[dict[str, Any]]:
    """Every set's questions, each tagged with its set name in 'set'."""
    rows: list[dict[str, Any]] = []
    for name, folder in domain_sets(root).items():
        if names and name not in names:
            continue
        for row in load_questions(folder / "questions.jsonl"):
            rows.append({**row, "set": name})
    return rows


def corpus_documents(root: Path = DEFAULT_DOMAINS, corpus: Path = DEFAULT_CORPUS) -> list[Any]:
    """The seed corpus and every domain document: all of them are ingested together."""
    from evals.fresh import load_folder

    docs = load_folder(corpus) + load_folder(root)
    names = [d.source for d in docs]
    if len(set(names)) != len(names):
        raise ValueError(f"two documents share a file name: {sorted(names)}")
    return docs

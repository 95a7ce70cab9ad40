"""A fresh, private store for one evaluation run: never the user's live store."""
from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ingest.documents import Document

logger = logging.getLogger(__name__)

EVAL_COLLECTION = "beleg-eval"


@dataclass
class EvalStack:
    """What one run asks through: the engine, the documents' texts, and how long ingest took."""

    engine: Any
    library: Any
    texts: dict[str, str]
    ingest_seconds: float = 0.0

    def add(self, documents: list[Document]) -> float:
        """Ingest more documents into the run's store; returns the seconds it took."""
        t0 = time.perf_counter()
        for doc in documents:
            self.library.add_document(doc)
            self.texts[doc.source] = doc.text
        spent = time.perf_counter() - t0
        self.ingest_seconds += spent
        return spent


def build_stack(store_dir: Path, documents: list[Document], *, with_llm: bool = True,
                settings: Any | None = None) -> EvalStack:
    """An engine over a new embedded store in ``store_dir`` holding exactly ``documents``.

    The user's settings choose the embedding model and the LLM backend; the data folder, the
    Chroma server URL and the collection are replaced, so the user's documents never enter a
    score. Models are loaded from the user's model folder (the local GGUF is not copied).
    """
    from app.engine import build_answer_engine
    from app.library import Library
    from app.settings import Settings
    from app.wiring import build_embedder, build_llm_from_settings, build_store, pin_threads

    base = settings or Settings.load()
    pin_threads(base.threads)
    embedder = build_embedder(base)  # cached per process; converted models stay in place
    llm = None
    if with_llm and base.llm != "extractive":
        llm = build_llm_from_settings(base)
    store_dir = Path(store_dir)
    if store_dir.exists():
        shutil.rmtree(store_dir)
    fresh = replace(base, data_dir=store_dir, chroma_url="", collection=EVAL_COLLECTION,
                    llm=base.llm if llm is not None else "extractive")
    library = Library(build_store(fresh, embedder), embedder)
    stack = EvalStack(build_answer_engine(fresh, llm=llm, embedder=embedder), library, {})
    stack.add(documents)
    logger.info("eval store %s: %d documents in %.1f s", store_dir, len(documents),
                stack.ingest_seconds)
    return stack


def load_folder(folder: Path) -> list[Document]:
    """Every supported file under ``folder`` as a Document named by its file name."""
    from ingest.loaders import load_document, supported_suffixes

    docs = []
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and path.suffix.lower() in supported_suffixes() \
                and not path.name.startswith(".") and path.name.lower() != "readme.md":
            docs.append(load_document(path))
    return docs

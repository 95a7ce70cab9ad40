"""The answer engine: question + history -> sources first, then a checked answer with citations."""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app import messages
from app.answer.analysis import analyse, condense
from app.answer.statement import SentenceStream, build_messages, is_not_found, prompt_passages
from app.answer.verification import Verifier
from app.citations import Citation, Source, strip_markers
from app.extractive import ExtractiveAnswerer
from store.retrieval import HybridRetriever

logger = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000
PROMPT_SENTENCES = 6
# Weight of the previous question in a follow-up's dense query (the new question weighs 1).
FOLLOW_UP_WEIGHT = 0.4


class QuestionError(ValueError):
    """The question cannot be asked as it is (empty, too long, malformed history)."""


@dataclass
class Answer:
    """The contract object of /api/ask and `beleg ask --json`."""

    answer: str
    refused: bool
    mode: str
    citations: list[Citation]
    language: str
    unverified: list[str] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    notice: str = ""
    retrieval_ms: float = 0.0
    first_token_ms: float | None = None
    total_ms: float = 0.0

    def to_dict(self, with_sources: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "answer": self.answer, "refused": self.refused, "mode": self.mode,
            "citations": [c.to_dict() for c in self.citations], "language": self.language,
            "unverified": self.unverified, "notice": self.notice,
            "retrieval_ms": round(self.retrieval_ms, 1),
            "first_token_ms": None if self.first_token_ms is None else round(self.first_token_ms, 1),
            "total_ms": round(self.total_ms, 1)}
        if with_sources:
            d["sources"] = [s.to_dict() for s in self.sources]
        return d


@dataclass(frozen=True)
class Event:
    """A streamed step: 'sources' (list[Source]), 'token' (str), then 'final' (Answer)."""

    kind: str
    data: Any


def validate_question(question: Any, history: Any, limit: int = MAX_QUESTION_CHARS) -> None:
    if not isinstance(question, str) or not question.strip():
        raise QuestionError("the question is empty; type a question about your documents")
    if len(question) > limit:
        raise QuestionError(f"the question has {len(question)} characters; the limit is {limit}. "
                            "Shorten it to the point you want answered")
    if history is not None:
        if not isinstance(history, list) or any(
                not isinstance(t, dict) or t.get("role") not in ("user", "assistant")
                or not isinstance(t.get("content"), str) for t in history):
            raise QuestionError("history must be a list of {role: user|assistant, content: str}")


class AnswerEngine:
    """Retrieve, gate, answer (extractive or generated), verify. Thread-safe for concurrent asks."""

    def __init__(self, retriever: HybridRetriever, extractive: ExtractiveAnswerer,
                 llm: Any | None = None, top_k: int = 5,
                 max_question_chars: int = MAX_QUESTION_CHARS, max_tokens: int = 200) -> None:
        self.retriever = retriever
        self.extractive = extractive
        self.llm = llm
        self.top_k = top_k
        self.max_question_chars = max_question_chars
        self.max_tokens = max_tokens

    @property
    def default_mode(self) -> str:
        return self.llm.name if self.llm is not None else "extractive"

    def document_texts(self) -> dict[str, str]:
        store = self.retriever.store
        texts = {}
        for d in store.documents():
            doc = store.document(d.source)
            if doc is not None:
                texts[d.source] = doc.text
        return texts

    def ask(self, question: str, history: list[dict[str, str]] | None = None,
            mode: str | None = None) -> Answer:
        final = None
        for event in self.stream(question, history, mode):
            if event.kind == "final":
                final = event.data
        assert final is not None
        return final

    def stream(self, question: str, history: list[dict[str, str]] | None = None,
               mode: str | None = None) -> Iterator[Event]:
        validate_question(question, history, self.max_question_chars)
        mode = mode or self.default_mode
        if mode not in ("extractive", self.default_mode):
            raise QuestionError(f"Unknown mode '{mode}'. Supported modes are: "
                                f"{sorted({'extractive', self.default_mode})}")
        t0 = time.perf_counter()
        q = analyse(question)
        query = condense(question, history)
        if query.previous is None:
            query_vec = rank_vec = self.retriever.embedder.embed_queries([query.own])[0]
        else:
            own, prev = self.retriever.embedder.embed_queries([query.own, query.previous])
            query_vec = own + FOLLOW_UP_WEIGHT * prev
            query_vec = query_vec / np.linalg.norm(query_vec)
            # Sentences are ranked by the new question itself unless it is too short to stand.
            rank_vec = own if query.text == query.own else query_vec
        hits = self.retriever.search(query.text, self.top_k, query_vector=query_vec)
        sources = [Source(i + 1, h.chunk, h.score) for i, h in enumerate(hits)]
        retrieval_ms = (time.perf_counter() - t0) * 1000
        yield Event("sources", sources)
        answer = Answer("", True, mode, [], q.language, sources=sources, retrieval_ms=retrieval_ms)
        if not hits:
            answer.answer = messages.text("empty_store" if not self.retriever.store.count()
                                          else "refusal", q.language)
        else:
            top_dense = max(h.dense for h in hits)
            judgement = self.extractive.judge(q, sources, rank_vec, top_dense)
            logger.info("gate: %s (%s)", judgement.answerable, judgement.reason)
            if judgement.answerable:
                if mode == "extractive":
                    self._quote_sources(answer, judgement, q.language)
                else:
                    yield from self._generate(question, history, q.language, sources,
                                              judgement, answer, t0)
            else:
                answer.answer = messages.text("refusal", q.language)
        if answer.first_token_ms is None and answer.answer:
            answer.first_token_ms = (time.perf_counter() - t0) * 1000
            yield Event("token", answer.answer)
        answer.total_ms = (time.perf_counter() - t0) * 1000
        yield Event("final", answer)

    def _quote_sources(self, answer: Answer, judgement: Any, language: str) -> None:
        """The extractive answer: the best-supported sentences, quoted and cited."""
        text, citations = self.extractive.render(self.extractive.select(judgement), language)
        answer.answer, answer.citations, answer.refused = text, citations, False
        answer.mode = "extractive"

    def _generate(self, question: str, history: list[dict[str, str]] | None, language: str,
                  sources: list[Source], judgement: Any, answer: Answer,
                  t0: float) -> Iterator[Event]:
        """LLM answer streamed sentence by sentence; only verified sentences reach the user.

        The model runs in a worker thread; each sentence is checked as soon as it is complete,
        so the first verified sentence is shown while the model is still writing the next.
        """
        from app.llm import BackendUnavailable

        verifier = Verifier(self.retriever.embedder, sources,
                            passage_vectors=self.extractive.sentence_vectors,
                            support=self.extractive.support,
                            answer_sentences=[s for s, _ in judgement.ranked[:1]])
        passages = prompt_passages([s for s, _ in judgement.ranked], PROMPT_SENTENCES)
        messages_ = build_messages(question, passages, language, history)
        deltas: queue.Queue[tuple[str, Any]] = queue.Queue()
        stop = threading.Event()

        def on_token(delta: str) -> bool:
            deltas.put(("delta", delta))
            return stop.is_set()

        def work() -> None:
            try:
                self.llm.chat(messages_, max_tokens=self.max_tokens, temperature=0.0,
                              on_token=on_token)
                deltas.put(("done", None))
            except BackendUnavailable as exc:
                deltas.put(("down", exc))
            except Exception as exc:  # an unexpected backend failure must not kill the answer
                logger.exception("LLM backend failed")
                deltas.put(("down", BackendUnavailable(f"{type(exc).__name__}: {exc}")))

        worker = threading.Thread(target=work, name="beleg-llm", daemon=True)
        worker.start()
        splitter = SentenceStream()
        shown: list[str] = []
        try:
            while True:
                kind, value = deltas.get()
                if kind == "down":
                    logger.warning("backend down, answering extractively: %s", value)
                    verified, verified_cites = list(shown), list(answer.citations)
                    self._quote_sources(answer, judgement, language)
                    if verified:  # keep what was verified, add the quotes after it
                        answer.answer = " ".join(verified) + " " + answer.answer
                        answer.citations = verified_cites + answer.citations
                    answer.notice = messages.text("fallback", language, detail=str(value)[:160])
                    return
                sentences = splitter.feed(value) if kind == "delta" else splitter.flush()
                for sentence in sentences:
                    if not strip_markers(sentence).strip(" .,;:!?"):
                        continue  # a marker that arrived after its sentence
                    if is_not_found(sentence):
                        stop.set()
                        if not shown:
                            answer.answer = messages.text("refusal", language)
                            return
                        continue
                    verdict = verifier.check(sentence)
                    if verdict.shown and verdict.citation is not None:
                        if answer.first_token_ms is None:
                            answer.first_token_ms = (time.perf_counter() - t0) * 1000
                        yield Event("token", verdict.text if not shown else " " + verdict.text)
                        shown.append(verdict.text)
                        if all(c.to_dict() != verdict.citation.to_dict()
                               for c in answer.citations):
                            answer.citations.append(verdict.citation)
                    else:
                        answer.unverified.append(f"{sentence.strip()} ({verdict.problem})")
                if kind == "done" or stop.is_set():
                    break
        finally:
            stop.set()
        if shown:
            answer.answer, answer.refused = " ".join(shown), False
        else:
            # Nothing the model wrote could be checked: quote the sources instead.
            self._quote_sources(answer, judgement, language)
        if answer.unverified:
            answer.notice = messages.text("removed", language, count=len(answer.unverified))


def build_answer_engine(settings: Any, llm: Any | None = None, embedder: Any | None = None) -> \
        AnswerEngine:
    """Wire an engine from Settings. ``llm``/``embedder`` may be passed in (tests, benchmarks)."""
    from app.wiring import build_embedder, build_llm_from_settings, build_store, pin_threads

    pin_threads(settings.threads)
    embedder = embedder or build_embedder(settings)
    store = build_store(settings, embedder)
    retriever = HybridRetriever(store, embedder, index_dir=settings.lexical_dir)
    if llm is None and settings.llm != "extractive":
        llm = build_llm_from_settings(settings)
    return AnswerEngine(retriever, ExtractiveAnswerer(embedder), llm=llm, top_k=settings.top_k,
                        max_question_chars=settings.max_question_chars)

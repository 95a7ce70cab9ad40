"""The answer engine: question + history -> sources first, then a checked answer with citations."""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app import messages
from app.answer.analysis import analyse, condense, content_terms
from app.answer.conflicts import find_conflict
from app.answer.defang import defang
from app.answer.evidence import Evidence, SentenceVectors, build_evidence
from app.answer.rendering import render_answered, render_candidates, render_conflict
from app.answer.selection import ANSWERED, CANDIDATES, MAX_CANDIDATES, REFUSED, Selection, Selector
from app.answer.short_answer import ShortAnswer, short_answer, span_answer
from app.answer.span_copy import copy_span
from app.answer.statement import SentenceStream, build_messages, is_not_found, prompt_passages
from app.answer.term_support import TermSupport
from app.answer.verification import Verifier
from app.citations import Citation, Source, citation_for, strip_markers
from app.collection_set import Collections
from app.llm_base import BackendUnavailable
from app.settings import DEFAULT_TOP_K
from ingest.sentences import sentence_spans
from store.naming import DEFAULT_COLLECTION, checked_collection
from store.retrieval import HybridRetriever

logger = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000
# History bounds. The answer reads only the last user turn (follow-ups) and the last 4 turns
# (the model's prompt), so these only keep a request from carrying megabytes: a 10 MB entry
# took 23 s of CPU before they existed. A turn may hold a long answer with its quotes (three
# quoted sentences and a statement are a few thousand characters).
MAX_HISTORY_TURNS = 100
MAX_TURN_CHARS = 20_000
MAX_HISTORY_CHARS = 200_000
PROMPT_SENTENCES = 6
# Weight of the previous question in a follow-up's dense query (the new question weighs 1).
FOLLOW_UP_WEIGHT = 0.4


class QuestionError(ValueError):
    """The question cannot be asked as it is (empty, too long, malformed history)."""


class LimitError(QuestionError):
    """The question or its history is larger than the server accepts."""


class BusyError(RuntimeError):
    """Every answer slot stayed taken for longer than the server lets a question wait."""


# Questions answered at once; the others wait in line (first come, first served). With more
# at once than cores, threads share the GIL and two cores, and the slowest requests starve.
# 20 clients for 120 s, side by side in one run (`make reliability`, load stage,
# docs/reliability.md): 20 slots answered 119 questions, p50 13.3 s, p95 51.6 s; 2 slots
# answered 358, p50 5.0 s, p95 25.2 s.
ANSWER_SLOTS = 2
# How often a generation checks whether its client is still there (seconds).
CANCEL_POLL_S = 0.1
# How long a question may wait for a slot before it is turned away with "busy, retry".
QUEUE_TIMEOUT_S = 60.0


@dataclass
class Answer:
    """The contract object of /api/ask and `beleg ask --json`.

    ``kind`` is 'answered' (a short answer, stated and cited), 'candidates' (the closest
    passages quoted, saying there is no one clear answer) or 'refused'. ``refused`` is kept
    as ``kind == 'refused'`` for older clients.
    """

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
    kind: str = REFUSED
    short_answer: ShortAnswer | None = None
    confidence: float | None = None
    conflict: bool = False  # sources disagree: their passages are shown side by side
    backend_error: bool = False  # the LLM failed; the answer fell back to quotes (metrics)
    collection: str = DEFAULT_COLLECTION  # the one whose documents were searched

    def to_dict(self, with_sources: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "answer": self.answer, "kind": self.kind, "refused": self.refused,
            "short_answer": None if self.short_answer is None else self.short_answer.to_dict(),
            "confidence": None if self.confidence is None or self.confidence != self.confidence
            else round(self.confidence, 4),
            "conflict": self.conflict, "mode": self.mode, "collection": self.collection,
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
        if len(history) > MAX_HISTORY_TURNS:
            raise LimitError(f"the history has {len(history)} turns; the limit is "
                             f"{MAX_HISTORY_TURNS}. Send only the recent turns")
        longest = max((len(t["content"]) for t in history), default=0)
        if longest > MAX_TURN_CHARS:
            raise LimitError(f"a history turn has {longest} characters; the limit is "
                             f"{MAX_TURN_CHARS} per turn")
        total = sum(len(t["content"]) for t in history)
        if total > MAX_HISTORY_CHARS:
            raise LimitError(f"the history has {total} characters; the limit is "
                             f"{MAX_HISTORY_CHARS}. Send only the recent turns")


class AnswerEngine:
    """Sequences the answer steps; owns the one thread bridge to the LLM. Thread-safe."""

    def __init__(self, retriever: HybridRetriever, selector: Selector,
                 llm: Any | None = None, top_k: int = DEFAULT_TOP_K,
                 max_question_chars: int = MAX_QUESTION_CHARS, max_tokens: int = 200,
                 answer_slots: int = ANSWER_SLOTS,
                 queue_timeout_s: float = QUEUE_TIMEOUT_S,
                 collections: Collections | None = None) -> None:
        self.retriever = retriever  # the default collection's
        # Named collections share the embedder, the selector, the model and the answer slots.
        self.collections = collections or Collections.single(retriever)
        self.selector = selector
        self.llm = llm
        self.top_k = top_k
        self.max_question_chars = max_question_chars
        self.max_tokens = max_tokens
        self.vectors = SentenceVectors(retriever.embedder)
        self.support = TermSupport(retriever.embedder)
        self.slots = threading.BoundedSemaphore(answer_slots)
        self.queue_timeout_s = queue_timeout_s
        # Called with every final answer (metrics); an observer that fails is logged, never
        # the answer's problem.
        self.observers: list[Callable[[Answer], None]] = []

    @property
    def default_mode(self) -> str:
        return self.llm.name if self.llm is not None else "extractive"

    def document_texts(self, collection: str | None = None) -> dict[str, str]:
        store = self.collections.store(collection)
        texts = {}
        for d in store.documents():
            doc = store.document(d.source)
            if doc is not None:
                texts[d.source] = doc.text
        return texts

    def ask(self, question: str, history: list[dict[str, str]] | None = None,
            mode: str | None = None, collection: str | None = None) -> Answer:
        final = None
        for event in self.stream(question, history, mode, collection=collection):
            if event.kind == "final":
                final = event.data
        assert final is not None
        return final

    def evidence(self, question: str, history: list[dict[str, str]] | None = None,
                 collection: str | None = None) -> tuple[list[Source], Evidence]:
        """Retrieval and evidence for a question: what selection sees (calibration reads this).
        Only the named collection is searched (UnknownCollection when it does not exist)."""
        retriever = self.collections.retriever(collection)
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
        seen: dict[tuple[str, int], np.ndarray] = {}
        hits = retriever.search(query.text, self.top_k, query_vector=query_vec, seen=seen)
        self._read_stored_vectors(retriever, [h.chunk for h in hits], seen)
        sources = [Source(i + 1, h.chunk, h.score) for i, h in enumerate(hits)]
        top_dense = max((h.dense for h in hits if h.dense == h.dense), default=0.0)
        return sources, build_evidence(q, sources, rank_vec, self.vectors, top_dense, self.support)

    def _read_stored_vectors(self, retriever: HybridRetriever, chunks: list[Any],
                             seen: dict[tuple[str, int], np.ndarray]) -> None:
        """The sentence vectors of these chunks that ingest stored: those the retrieval's
        sentence query returned (``seen``), and one more store trip only for sentences neither
        that query nor an earlier question brought. A question embeds only itself."""
        spans = [(c, c.start + s, c.text[s:e]) for c in chunks for s, e in sentence_spans(c.text)]
        unseen = set(self.vectors.missing([text for _, _, text in spans]))
        if not unseen:
            return
        dim = retriever.embedder.dim
        self.vectors.add({text: seen[(c.id, start)] for c, start, text in spans
                          if text in unseen and (c.id, start) in seen
                          and len(seen[(c.id, start)]) == dim})
        unseen = set(self.vectors.missing(list(unseen)))
        if not unseen:
            return
        stored = retriever.store.sentence_vectors([c.id for c, _, text in spans if text in unseen])
        self.vectors.add({text: stored[(c.id, start)] for c, start, text in spans
                          if text in unseen and (c.id, start) in stored
                          and len(stored[(c.id, start)]) == retriever.embedder.dim})

    def stream(self, question: str, history: list[dict[str, str]] | None = None,
               mode: str | None = None, cancel: threading.Event | None = None,
               collection: str | None = None) -> Iterator[Event]:
        """The answer as events (sources, tokens, final), once an answer slot is free, from
        the documents of one collection (the default one when None).
        Setting ``cancel`` (the client went away) stops a running generation within
        CANCEL_POLL_S and ends the answer with what was verified so far."""
        validate_question(question, history, self.max_question_chars)
        self.collections.retriever(collection)  # an unknown collection fails before the queue
        if not self.slots.acquire(timeout=self.queue_timeout_s):
            raise BusyError(f"the server is busy: no answer slot came free within "
                            f"{self.queue_timeout_s:.0f} s; try again shortly")
        try:
            yield from self._stream(question, history, mode, cancel, collection)
        finally:
            self.slots.release()

    def _stream(self, question: str, history: list[dict[str, str]] | None,
                mode: str | None, cancel: threading.Event | None,
                collection: str | None) -> Iterator[Event]:
        mode = mode or self.default_mode
        if mode not in ("extractive", self.default_mode):
            raise QuestionError(f"Unknown mode '{mode}'. Supported modes are: "
                                f"{sorted({'extractive', self.default_mode})}")
        t0 = time.perf_counter()
        if not _has_content(question, history):
            language = analyse(question).language
            yield Event("sources", [])
            answer = Answer(messages.text("no_content", language), True, mode, [], language,
                            collection=checked_collection(collection))
            answer.first_token_ms = answer.total_ms = (time.perf_counter() - t0) * 1000
            yield Event("token", answer.answer)
            self._observe(answer)
            yield Event("final", answer)
            return
        sources, ev = self.evidence(question, history, collection)
        language = ev.question.language
        retrieval_ms = (time.perf_counter() - t0) * 1000
        yield Event("sources", sources)
        answer = Answer("", True, mode, [], language, sources=sources, retrieval_ms=retrieval_ms,
                        collection=checked_collection(collection))
        if not sources:
            empty = not self.collections.store(collection).count()
            answer.answer = messages.text("empty_store" if empty
                                          else "refusal", language)
        else:
            selection = self.selector.select(ev)
            logger.info("selection: %s (%s)", selection.kind, selection.reason)
            answer.confidence = selection.confidence
            self._decide(answer, ev, selection)
            if answer.kind == ANSWERED and mode != "extractive":
                yield from self._generate(question, history, language, sources, selection,
                                          answer, t0, cancel)
        answer.answer = defang(answer.answer)
        if answer.first_token_ms is None and answer.answer:
            answer.first_token_ms = (time.perf_counter() - t0) * 1000
            yield Event("token", answer.answer)
        answer.total_ms = (time.perf_counter() - t0) * 1000
        self._observe(answer)
        yield Event("final", answer)

    def _observe(self, answer: Answer) -> None:
        for observer in self.observers:
            try:
                observer(answer)
            except Exception:
                logger.exception("an answer observer failed")

    def _decide(self, answer: Answer, ev: Evidence, selection: Selection) -> None:
        """The kind, the short answer and the quoted evidence, without any model."""
        language = ev.question.language
        kind = selection.kind
        best = selection.best
        calibration = self.selector.calibration
        if best is not None and kind != REFUSED and calibration is not None:
            conflict = find_conflict(ev, selection, calibration.candidate_threshold)
            if conflict is not None:  # never pick one of two documents that disagree
                answer.kind, answer.refused, answer.mode = CANDIDATES, False, "extractive"
                answer.conflict = True
                answer.answer = render_conflict(conflict.sentences, language)
                answer.citations = [citation_for(s) for s in conflict.sentences]
                return
        short = short_answer(ev, best) if best is not None and kind == ANSWERED else None
        if kind == ANSWERED and short is None:
            kind = CANDIDATES  # a figure question whose best sentence has no figure of that type
        if kind == REFUSED or best is None:
            answer.kind, answer.refused = REFUSED, True
            answer.answer = messages.text("refusal", language)
            return
        answer.kind, answer.refused = kind, False
        answer.mode = "extractive"
        if kind == ANSWERED:
            assert short is not None
            answer.short_answer = short
            answer.answer = render_answered(short, best.sentence, language)
            answer.citations = [citation_for(best.sentence)]
            return
        # Best first: the order is the selection's ranking, not the documents'.
        chosen = list({(c.sentence.n, c.sentence.start): c.sentence
                       for c in selection.ranked[:MAX_CANDIDATES]}.values())
        answer.answer = render_candidates(chosen, language)
        answer.citations = [citation_for(s) for s in chosen]

    def _generate(self, question: str, history: list[dict[str, str]] | None, language: str,
                  sources: list[Source], selection: Selection, answer: Answer,
                  t0: float, cancel: threading.Event | None = None) -> Iterator[Event]:
        """After the quoted short answer, a statement by the model, verified sentence by sentence.

        The quoted answer is streamed first (no model needed). The model runs in a worker
        thread; each sentence it writes is checked as soon as it is complete, and only verified
        sentences are appended. A dead backend leaves the quoted answer and a notice.
        """
        best = selection.best
        assert best is not None and answer.short_answer is not None
        try:
            self._copy_short_answer(question, selection, answer)
        except BackendUnavailable as exc:
            logger.warning("backend down, answering from the quotes: %s", exc)
            answer.backend_error = True
            answer.notice = messages.text("fallback", language,
                                          detail=messages.public_detail(str(exc)))
            return
        answer.first_token_ms = (time.perf_counter() - t0) * 1000
        answer.answer = defang(answer.answer)
        yield Event("token", answer.answer)
        verifier = Verifier(self.retriever.embedder, sources, passage_vectors=self.vectors,
                            support=self.support, answer_sentences=[best.sentence])
        passages = prompt_passages([c.sentence for c in selection.ranked], PROMPT_SENTENCES)
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
        seen = 0  # sentences the model wrote (a garbage or empty reply writes none)
        declined = False
        try:
            while True:
                try:
                    kind, value = deltas.get(timeout=CANCEL_POLL_S)
                except queue.Empty:
                    kind, value = "idle", None
                if cancel is not None and cancel.is_set():
                    logger.info("the client went away: generation stopped")
                    break
                if kind == "idle":
                    continue
                if kind == "down":
                    logger.warning("backend down, answering from the quotes: %s", value)
                    answer.backend_error = True
                    answer.notice = messages.text("fallback", language,
                                                  detail=messages.public_detail(str(value)))
                    break
                sentences = splitter.feed(value) if kind == "delta" else splitter.flush()
                for sentence in sentences:
                    if not strip_markers(sentence).strip(" .,;:!?"):
                        continue  # a marker that arrived after its sentence
                    seen += 1
                    if is_not_found(sentence):
                        declined = True
                        stop.set()
                        continue
                    verdict = verifier.check(sentence)
                    if verdict.shown and verdict.citation is not None:
                        text = defang(verdict.text)
                        yield Event("token", " " + text)
                        shown.append(text)
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
            answer.answer = answer.answer + " " + " ".join(shown)
            answer.mode = self.default_mode
        if answer.unverified and not answer.notice:
            answer.notice = messages.text("removed", language, count=len(answer.unverified))
        if not seen and not declined and not answer.notice:
            answer.notice = messages.text("empty_reply", language)


    def _copy_short_answer(self, question: str, selection: Selection, answer: Answer) -> None:
        """Let the model narrow the short answer to the span that answers, under a grammar: a
        choice among the typed spans, or a contiguous run of the sentence's words."""
        best = selection.best
        short = answer.short_answer
        assert best is not None and short is not None
        options = None
        if short.method == "typed":
            options = [sp.text for sp in best.spans
                       if sp.text.lower() not in question.lower()]
            if len(dict.fromkeys(options)) < 2:
                return  # one typed span: nothing for the model to choose
        span = copy_span(self.llm, best.sentence.text, question, options)
        if span is None or span == (0, len(best.sentence.text)):
            return
        answer.short_answer = span_answer(best, span[0], span[1], "copied")
        answer.answer = render_answered(answer.short_answer, best.sentence, answer.language)


def _has_content(question: str, history: list[dict[str, str]] | None) -> bool:
    """Does the question (or, for a follow-up, the question it leans on) have a word or a
    figure to look up? Zero-width characters, punctuation and emoji alone have none."""
    if content_terms(question) or any(ch.isdigit() for ch in question):
        return True
    query = condense(question, history)
    return bool(content_terms(query.text))


def build_answer_engine(settings: Any, llm: Any | None = None, embedder: Any | None = None) -> \
        AnswerEngine:
    """Wire an engine from Settings. ``llm``/``embedder`` may be passed in (tests, benchmarks)."""
    from app.answer.calibration import load_calibration
    from app.wiring import build_embedder, build_llm_from_settings, build_store, pin_threads

    pin_threads(settings.threads)
    embedder = embedder or build_embedder(settings)
    store = build_store(settings, embedder)
    retriever = HybridRetriever(store, embedder, index_dir=settings.lexical_dir)
    collections = Collections(store.client, settings.collection, embedder,
                              settings.lexical_root, default=retriever)
    if llm is None and settings.llm != "extractive":
        llm = build_llm_from_settings(settings)
    calibration = load_calibration(embedder.name)
    fitted_k = calibration.measured.get("top_k") if calibration is not None else None
    if fitted_k is not None and fitted_k != settings.top_k:
        logger.warning("the answer calibration was fitted with top_k %s, this server uses %s: "
                       "answers may be ranked and refused differently from what was measured",
                       fitted_k, settings.top_k)
    selector = Selector(calibration, risk=settings.answer_risk)
    return AnswerEngine(retriever, selector, llm=llm, top_k=settings.top_k,
                        max_question_chars=settings.max_question_chars,
                        answer_slots=settings.answer_slots, collections=collections)

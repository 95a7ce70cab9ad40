"""The OpenAI-compatible routes (/v1/models, /v1/chat/completions): models, streaming, errors."""
from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from app.access import Caller
from app.answer.defang import defang
from app.answer_stream import abandon, next_event
from app.engine import Answer, AnswerEngine, LimitError, QuestionError
from app.messages import public_detail
from app.openai_errors import error_body
from app.request_text import Text
from store.collection import StoreError
from store.naming import DEFAULT_COLLECTION, CollectionNameError, checked_collection

# The model ids /v1 offers: "beleg" answers in the server's default mode, the others name one.
DEFAULT_MODEL = "beleg"
EXTRACTIVE_MODEL = "beleg-extractive"
GENERATED_MODEL = "beleg-generated"
# Roles whose text would be instructions; beleg answers only from documents and says so.
INSTRUCTION_ROLES = ("system", "developer")
# usage counts words and punctuation marks: no model tokenizer is involved in an extractive answer.
_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class OpenAIError(Exception):
    """An error to send in OpenAI's shape: {"error": {message, type, param, code}}."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 param: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.headers = headers


def error_response(status: int, message: str, code: str | None = None, param: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, code, param), status_code=status,
                        headers=headers)


class ContentPart(BaseModel):
    type: Literal["text"]
    text: Text


class ChatMessage(BaseModel):
    role: str
    content: Text | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    model: str | None = None
    messages: list[ChatMessage]
    stream: bool = False
    stream_options: StreamOptions | None = None
    # Accepted and ignored: beleg's answers are deterministic and sized by the evidence.
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    user: str | None = None


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def model_modes(engine: AnswerEngine) -> dict[str, str | None]:
    """Model id -> answer mode (None: the server's default), for the default collection."""
    models: dict[str, str | None] = {DEFAULT_MODEL: None, EXTRACTIVE_MODEL: "extractive"}
    if engine.llm is not None:
        models[GENERATED_MODEL] = engine.default_mode
    return models


def model_id(mode_model: str, collection: str) -> str:
    """'beleg-extractive' over the default collection, 'beleg-extractive:hr' over 'hr'."""
    return mode_model if collection == DEFAULT_COLLECTION else f"{mode_model}:{collection}"


def resolve_model(engine: AnswerEngine, caller: Caller, model: str | None
                  ) -> tuple[str | None, str]:
    """(answer mode, collection) that a model id names, or an OpenAIError: 404 for an id
    that names no mode or no collection the caller may use (the same words either way)."""
    model = model or DEFAULT_MODEL
    mode_model, _, collection = model.partition(":")
    modes = model_modes(engine)
    try:
        name = checked_collection(collection or None)
    except CollectionNameError:
        name = ""
    usable = caller.usable(engine.collections.names())
    if mode_model not in modes or name not in usable:
        ids = [model_id(m, c) for c in usable for m in modes]
        shown = ", ".join(ids[:12]) + (", …" if len(ids) > 12 else "")
        raise OpenAIError(404, f"the model '{model}' does not exist; choose one of {shown} "
                          "(GET /v1/models: a mode, then optionally ':' and a collection)",
                          "model_not_found", "model")
    return modes[mode_model], name


def _text(m: ChatMessage) -> str:
    if m.content is None:
        return ""
    return m.content if isinstance(m.content, str) else " ".join(p.text for p in m.content)


def conversation(req: ChatRequest) -> tuple[str, list[dict[str, str]]]:
    """The question and its history, or an OpenAIError that says what to change."""
    for i, m in enumerate(req.messages):
        if m.role in INSTRUCTION_ROLES:
            raise OpenAIError(
                400, f"messages[{i}] has role '{m.role}': beleg answers only from your documents "
                "and follows no instructions; send the question as a 'user' message and leave "
                "out system and developer messages", "unsupported_message_role",
                f"messages[{i}].role")
        if m.role not in ("user", "assistant"):
            raise OpenAIError(400, f"messages[{i}] has role '{m.role}'; use 'user' or "
                              "'assistant'", "invalid_message_role", f"messages[{i}].role")
    turns = [{"role": m.role, "content": _text(m)} for m in req.messages]
    if not turns or turns[-1]["role"] != "user":
        raise OpenAIError(400, "the last message must come from the user (the question)",
                          "invalid_messages", "messages")
    return turns[-1]["content"], turns[:-1]


def citation_trailer(answer: Answer) -> str:
    """The citations as text after the answer: [n] source start-end: «quote»."""
    lines = [f"[{c.n}] {defang(c.source)} {c.start}-{c.end}: «{defang(c.quote)}»"
             for c in answer.citations]
    return "\n\n" + "\n".join(lines) if lines else ""


def annotations(content: str, answer: Answer, url_base: str) -> list[dict[str, Any]]:
    """OpenAI-style ``url_citation`` annotations, one per citation marker ``[n]`` in the
    content (start_index/end_index point at the marker), with beleg's span fields added:
    source, start, end, quote and verified."""
    by_n = {c.n: c for c in answer.citations}
    query = "" if answer.collection == DEFAULT_COLLECTION else f"?collection={answer.collection}"
    out = []
    for m in re.finditer(r"\[(\d+)\]", content):
        c = by_n.get(int(m.group(1)))
        if c is None:
            continue
        out.append({"type": "url_citation", "url_citation": {
            "start_index": m.start(), "end_index": m.end(), "title": c.source,
            "url": f"{url_base}/api/documents/{c.source}{query}#{c.start}-{c.end}",
            "source": c.source, "start": c.start, "end": c.end, "quote": c.quote,
            "verified": True}})
    return out


def beleg_fields(answer: Answer) -> dict[str, Any]:
    return {"citations": [c.to_dict() for c in answer.citations], "refused": answer.refused,
            "kind": answer.kind, "collection": answer.collection,
            "short_answer": None if answer.short_answer is None
            else answer.short_answer.to_dict(), "mode": answer.mode, "notice": answer.notice,
            "unverified": answer.unverified}


def usage(question: str, history: list[dict[str, str]], content: str) -> dict[str, int]:
    prompt = count_tokens(question) + sum(count_tokens(t["content"]) for t in history)
    completion = count_tokens(content)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def openai_router(engine: AnswerEngine, auth: Callable[..., None], url_base: str) -> APIRouter:
    """The /v1 routes; errors raised inside them are OpenAIError (see ``error_response``)."""
    router = APIRouter(prefix="/v1", dependencies=[Depends(auth)])

    @router.get("/models")
    def models(request: Request) -> dict[str, Any]:
        """One id per answer mode and collection the caller may use."""
        created = int(time.time())
        names = request.state.caller.usable(engine.collections.names())
        return {"object": "list", "data": [
            {"id": model_id(m, c), "object": "model", "created": created, "owned_by": "beleg"}
            for c in names for m in model_modes(engine)]}

    @router.post("/chat/completions")
    def chat(req: ChatRequest, request: Request) -> Any:
        model = req.model or DEFAULT_MODEL
        mode, collection = resolve_model(engine, request.state.caller, model)
        question, history = conversation(req)
        cancel = threading.Event()
        try:
            events = engine.stream(question, history, mode, cancel=cancel,
                                   collection=collection)
            next(events)  # the sources; validation errors surface before any byte is sent
        except LimitError as exc:
            raise OpenAIError(413, str(exc), "request_too_large", "messages") from exc
        except QuestionError as exc:
            raise OpenAIError(400, str(exc), "invalid_question", "messages") from exc
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:12]}", int(time.time())
        base = {"id": cid, "created": created, "model": model}
        if not req.stream:
            final: Answer | None = None
            for event in events:
                if event.kind == "final":
                    final = event.data
            if final is None:
                raise OpenAIError(500, "the answer ended without a result")
            content = _content(final)
            return {**base, "object": "chat.completion",
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {
                        "role": "assistant", "content": content, "refusal": None,
                        "annotations": annotations(content, final, url_base)}}],
                    "usage": usage(question, history, content), "beleg": beleg_fields(final)}
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return StreamingResponse(
            _chunks(events, base, question, history, include_usage, url_base, cancel),
            media_type="text/event-stream")

    return router


def _content(answer: Answer) -> str:
    text = answer.answer
    if answer.notice:
        text += f"\n\n{answer.notice}"
    return text + citation_trailer(answer)


def _chunk(base: dict[str, Any], delta: dict[str, Any], finish: str | None = None,
           **extra: Any) -> str:
    body = {**base, "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
    return "data: " + json.dumps(body, ensure_ascii=False) + "\n\n"


async def _chunks(events: Any, base: dict[str, Any], question: str,
                  history: list[dict[str, str]], include_usage: bool, url_base: str,
                  cancel: threading.Event) -> AsyncIterator[str]:
    """Chat completion chunks: the role, then each verified piece of text as the engine passes
    it, then the notice and the citations, a last chunk with the annotations and beleg's
    fields, usage when asked for, and [DONE]. A client that leaves stops the model."""
    finished = False
    sent = ""
    try:
        yield _chunk(base, {"role": "assistant", "content": ""})
        while (event := await next_event(events)) is not None:
            if event.kind == "token":
                piece = defang(event.data)
                sent += piece
                yield _chunk(base, {"content": piece})
            elif event.kind == "final":
                answer: Answer = event.data
                full = _content(answer)
                # the notice and citations follow the streamed text
                rest = full[len(sent):] if full.startswith(sent) else full[len(answer.answer):]
                if rest:
                    sent += rest
                    yield _chunk(base, {"content": rest})
                yield _chunk(base, {"annotations": annotations(sent, answer, url_base)}, "stop",
                             beleg=beleg_fields(answer))
                if include_usage:
                    yield "data: " + json.dumps({**base, "object": "chat.completion.chunk",
                                                 "choices": [],
                                                 "usage": usage(question, history, sent)}) \
                        + "\n\n"
        finished = True
        yield "data: [DONE]\n\n"
    except StoreError as exc:  # the status line is out: say it in the stream, OpenAI-shaped
        finished = True
        yield "data: " + json.dumps(error_body(503, public_detail(str(exc), 300))) + "\n\n"
    finally:
        if not finished:  # the client left: stop the model, free the slot
            abandon(events, cancel)

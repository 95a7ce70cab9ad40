"""HTTP API (REST, SSE streaming, OpenAI-compatible chat) with the web chat mounted in it."""
from __future__ import annotations

import json
import logging
import secrets
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, File, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from app.engine import AnswerEngine, QuestionError
from app.library import IngestReport, Library
from ingest.documents import IngestError
from ingest.loaders import load_document
from store.collection import StoreError

logger = logging.getLogger(__name__)


class Turn(BaseModel):
    role: str
    content: str


class AskRequest(BaseModel):
    question: str
    history: list[Turn] = Field(default_factory=list)
    mode: str | None = None


class SearchRequest(BaseModel):
    query: str
    k: int = Field(default=5, strict=True)


class ChatMessage(BaseModel):
    role: str
    content: str | list[dict[str, Any]]


class ChatRequest(BaseModel):
    model: str | None = None
    messages: list[ChatMessage]
    stream: bool = False


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def create_app(engine: AnswerEngine, *, api_token: str = "", root_path: str = "",
               with_ui: bool = True, max_search_k: int = 50,
               max_upload_bytes: int = 50 * 1024 * 1024) -> FastAPI:
    """The FastAPI app. ``api_token`` (when set) is required as a Bearer token on /api and /v1."""
    app = FastAPI(title="beleg", version="0.1.0", root_path=root_path)

    def auth(request: Request) -> None:
        if not api_token:
            return
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else ""
        if not secrets.compare_digest(given.encode("utf-8", "surrogateescape"),
                                      api_token.encode("utf-8")):
            raise HTTPException(401, "missing or wrong API token; send 'Authorization: Bearer "
                                     "<BELEG_API_TOKEN>'", headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                          for e in exc.errors()[:5])
        return JSONResponse({"detail": f"malformed request ({where})"}, status_code=422)

    @app.get("/api/health")
    def health() -> JSONResponse:
        body: dict[str, Any] = {"status": "ok", "mode": engine.default_mode}
        try:
            body["documents"] = len(engine.retriever.store.documents())
            body["chunks"] = engine.retriever.store.count()
            body["embedding"] = engine.retriever.embedder.name
        except StoreError as exc:
            return JSONResponse({"status": "error", "detail": str(exc)}, status_code=503)
        except Exception as exc:  # the vector server died under us
            return JSONResponse({"status": "error", "detail": f"vector store: {exc}"},
                                status_code=503)
        if engine.llm is not None:
            llm_health = engine.llm.health()
            body["llm"] = llm_health
            if not llm_health.get("ok"):
                body["status"] = "degraded"
                body["detail"] = (f"LLM backend '{engine.llm.name}' unavailable; answers fall back "
                                  f"to extractive quotes")
        return JSONResponse(body)

    @app.post("/api/ask", dependencies=[Depends(auth)])
    def ask(req: AskRequest, stream: bool = False) -> Any:
        history = [t.model_dump() for t in req.history]
        try:
            events = engine.stream(req.question, history, req.mode)
            first = next(events)  # validation errors surface here, before any byte is sent
        except QuestionError as exc:
            raise HTTPException(400, str(exc)) from exc
        except StoreError as exc:
            raise HTTPException(503, str(exc)) from exc
        if not stream:
            final = None
            for event in events:
                if event.kind == "final":
                    final = event.data
            return final.to_dict() if final else JSONResponse({"detail": "no answer"}, 500)

        def gen() -> Iterator[str]:
            yield _sse("sources", [s.to_dict() for s in first.data])
            for event in events:
                if event.kind == "token":
                    yield _sse("token", {"text": event.data})
                elif event.kind == "final":
                    yield _sse("final", event.data.to_dict())

        return StreamingResponse(gen(), media_type="text/event-stream")

    @app.post("/api/search", dependencies=[Depends(auth)])
    def search(req: SearchRequest) -> dict[str, Any]:
        if not req.query.strip():
            raise HTTPException(400, "the query is empty")
        if len(req.query) > engine.max_question_chars:
            raise HTTPException(400, f"the query is longer than {engine.max_question_chars} "
                                     "characters")
        if not 1 <= req.k <= max_search_k:
            raise HTTPException(400, f"k must be between 1 and {max_search_k}")
        hits = engine.retriever.search(req.query, req.k)
        return {"hits": [h.to_dict() for h in hits]}

    @app.get("/api/documents", dependencies=[Depends(auth)])
    def documents() -> dict[str, Any]:
        return {"documents": [{"source": d.source, "hash": d.hash, "chunks": d.chunks,
                               "metadata": d.metadata}
                              for d in engine.retriever.store.documents()]}

    @app.get("/api/documents/{source:path}", dependencies=[Depends(auth)])
    def document(source: str) -> dict[str, Any]:
        doc = engine.retriever.store.document(source)
        if doc is None:
            raise HTTPException(404, f"no document named '{source}'")
        return {"source": doc.source, "text": doc.text, "metadata": doc.metadata}

    @app.post("/api/documents", dependencies=[Depends(auth)])
    def upload(files: list[UploadFile] = File(...)) -> JSONResponse:
        """Add or replace documents; a bad file is reported by name, nothing stored is lost."""
        library = Library(engine.retriever.store, engine.retriever.embedder)
        report = IngestReport()
        with tempfile.TemporaryDirectory() as tmp:
            for f in files:
                name = Path(f.filename or "upload").name
                data = f.file.read(max_upload_bytes + 1)
                if len(data) > max_upload_bytes:
                    report.failed.append((name, f"larger than {max_upload_bytes} bytes"))
                    continue
                path = Path(tmp) / name
                path.write_bytes(data)
                try:
                    outcome = library.add_document(load_document(path, source=name))
                except IngestError as exc:
                    report.failed.append((name, exc.reason))
                    continue
                getattr(report, outcome).append(name)
        stored = report.added or report.replaced or report.unchanged
        return JSONResponse(report.to_dict(), status_code=200 if stored or not report.failed
                            else 422)

    @app.delete("/api/documents/{source:path}", dependencies=[Depends(auth)])
    def delete(source: str) -> dict[str, Any]:
        if not engine.retriever.store.remove(source):
            raise HTTPException(404, f"no document named '{source}'")
        return {"removed": source}

    @app.get("/v1/models", dependencies=[Depends(auth)])
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": "beleg", "object": "model",
                                            "owned_by": "beleg"}]}

    @app.post("/v1/chat/completions", dependencies=[Depends(auth)])
    def chat(req: ChatRequest) -> Any:
        turns = [{"role": m.role, "content": m.content if isinstance(m.content, str) else
                  " ".join(p.get("text", "") for p in m.content)} for m in req.messages
                 if m.role in ("user", "assistant")]
        if not turns or turns[-1]["role"] != "user":
            raise HTTPException(400, "the last message must come from the user")
        question, history = turns[-1]["content"], turns[:-1]
        try:
            answer = engine.ask(question, history)
        except QuestionError as exc:
            raise HTTPException(400, str(exc)) from exc
        content = answer.answer
        if answer.notice:
            content += f"\n\n{answer.notice}"
        if answer.citations:
            content += "\n\n" + "\n".join(f"[{c.n}] {c.source} {c.start}-{c.end}: «{c.quote}»"
                                          for c in answer.citations)
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:12]}", int(time.time())
        extra = {"citations": [c.to_dict() for c in answer.citations], "refused": answer.refused,
                 "kind": answer.kind, "short_answer": None if answer.short_answer is None
                 else answer.short_answer.to_dict(),
                 "mode": answer.mode, "notice": answer.notice, "unverified": answer.unverified}
        if not req.stream:
            return {"id": cid, "object": "chat.completion", "created": created, "model": "beleg",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "beleg": extra}

        def gen() -> Iterator[str]:
            base = {"id": cid, "object": "chat.completion.chunk", "created": created,
                    "model": "beleg"}
            yield "data: " + json.dumps({**base, "choices": [{"index": 0, "delta": {
                "role": "assistant", "content": content}, "finish_reason": None}]}) + "\n\n"
            yield "data: " + json.dumps({**base, "choices": [{"index": 0, "delta": {},
                                         "finish_reason": "stop"}], "beleg": extra}) + "\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(gen(), media_type="text/event-stream")

    if with_ui:
        import gradio as gr

        from app.ui import build_ui

        blocks = build_ui(engine)
        # Mounted last at "/": the routes above take precedence over the chat's catch-all.
        # With a token, the chat asks for it at a login form (any user name, the token as password).
        login = (lambda _user, password: secrets.compare_digest(
            password.encode("utf-8", "surrogateescape"), api_token.encode("utf-8"))) \
            if api_token else None
        gr.mount_gradio_app(app, blocks, path="", root_path=root_path or None, auth=login)

    return app

"""HTTP API (REST, SSE streaming, OpenAI-compatible chat) with the web chat mounted in it."""
from __future__ import annotations

import json
import logging
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, File, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.access import Access, AccessDenied, bearer
from app.answer_stream import abandon, next_event
from app.engine import AnswerEngine, BusyError, LimitError, QuestionError
from app.framing import embeddable
from app.http_guard import (
    BodyLimit,
    ClosedPaths,
    LoginThrottle,
    SameOriginWrites,
    Scope,
    SessionRequired,
    cookies,
    header,
)
from app.keys import KeyStore
from app.library import IngestReport, Library, load_upload
from app.messages import public_detail
from app.names import is_document_name
from app.observability import CONTENT_TYPE as METRICS_CONTENT_TYPE
from app.observability import Metrics, Observed
from app.openai_compat import OpenAIError, error_response, openai_router
from app.openai_errors import is_v1_path
from app.request_text import Text
from app.trusted_proxy import DEFAULT_PROXIES, RecordPeer, TrustedHeaders
from ingest.documents import Document
from store.collection import StoreError, UnknownCollection
from store.naming import CollectionNameError, checked_collection
from store.retrieval import HybridRetriever

logger = logging.getLogger(__name__)


# Request bodies beyond this are refused with 413 before they are read (Settings.max_request_bytes).
MAX_REQUEST_BYTES = 60 * 1024 * 1024


class Turn(BaseModel):
    role: str
    content: Text


class AskRequest(BaseModel):
    question: Text
    history: list[Turn] = Field(default_factory=list)
    mode: Text | None = None
    collection: Text | None = None


class SearchRequest(BaseModel):
    query: Text
    k: int = Field(default=5, strict=True)
    collection: Text | None = None


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


# What the chat's login form asks for (its fields are Gradio's "Username" and "Password").
LOGIN_MESSAGE = ("Username: the name of your API key. Password: the key itself "
                 "(blg_…; an administrator makes one with `beleg keys create NAME`).")
# Gradio's session routes (and its file upload, used by the documents tab) that it would
# leave open even with its login on.
SESSION_ROUTES = ("/gradio_api/reset", "/gradio_api/cancel", "/gradio_api/heartbeat",
                  "/gradio_api/upload")


def _session_check(app: FastAPI, access: Access, trusted: TrustedHeaders | None
                   ) -> Callable[[Scope], bool]:
    """True for a request from a logged-in chat session (Gradio's access-token cookie names a
    live login), one that carries the token or a key that may ask, or one from a user a
    trusted proxy vouches for."""
    from starlette.routing import Mount

    chat = next(r.app for r in app.routes if isinstance(r, Mount) and hasattr(r.app, "tokens"))

    def check(scope: Scope) -> bool:
        if access.allows(bearer(header(scope, b"authorization")), "ask"):
            return True
        vouched = trusted.caller(scope) if trusted is not None else None
        if vouched is not None and vouched.allows("ask"):
            return True
        jar = cookies(scope)
        names = (f"access-token-{chat.cookie_id}", f"access-token-unsecure-{chat.cookie_id}")
        return any(jar.get(n) in chat.tokens for n in names if jar.get(n))

    return check


def create_app(engine: AnswerEngine, *, api_token: str = "", root_path: str = "",
               with_ui: bool = True, max_search_k: int = 50,
               max_upload_bytes: int = 50 * 1024 * 1024,
               max_request_bytes: int = MAX_REQUEST_BYTES,
               allowed_origins: tuple[str, ...] = (), keys: KeyStore | None = None,
               trusted: TrustedHeaders | None = None,
               proxies: tuple[str, ...] = DEFAULT_PROXIES,
               examples: tuple[str, ...] = ()) -> Any:
    """The ASGI app. With ``api_token`` set or any key in ``keys``, /api (but health, live and
    ready), /v1 and /metrics need ``Authorization: Bearer`` with the token or a key holding
    the route's scope, and the API's own docs are not served. Pages of ``allowed_origins``
    (none by default) may embed the chat in a frame, call the API from scripts (CORS) and write;
    other origins may do none of these. Bodies over ``max_request_bytes`` get 413.
    ``proxies`` may set X-Forwarded-For/-Proto and, with ``trusted``, vouch for a user."""
    access = Access(api_token, keys, proxy_users=trusted is not None)
    open_docs = not access.required
    app = FastAPI(title="beleg", version="0.1.0", root_path=root_path,
                  docs_url="/docs" if open_docs else None,
                  redoc_url="/redoc" if open_docs else None,
                  openapi_url="/openapi.json" if open_docs else None)

    def need(scope: str) -> Callable[[Request], None]:
        """A route dependency: the request carries the token or a key with ``scope``."""
        def check(request: Request) -> None:
            vouched = trusted.caller(request.scope) if trusted is not None else None
            try:
                request.state.caller = access.who(
                    bearer(request.headers.get("authorization", "")), scope, vouched)
            except AccessDenied as exc:
                headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
                raise HTTPException(exc.status, str(exc), headers=headers) from exc
        return check

    def reply(request: Request, status: int, detail: str,
              headers: dict[str, str] | None = None, param: str | None = None) -> JSONResponse:
        """{"detail": ...} on /api, OpenAI's error shape on /v1 (its clients read only that)."""
        if is_v1_path(request.scope.get("path", ""), root_path):
            return error_response(status, detail, param=param, headers=headers)
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)

    @app.exception_handler(OpenAIError)
    async def openai_error(_: Request, exc: OpenAIError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.code, exc.param, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                          for e in errors[:5])
        status = 400 if any(e.get("type") == "invalid_unicode" for e in errors) else 422
        param = ".".join(str(p) for p in errors[0]["loc"][1:]) if errors else None
        return reply(request, status, f"malformed request ({where})", param=param or None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail
        if exc.status_code == 400 and detail == "There was an error parsing the body":
            # FastAPI's words for a body that is not JSON in UTF-8 (or too deeply nested).
            detail = ("the request body could not be read: send JSON encoded as UTF-8 "
                      "(Content-Type: application/json), or multipart form data for uploads")
        return reply(request, exc.status_code, detail, getattr(exc, "headers", None))

    @app.exception_handler(BusyError)
    async def busy(request: Request, exc: BusyError) -> JSONResponse:
        return reply(request, 503, str(exc), {"Retry-After": "10"})

    @app.exception_handler(UnknownCollection)
    async def unknown_collection(request: Request, exc: UnknownCollection) -> JSONResponse:
        return reply(request, 404, str(exc), param="collection")

    @app.exception_handler(CollectionNameError)
    async def bad_collection(request: Request, exc: CollectionNameError) -> JSONResponse:
        return reply(request, 400, str(exc), param="collection")

    @app.exception_handler(AccessDenied)
    async def denied(request: Request, exc: AccessDenied) -> JSONResponse:
        return reply(request, exc.status, str(exc))

    def collection_of(request: Request, name: str | None, create: bool = False
                      ) -> HybridRetriever:
        """The retriever of a collection the caller may use: 403 when the key may not use it
        (said alike whether or not it exists), 404 when it does not exist and ``create`` is
        off. Every document route, search and answer reads through this, so no document of
        another collection can reach the caller."""
        name = checked_collection(name)
        request.state.caller.check(name)
        return engine.collections.retriever(name, create=create)

    @app.exception_handler(StoreError)
    async def store_failed(request: Request, exc: StoreError) -> JSONResponse:
        # A dead Chroma server or a full disk: the request may be retried, nothing was lost.
        return reply(request, 503, public_detail(str(exc), 300), {"Retry-After": "5"})

    metrics = Metrics()
    engine.observers.append(metrics.observe_answer)

    @app.get("/api/live")
    def live() -> dict[str, str]:
        """Liveness: the process answers HTTP (restart it when this fails)."""
        return {"status": "alive"}

    @app.get("/api/ready")
    def ready() -> JSONResponse:
        """Readiness: the vector store answers, so questions can be served (a load balancer
        sends no traffic while this is 503). A dead LLM does not make it unready: answers fall
        back to quotes."""
        try:
            chunks = engine.retriever.store.count()
        except Exception as exc:  # StoreError, or a vector server that died under us
            return JSONResponse({"status": "not ready",
                                 "detail": public_detail(f"vector store: {exc}", 300)},
                                status_code=503, headers={"Retry-After": "5"})
        return JSONResponse({"status": "ready", "chunks": chunks})

    @app.get("/metrics", dependencies=[Depends(need("admin"))], include_in_schema=False)
    def prometheus() -> Response:
        return Response(metrics.exposition(), media_type=METRICS_CONTENT_TYPE)

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

    @app.get("/api/collections", dependencies=[Depends(need("read"))])
    def collections(request: Request) -> dict[str, Any]:
        """The collections the caller may use, with their size."""
        out = []
        for name in request.state.caller.usable(engine.collections.names()):
            store = engine.collections.store(name)
            out.append({"name": name, "documents": len(store.documents()),
                        "chunks": store.count()})
        return {"collections": out}

    @app.post("/api/ask", dependencies=[Depends(need("ask"))])
    def ask(req: AskRequest, request: Request, stream: bool = False) -> Any:
        history = [t.model_dump() for t in req.history]
        collection = checked_collection(req.collection)
        collection_of(request, collection)
        try:
            cancel = threading.Event()
            events = engine.stream(req.question, history, req.mode, cancel=cancel,
                                   collection=collection)
            first = next(events)  # validation errors surface here, before any byte is sent
        except LimitError as exc:
            raise HTTPException(413, str(exc)) from exc
        except QuestionError as exc:
            raise HTTPException(400, str(exc)) from exc
        if not stream:
            final = None
            for event in events:
                if event.kind == "final":
                    final = event.data
            return final.to_dict() if final else JSONResponse({"detail": "no answer"}, 500)

        async def gen() -> AsyncIterator[str]:
            # Each step runs in the thread pool; when the client goes away Starlette cancels
            # this generator, and ``cancel`` tells the engine to stop the model at once.
            finished = False
            try:
                yield _sse("sources", [s.to_dict() for s in first.data])
                while (event := await next_event(events)) is not None:
                    if event.kind == "token":
                        yield _sse("token", {"text": event.data})
                    elif event.kind == "final":
                        yield _sse("final", event.data.to_dict())
                finished = True
            except StoreError as exc:  # the status line is sent already: say it in the stream
                finished = True
                yield _sse("error", {"detail": public_detail(str(exc), 300)})
            finally:
                if not finished:  # the client left: stop the model, free the slot
                    abandon(events, cancel)

        return StreamingResponse(gen(), media_type="text/event-stream")

    @app.post("/api/search", dependencies=[Depends(need("read"))])
    def search(req: SearchRequest, request: Request) -> dict[str, Any]:
        retriever = collection_of(request, req.collection)
        if not req.query.strip():
            raise HTTPException(400, "the query is empty")
        if len(req.query) > engine.max_question_chars:
            raise HTTPException(400, f"the query is longer than {engine.max_question_chars} "
                                     "characters")
        if not 1 <= req.k <= max_search_k:
            raise HTTPException(400, f"k must be between 1 and {max_search_k}")
        hits = retriever.search(req.query, req.k)
        return {"hits": [h.to_dict() for h in hits]}

    @app.get("/api/documents", dependencies=[Depends(need("read"))])
    def documents(request: Request, collection: str | None = None) -> dict[str, Any]:
        store = collection_of(request, collection).store
        return {"collection": store.label,
                "documents": [{"source": d.source, "hash": d.hash, "chunks": d.chunks,
                               "metadata": d.metadata} for d in store.documents()]}

    @app.get("/api/documents/{source:path}", dependencies=[Depends(need("read"))])
    def document(source: str, request: Request, collection: str | None = None
                 ) -> dict[str, Any]:
        store = collection_of(request, collection).store
        doc = store.document(source) if is_document_name(source) else None
        if doc is None:
            raise HTTPException(404, f"no document named '{source}'")
        return {"source": doc.source, "text": doc.text, "metadata": doc.metadata}

    @app.post("/api/documents", dependencies=[Depends(need("write"))])
    def upload(request: Request, files: list[UploadFile] = File(...),
               collection: str | None = None) -> JSONResponse:
        """Add or replace documents, all or nothing: every file is read and checked first, and
        when any is refused (each with its own reason) none is stored. A named collection is
        created by its first upload."""
        request.state.caller.check(checked_collection(collection))
        report = IngestReport()
        parsed: list[Document] = []
        with tempfile.TemporaryDirectory() as tmp:
            for i, f in enumerate(files):
                shown = repr(f.filename)[1:-1][:120] if f.filename else f"file {i + 1}"
                path = Path(tmp) / f"{i}{Path(f.filename or '').suffix.lower()}"
                path.write_bytes(f.file.read(max_upload_bytes + 1))  # one byte tells "too big"
                doc = load_upload(f.filename, path, report, max_upload_bytes, shown)
                if doc is not None:
                    parsed.append(doc)
            if report.failed:
                body = report.to_dict()
                body["detail"] = ("nothing was stored: fix or leave out the files listed under "
                                  "'failed' and send the request again")
                return JSONResponse(body, status_code=422)
            retriever = collection_of(request, collection, create=True)
            Library(retriever.store, retriever.embedder).add_documents(parsed, report)
        return JSONResponse(report.to_dict())

    @app.delete("/api/documents/{source:path}", dependencies=[Depends(need("write"))])
    def delete(source: str, request: Request, collection: str | None = None) -> dict[str, Any]:
        store = collection_of(request, collection).store
        if not is_document_name(source) or not store.remove(source):
            raise HTTPException(404, f"no document named '{source}'")
        return {"removed": source}

    app.include_router(openai_router(engine, need("ask"), root_path))

    if with_ui:
        import gradio as gr

        from app.ui import CSS as UI_CSS
        from app.ui import build_ui

        blocks = build_ui(engine, access.caller_named, examples=examples,
                          max_upload_bytes=max_upload_bytes)
        # Mounted last at "/": the routes above take precedence over the chat's catch-all.
        # With a token or keys, the chat asks for one at a login form: the key's name and the
        # key (or any name and the token); the name then tells the session's collections.
        login = access.login if access.required and trusted is None else None
        gr.mount_gradio_app(app, blocks, path="", root_path=root_path or None, auth=login,
                            auth_message=LOGIN_MESSAGE if login else None,
                            auth_dependency=None if trusted is None
                            else _proxy_user(access, trusted),
                            footer_links=[],  # no API page, no "built with", no settings
                            css=UI_CSS,
                            max_file_size=max_upload_bytes)

    closed: list[str] = []
    if not open_docs:  # the mounted chat app would otherwise serve its own
        closed += ["/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"]
    inner: Any = SameOriginWrites(app, allowed_origins)
    if access.required and with_ui:
        inner = SessionRequired(inner, SESSION_ROUTES, _session_check(app, access, trusted))
    guarded = LoginThrottle(ClosedPaths(inner, closed))
    observed = Observed(BodyLimit(embeddable(guarded, allowed_origins), max_request_bytes),
                        metrics)
    outer = RecordPeer(observed, proxies)
    outer.fastapi = app  # the routes, for whoever needs them (a test server's shutdown)
    return outer


def _proxy_user(access: Access, trusted: TrustedHeaders) -> Callable[[Request], str | None]:
    """The chat's sign-in behind a proxy: the user it vouches for, remembered for the session's
    questions (None: Gradio answers 401)."""
    def user(request: Request) -> str | None:
        caller = trusted.caller(request.scope)
        if caller is None or not caller.allows("ask"):
            return None
        access.vouched[caller.name] = caller
        return caller.name
    return user

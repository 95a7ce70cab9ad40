"""`beleg`: ingest, ask, chat, search, serve, documents, collections, keys, models."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.settings import Settings, SettingsError

logger = logging.getLogger("beleg")

EXIT_USAGE, EXIT_INPUT, EXIT_UNAVAILABLE = 2, 3, 4
# On SIGTERM, requests still running get this long to finish before the server exits anyway.
# Longer than a generated answer's time limit would keep a stuck backend from holding the
# shutdown; an extractive answer takes well under a second.
SHUTDOWN_GRACE_S = 10


def _settings(args: argparse.Namespace) -> Settings:
    s = Settings.load()
    if getattr(args, "host", None):
        s = replace(s, host=args.host)
    if getattr(args, "port", None):
        s = replace(s, port=args.port)
    if getattr(args, "mode", None) and args.mode != "extractive":
        s = replace(s, llm=args.mode).validated()
    return s


@contextmanager
def _writing(settings: Settings) -> Iterator[None]:
    """A CLI write on the embedded store waits for no server: it refuses while one runs."""
    if settings.chroma_url:  # a Chroma server arbitrates between processes itself
        yield
        return
    from store.serve_lock import exclusive_write

    with exclusive_write(settings.data_dir):
        yield


def cmd_ingest(args: argparse.Namespace) -> int:
    from app.wiring import batch_threads, build_library

    settings = _settings(args)
    with _writing(settings):
        library = build_library(settings=settings, collection=args.collection)
        with batch_threads(settings):  # this process only embeds: all threads for the batch
            report = library.add_paths([Path(p) for p in args.paths], progress=not args.json)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        print(f"added {len(report.added)}, replaced {len(report.replaced)}, "
              f"unchanged {len(report.unchanged)}, failed {len(report.failed)}")
        for path, reason in report.failed:
            print(f"  skipped {path}: {reason}", file=sys.stderr)
    return EXIT_INPUT if report.failed and not (report.added or report.replaced
                                                  or report.unchanged) else 0


def _read_history(path: str) -> list[dict[str, str]]:
    """The earlier turns of a conversation: a JSON list of {"role", "content"} (``-``: stdin).
    The engine checks roles, lengths and counts; this only reads the file."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        turns = json.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the history file {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"the history file {path} is not JSON ({exc}); write a list of "
                         '{"role": "user"|"assistant", "content": "..."}') from exc
    return turns


def cmd_ask(args: argparse.Namespace) -> int:
    from app.engine import QuestionError
    from app.wiring import build_engine

    try:
        history = _read_history(args.history) if args.history else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    engine = build_engine(_settings(args))
    try:
        answer = engine.ask(args.question, history, mode=args.mode, collection=args.collection)
    except QuestionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    if args.json:
        print(json.dumps(answer.to_dict(with_sources=False), ensure_ascii=False))
        return 0
    _print_answer(answer)
    return 0


def _print_answer(answer: Any) -> None:
    print(answer.answer)
    if answer.short_answer is not None and answer.short_answer.method != "sentence":
        sa = answer.short_answer
        print(f"\nshort answer: {sa.text} [{sa.n}] ({sa.source} {sa.start}-{sa.end})")
    print(f"kind: {answer.kind}")
    if answer.notice:
        print(f"\n{answer.notice}")
    for c in answer.citations:
        print(f"  [{c.n}] {c.source} {c.start}-{c.end}: {c.quote}")


# Turns of the conversation `beleg chat` sends with each question (the engine takes up to 100;
# follow-ups lean on the last question, so a short window is plenty).
CHAT_TURNS = 20


def cmd_chat(args: argparse.Namespace) -> int:
    """An interactive session: each question is asked with the conversation so far."""
    from app.engine import QuestionError
    from app.wiring import build_engine

    engine = build_engine(_settings(args))
    engine.collections.retriever(args.collection)  # an unknown collection ends it at once
    history: list[dict[str, str]] = []
    interactive = sys.stdin.isatty()
    if interactive:
        print("Ask about your documents; /clear starts over, /exit or Ctrl-D ends.",
              file=sys.stderr)
    while True:
        try:
            line = input("? " if interactive else "")
        except EOFError:
            return 0
        question = line.strip()
        if question in ("/exit", "/quit"):
            return 0
        if question == "/clear":
            history = []
            print("(a new conversation)", file=sys.stderr)
            continue
        if not question:
            continue
        try:
            answer = engine.ask(question, history[-CHAT_TURNS:], mode=args.mode,
                                collection=args.collection)
        except QuestionError as exc:
            print(f"error: {exc}", file=sys.stderr)
            continue
        _print_answer(answer)
        print()
        history += [{"role": "user", "content": question},
                    {"role": "assistant", "content": answer.answer}]


def cmd_search(args: argparse.Namespace) -> int:
    from app.wiring import build_engine

    if not args.query.strip():
        print("error: the query is empty", file=sys.stderr)
        return EXIT_INPUT
    engine = build_engine(replace(_settings(args), llm="extractive"))
    hits = engine.collections.retriever(args.collection).search(args.query, args.k)
    if args.json:
        print(json.dumps({"hits": [h.to_dict() for h in hits]}, ensure_ascii=False))
    else:
        for h in hits:
            print(f"{h.score:.3f}  {h.chunk.source} {h.chunk.start}-{h.chunk.end}  "
                  f"{h.chunk.text[:100]!r}")
    return 0


def cmd_documents(args: argparse.Namespace) -> int:
    from app.wiring import build_catalogue

    settings = _settings(args)
    if args.action == "remove":
        with _writing(settings):
            library = build_catalogue(settings, args.collection)
            missing = [s for s in args.sources if not library.remove(s)]
        for s in missing:
            print(f"error: no document named '{s}' (see `beleg documents`)", file=sys.stderr)
        return EXIT_INPUT if missing else 0
    docs = build_catalogue(settings, args.collection).documents()
    if args.json:
        print(json.dumps([{"source": d.source, "hash": d.hash, "chunks": d.chunks,
                           "metadata": d.metadata} for d in docs], ensure_ascii=False))
    else:
        for d in docs:
            flag = "\tinstruction-like text" if d.metadata.get("instruction_like") else ""
            print(f"{d.source}\t{d.chunks} chunks\t{d.metadata.get('date', '')}{flag}")
    return 0


def cmd_collections(args: argparse.Namespace) -> int:
    from app.wiring import build_catalogue, build_client
    from store.naming import collection_names

    settings = _settings(args)
    client = build_client(settings)
    rows = []
    for name in collection_names(client, settings.collection):
        docs = build_catalogue(settings, name).documents()
        rows.append({"name": name, "documents": len(docs), "chunks": sum(d.chunks for d in docs)})
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            print(f"{r['name']}\t{r['documents']} documents\t{r['chunks']} chunks")
    return 0


def _stderr_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def cmd_models(args: argparse.Namespace) -> int:
    from app.wiring import describe_models

    if args.fetch:  # downloading and assembling 1.1 GB takes minutes: say what happens
        logging.getLogger("app.model_files").setLevel(logging.INFO)
        logging.getLogger("app.model_files").addHandler(_stderr_handler())
        logging.getLogger("app.model_files").propagate = False
    info = describe_models(_settings(args), fetch=args.fetch)
    print(json.dumps(info, ensure_ascii=False, indent=None if args.json else 2))
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from app.keys import SCOPE_HELP, ApiKeyError, KeyStore

    store = KeyStore(_settings(args).keys_file)
    try:
        if args.action == "create":
            key, secret = store.create(args.name, args.scope or ["ask"], args.collection)
            if args.json:
                print(json.dumps({**key.public(), "key": secret}))
            else:
                print(secret)
                print(f"key '{key.name}' ({key.id}) with scopes {', '.join(key.scopes)} on "
                      f"collections {', '.join(key.collections)}: shown once, only its hash is "
                      "kept. Send it as 'Authorization: Bearer <key>'.", file=sys.stderr)
            return 0
        if args.action == "revoke":
            revoked = store.revoke(args.name)
            if not revoked:
                print(f"error: no live key named or numbered '{args.name}' (see `beleg keys "
                      "list`)", file=sys.stderr)
                return EXIT_INPUT
            print(f"revoked {', '.join(f'{k.name} ({k.id})' for k in revoked)}", file=sys.stderr)
            return 0
        keys = store.keys()
    except ApiKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    if args.json:
        print(json.dumps([k.public() for k in keys]))
        return 0
    if not keys:
        print("no keys; create one with `beleg keys create NAME --scope ask` (scopes: "
              + "; ".join(f"{s}: {h}" for s, h in SCOPE_HELP.items()) + ")", file=sys.stderr)
    for k in keys:
        state = "revoked" if k.revoked else "live"
        print(f"{k.id}\t{k.name}\t{','.join(k.scopes)}\t{','.join(k.collections)}\t{state}")
    return 0


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.api import create_app
    from app.keys import KeyStore
    from app.trusted_proxy import TrustedHeaders
    from app.wiring import build_engine

    settings = _settings(args)
    keys = KeyStore(settings.keys_file)
    trusted = TrustedHeaders(settings.trusted_user_header, settings.trusted_groups_header,
                             settings.trusted_proxy_list) if settings.trusted_user_header else None
    protected = bool(settings.api_token) or keys.configured() or trusted is not None
    if not protected and not _loopback(settings.host):
        print(f"error: beleg would serve {settings.host} to the network with no access "
              "control. Create a key first (`beleg keys create admin --scope admin`) or set "
              "BELEG_API_TOKEN; or bind to 127.0.0.1.", file=sys.stderr)
        return EXIT_USAGE
    if not protected:
        logger.info("no API keys and no token: open to anyone on this machine (%s only); "
                    "`beleg keys create` turns access control on", settings.host)
    if trusted is not None:
        logger.warning("trusting the header %s from %s to name the user: only the proxy may "
                       "reach this port, or anyone can claim to be anyone", trusted.user_header,
                       ", ".join(trusted.proxies))
    lock = None
    if not settings.chroma_url:  # CLI writes refuse while this server owns the embedded store
        from store.serve_lock import hold_for_serving

        lock = hold_for_serving(settings.data_dir, f"http://{settings.host}:{settings.port}")
    engine = build_engine(settings)
    if engine.llm is not None and hasattr(engine.llm, "warm_up"):
        engine.llm.warm_up()
    app = create_app(engine, api_token=settings.api_token, root_path=settings.root_path,
                     max_request_bytes=settings.max_request_bytes,
                     allowed_origins=settings.allowed_origin_list, keys=keys, trusted=trusted,
                     proxies=settings.trusted_proxy_list, examples=settings.example_list)
    logger.info("serving on http://%s:%d", settings.host, settings.port)
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="info",
                    access_log=False,  # app.observability logs each request as JSON
                    proxy_headers=False,  # applied in the app, from BELEG_TRUSTED_PROXIES
                    timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
    finally:
        if lock is not None:
            lock.close()
    return 0


def _collection_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--collection", metavar="NAME", default=None,
                        help=f"{what} (default: the default collection)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="beleg", description="Cited answers from your documents.")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="more logging: -v progress and model loads, -vv debug")
    sub = p.add_subparsers(dest="command", required=True)
    ing = sub.add_parser("ingest", help="add files or folders (.txt .md .html .pdf .docx)")
    ing.add_argument("paths", nargs="+", help="files or folders (folders are read recursively)")
    ing.add_argument("--json", action="store_true", help="print the ingest report as JSON")
    _collection_option(ing, "the collection to add to (created on first use)")
    ing.set_defaults(func=cmd_ingest)
    ask = sub.add_parser("ask", help="ask a question")
    ask.add_argument("question", help="the question, in German or English")
    ask.add_argument("--json", action="store_true", help="print the /api/ask object")
    ask.add_argument("--history", metavar="FILE",
                     help='earlier turns as JSON, [{"role": "user"|"assistant", "content": ...}] '
                          "(- reads standard input): the question may then be a follow-up")
    ask.add_argument("--mode", choices=["extractive", "local", "openai", "ollama"], default=None,
                     help="answer mode (default: BELEG_LLM); extractive quotes without a model")
    _collection_option(ask, "the collection whose documents answer")
    ask.set_defaults(func=cmd_ask)
    ch = sub.add_parser("chat", help="an interactive session: questions with their history")
    ch.add_argument("--mode", choices=["extractive", "local", "openai", "ollama"], default=None,
                    help="answer mode (default: BELEG_LLM); extractive quotes without a model")
    _collection_option(ch, "the collection whose documents answer")
    ch.set_defaults(func=cmd_chat)
    se = sub.add_parser("search", help="show the passages retrieval finds")
    se.add_argument("query", help="words or a question to search for")
    se.add_argument("-k", type=int, default=5, help="how many passages to show (default 5)")
    se.add_argument("--json", action="store_true", help="print the hits as JSON")
    _collection_option(se, "the collection to search")
    se.set_defaults(func=cmd_search)
    sv = sub.add_parser("serve", help="web chat and HTTP API")
    sv.add_argument("--host", help="address to bind (default BELEG_HOST, 127.0.0.1)")
    sv.add_argument("--port", type=int, help="port (default BELEG_PORT, 7860)")
    sv.set_defaults(func=cmd_serve)
    docs = sub.add_parser("documents", help="list or remove stored documents")
    docs.add_argument("action", nargs="?", choices=["list", "remove"], default="list",
                      help="list (default) or remove")
    docs.add_argument("sources", nargs="*", help="with remove: the document names to remove")
    docs.add_argument("--json", action="store_true", help="print the list as JSON")
    _collection_option(docs, "the collection to list or remove from")
    docs.set_defaults(func=cmd_documents)
    co = sub.add_parser("collections", help="list the collections with their sizes")
    co.add_argument("--json", action="store_true", help="print the list as JSON")
    co.set_defaults(func=cmd_collections)
    ke = sub.add_parser("keys", help="create, list or revoke API keys")
    ke.add_argument("action", nargs="?", choices=["list", "create", "revoke"], default="list",
                    help="list (default), create NAME, or revoke NAME|ID")
    ke.add_argument("name", nargs="?", default="", help="the key's name (or id, to revoke)")
    ke.add_argument("--scope", action="append", choices=["read", "ask", "write", "admin"],
                    help="what the new key may do; repeat for several (default: ask)")
    ke.add_argument("--collection", action="append", metavar="NAME",
                    help="a collection the new key may use; repeat for several, '*' for all "
                         "(default: the default collection only)")
    ke.add_argument("--json", action="store_true", help="print JSON (create: with the key)")
    ke.set_defaults(func=cmd_keys)
    mo = sub.add_parser("models", help="describe the embedding model and LLM the settings load")
    mo.add_argument("--json", action="store_true", help="print the description as JSON")
    mo.add_argument("--fetch", action="store_true", help="download/assemble the local model now")
    mo.set_defaults(func=cmd_models)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Quiet by default: warnings and errors only, whatever the libraries would say; a server
    # says what it loads and where it listens.
    quiet = logging.INFO if args.command == "serve" else logging.WARNING
    level = (quiet, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    for noisy in ("bm25s", "chromadb", "httpx", "httpcore", "urllib3", "sentence_transformers"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.verbose > 1 else logging.WARNING)
    if args.command == "keys" and args.action in ("create", "revoke") and not args.name:
        print(f"error: name the key to {args.action} (beleg keys {args.action} NAME)",
              file=sys.stderr)
        return EXIT_USAGE
    if args.command == "documents" and args.action == "remove" and not args.sources:
        print("error: name the documents to remove (see `beleg documents`)", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except Exception as exc:
        code = _exit_code(exc)
        if code is None:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return code


def _exit_code(exc: Exception) -> int | None:
    """The exit code for an error the user can act on (None: a bug, shown as a traceback).
    The error types are imported here, once something went wrong, so that light commands do
    not load the engine or the store to start."""
    from app.engine import QuestionError
    from app.llm import BackendUnavailable, ModelFileError
    from store.collection import EmbeddingModelMismatch, StoreError, UnknownCollection
    from store.naming import CollectionNameError

    if isinstance(exc, (SettingsError, EmbeddingModelMismatch, QuestionError,
                        CollectionNameError, UnknownCollection)):
        return EXIT_USAGE
    if isinstance(exc, (StoreError, BackendUnavailable, ModelFileError)):
        return EXIT_UNAVAILABLE
    return None


if __name__ == "__main__":
    sys.exit(main())

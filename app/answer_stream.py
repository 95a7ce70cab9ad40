"""The bridge from the engine's (blocking) answer events to an async HTTP stream, and back out."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio.to_thread

logger = logging.getLogger(__name__)


async def next_event(events: Iterator[Any]) -> Any | None:
    """The engine's next event, from a worker thread; None at the end. ``abandon_on_cancel``:
    a client that leaves does not wait for the next event (a model writing one long sentence
    sends none for a while)."""
    return await anyio.to_thread.run_sync(next, events, None, abandon_on_cancel=True)


def abandon(events: Iterator[Any], cancel: threading.Event) -> None:
    """The client left mid-answer: tell the engine to stop the model, and close the answer in
    the background once the engine thread is out of it, which frees its answer slot."""
    cancel.set()
    threading.Thread(target=close_when_idle, args=(events,), daemon=True,
                     name="beleg-close-answer").start()


def close_when_idle(events: Iterator[Any], wait_s: float = 30.0) -> None:
    """Closes an answer generator a gone client left behind. While the engine thread is still
    inside it, close() raises ValueError: retry briefly."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            events.close()  # type: ignore[attr-defined]
            return
        except ValueError:
            if time.monotonic() > deadline:
                logger.warning("an abandoned answer did not end within %.0f s", wait_s)
                return
            time.sleep(0.05)

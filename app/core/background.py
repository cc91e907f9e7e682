"""A daemon thread that loops until asked to stop, for the API process's cache watcher and log flusher."""

from __future__ import annotations

import threading
from collections.abc import Callable


class BackgroundLoop:
    """Runs `target(stopping)` on a daemon thread; `target` returns when `stopping` is set.

    `start` is idempotent and thread-safe; `stop` sets the event and joins, so it can be restarted.
    """

    def __init__(self, name: str, target: Callable[[threading.Event], None]) -> None:
        self.name = name
        self._target = target
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self.stopping.clear()
                self._thread = threading.Thread(
                    target=self._target, args=(self.stopping,), name=self.name, daemon=True
                )
                self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=timeout)

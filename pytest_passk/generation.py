"""The generate stage: a background thread turns a round's requests into samples with the backend
and hands each finished request to the controller as soon as it is complete."""
from __future__ import annotations

import queue
import threading
import time

from pytest_passk.backends import Backend, Request

Finished = tuple[Request, list[str]]


class Generation:
    """Generates one round of requests at a time, in the background, with one backend.

    The engine is prepared (loaded, connected) before the first round; after the last round it is
    closed at once, so its cores and memory go to execution while candidates still run.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.load_seconds = 0.0  #: preparing the engine, before the first sample
        self.generate_seconds = 0.0  #: generating, summed over rounds
        self.requested = 0  #: samples asked for, over all rounds
        self.done = True  #: the current round has handed over everything
        self._prepared = False
        self._queue: queue.Queue[Finished | BaseException | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self, requests: list[Request], last: bool) -> None:
        """Begin generating ``requests``; ``last`` says no round follows."""
        if not requests:
            return
        assert self.done, "a round started before the previous one finished"
        self.done = False
        self.requested += sum(r.n for r in requests)
        self._thread = threading.Thread(target=self._work, args=(requests, last), name="passk-generate",
                                        daemon=True)
        self._thread.start()

    def _work(self, requests: list[Request], last: bool) -> None:
        try:
            if not self._prepared:
                t0 = time.monotonic()
                self.backend.prepare(requests)
                self.load_seconds = time.monotonic() - t0
                self._prepared = True
            t0 = time.monotonic()
            for item in self.backend.generate(requests):
                self._queue.put(item)
            self.generate_seconds += time.monotonic() - t0
            self._queue.put(None)
            if last:
                self.backend.close()
        except BaseException as exc:  # re-raised in the controller's thread by poll()
            self._queue.put(exc)

    def poll(self, timeout: float) -> list[Finished]:
        """The requests finished since the last call, waiting up to ``timeout`` s for the first."""
        finished: list[Finished] = []
        wait: float | None = timeout
        while not self.done:
            try:
                item = self._queue.get(timeout=wait) if wait else self._queue.get_nowait()
            except queue.Empty:
                break
            wait = None
            if item is None:
                self.done = True
            elif isinstance(item, BaseException):
                self.done = True
                raise item
            else:
                finished.append(item)
        return finished

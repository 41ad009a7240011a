"""Client CPU time: the process's CPU time minus what the in-process engine spent.

Everything runs in one process, so ``time.process_time()`` around a command also
counts moto's work answering its requests. :class:`EngineCpu` times moto's request
handler (``BotocoreStubber.process_request``, where a request leaves botocore and
comes back as a response) so that it can be subtracted: what is left is the client's
own CPU, i.e. cqrs (or the raw script), botocore's serialization and response
parsing and, here, the local stream follower's reading. The HTTP and TLS work of a
real client is not in it (there is no network). Single-threaded use.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class EngineCpu:
    """CPU seconds spent inside the in-process engine while active."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._restore: Callable[[], None] | None = None

    def __enter__(self) -> EngineCpu:
        from moto.core.botocore_stubber import BotocoreStubber

        original = BotocoreStubber.process_request
        probe = self

        def timed(stubber: Any, request: Any) -> Any:
            start = time.process_time()
            try:
                return original(stubber, request)
            finally:
                probe.seconds += time.process_time() - start

        BotocoreStubber.process_request = timed  # type: ignore[method-assign,assignment]
        self._restore = lambda: setattr(BotocoreStubber, "process_request", original)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._restore is not None:
            self._restore()
            self._restore = None


class ClientCpu:
    """Client CPU of a phase: process CPU time minus engine time minus probe overheads."""

    def __init__(self, engine: EngineCpu, overheads: Callable[[], float] = lambda: 0.0) -> None:
        self._engine = engine
        self._overheads = overheads
        self.seconds = 0.0

    def __enter__(self) -> ClientCpu:
        self._start = (time.process_time(), self._engine.seconds, self._overheads())
        return self

    def __exit__(self, *exc: object) -> None:
        cpu, engine, overhead = self._start
        self.seconds += (
            (time.process_time() - cpu)
            - (self._engine.seconds - engine)
            - (self._overheads() - overhead)
        )


class CallCpu:
    """Client CPU inside some requests (botocore's work on them, without the engine's).

    ``targets``: ``(client, operations)`` pairs; ``operations`` ``None`` means all of
    the client's. Timed from ``before-call`` (the request is serialized) to
    ``after-call`` (the response is parsed). ``overhead`` is the hooks' own time.
    """

    def __init__(self, engine: EngineCpu, *targets: tuple[Any, frozenset[str] | None]) -> None:
        self._engine = engine
        self._targets = targets
        self._started: list[tuple[float, float]] = []
        self.seconds = 0.0
        self.overhead = 0.0

    def _wanted(self, client: Any, model: Any) -> bool:
        return any(c is client and (o is None or model.name in o) for c, o in self._targets)

    def _before(self, model: Any, **_: Any) -> None:
        self._started.append((time.process_time(), self._engine.seconds))

    def _after(self, model: Any, **_: Any) -> None:
        cpu, engine = self._started.pop()
        now = time.process_time()
        self.seconds += (now - cpu) - (self._engine.seconds - engine)
        self.overhead += time.process_time() - now

    def __enter__(self) -> CallCpu:
        for client, operations in self._targets:
            for name in operations or ("*",):
                client.meta.events.register(f"before-call.*.{name}", self._before)
                client.meta.events.register(f"after-call.*.{name}", self._after)
        return self

    def __exit__(self, *exc: object) -> None:
        for client, operations in self._targets:
            for name in operations or ("*",):
                client.meta.events.unregister(f"before-call.*.{name}", self._before)
                client.meta.events.unregister(f"after-call.*.{name}", self._after)

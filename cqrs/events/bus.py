"""The in-process event bus: handlers subscribe by event type, Lambda events are dispatched.

```python
bus = app.events

@bus.subscribe(SQSMessage)
def on_message(message: SQSMessage) -> None: ...

@bus.on(CommandStatusEvent)
class Audit:                       # built by the app's injector: may ask for services
    @injector.inject
    def __init__(self, app: Cqrs) -> None: ...
    def handle(self, event: CommandStatusEvent) -> None: ...

def handler(event, context):       # an SQS-triggered Lambda
    return bus.dispatch_lambda(event)
```

A handler receives events of its type and of every subclass (subscribing to
:class:`~cqrs.events.types.Event` receives everything). Handlers of the most specific
type run first, in subscription order. Batches are dispatched record by record;
a handler that raises fails its record, which Lambda's partial batch response
reports (SQS: by ``messageId``, DynamoDB streams: by sequence number).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from ..core.errors import ProgrammingError
from .batch import BatchResult, PartialBatchResponse, process_batch
from .types import Event, EventBatch, parse_event

if TYPE_CHECKING:
    from injector import Injector

logger = logging.getLogger("cqrs.events")

#: A handler: a function taking the event, or a class whose instances have
#: ``handle(event)`` (or are callable).
H = TypeVar("H", bound=Callable[..., object])


class _Subscription:
    """One subscribed handler; a class is instantiated on first use and kept."""

    def __init__(self, target: Callable[..., object], build: Callable[[type], object]) -> None:
        self.target = target
        self._build = build
        self._call: Callable[[Event], object] | None = None if isinstance(target, type) else target
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> object:
        call = self._call
        if call is None:
            with self._lock:
                if self._call is None:
                    assert isinstance(self.target, type)
                    self._call = _entry_point(self._build(self.target))
                call = self._call
        return call(event)


def _entry_point(instance: object) -> Callable[[Event], object]:
    """A handler instance's ``handle`` method, or the instance itself when it is callable."""
    handle: object = getattr(instance, "handle", None)
    if callable(handle):
        return handle
    if callable(instance):
        return instance
    raise ProgrammingError(f"handler {instance!r} has no handle(event) and is not callable")


def _check_handler(target: object) -> None:
    if isinstance(target, type):
        if not callable(getattr(target, "handle", None)) and not any(
            "__call__" in vars(k) for k in target.__mro__[:-1]
        ):
            raise ProgrammingError(
                f"handler class {target.__qualname__} needs a handle(event) or __call__ method"
            )
    elif not callable(target):
        raise ProgrammingError(f"handler {target!r} is not callable")


@dataclass(frozen=True)
class DispatchReport:
    """The outcome of dispatching one Lambda event: per record, how many handlers ran
    (``result``; 0: nobody subscribed), or why it failed."""

    result: BatchResult[Event, int]

    @property
    def received(self) -> int:
        """The records of the event (1 for an event that is not a batch)."""
        return len(self.result.results)

    @property
    def handled(self) -> int:
        """Records delivered to at least one handler, without error."""
        return sum(1 for r in self.result.succeeded if r.value)

    @property
    def ignored(self) -> int:
        """Records nobody subscribed to."""
        return sum(1 for r in self.result.succeeded if not r.value)

    @property
    def failed(self) -> list[str]:
        """The batch item ids reported as failed (in an ordered batch, with those after)."""
        return self.result.failed_ids

    @property
    def errors(self) -> list[Exception]:
        """The handlers' exceptions."""
        return self.result.errors

    def response(self) -> PartialBatchResponse:
        """Lambda's partial batch response (``batchItemFailures``)."""
        return self.result.response()


class EventBus:
    """Routes events to the handlers subscribed to their type or a base type.

    ``injector`` builds handler classes (``injector.get(cls)``); without one,
    classes are called with no arguments.
    """

    def __init__(self, injector: Injector | None = None) -> None:
        self._injector = injector
        self._subscriptions: dict[type[Event], list[_Subscription]] = {}
        self._resolved: dict[type[Event], tuple[_Subscription, ...]] = {}

    # -- subscribing ------------------------------------------------------------------

    def subscribe(self, *event_types: type[Event]) -> Callable[[H], H]:
        """Decorator: subscribe a function or class to ``event_types`` (and their subclasses).

        Returns the handler unchanged. Batch types (``SQSEvent`` …) cannot be
        subscribed to: subscribe to their record type (``SQSMessage`` …).
        """
        if not event_types:
            raise ProgrammingError("subscribe() needs at least one event type")
        for event_type in event_types:
            if not (isinstance(event_type, type) and issubclass(event_type, Event)):
                raise ProgrammingError(f"{event_type!r} is not an Event subclass")
            if issubclass(event_type, EventBatch):
                raise ProgrammingError(
                    f"cannot subscribe to the batch type {event_type.__name__}: batches are "
                    "dispatched record by record, subscribe to the record type"
                )

        def decorator(handler: H) -> H:
            _check_handler(handler)
            subscription = _Subscription(handler, self._build)
            for event_type in event_types:
                self._subscriptions.setdefault(event_type, []).append(subscription)
            self._resolved.clear()
            return handler

        return decorator

    def on(self, *event_types: type[Event]) -> Callable[[H], H]:
        """Alias of :meth:`subscribe`: ``@app.events.on(CommandStatusEvent)``."""
        return self.subscribe(*event_types)

    def has_subscribers(self, event_type: type[Event]) -> bool:
        """Whether an event of ``event_type`` would reach any handler (cheap: cached)."""
        return bool(self._handlers(event_type))

    def _build(self, cls: type) -> object:
        return self._injector.get(cls) if self._injector is not None else cls()

    def _handlers(self, event_type: type[Event]) -> tuple[_Subscription, ...]:
        found = self._resolved.get(event_type)
        if found is None:
            seen: dict[int, _Subscription] = {}
            for base in event_type.__mro__:
                for s in self._subscriptions.get(base, ()):
                    seen.setdefault(id(s), s)
            found = self._resolved[event_type] = tuple(seen.values())
        return found

    # -- delivering -------------------------------------------------------------------

    def publish(self, event: Event) -> int:
        """Deliver an in-process event to its handlers; returns how many ran.

        A handler's exception propagates (handlers after it do not run).
        """
        handlers = self._handlers(type(event))
        for handler in handlers:
            handler(event)
        return len(handlers)

    def dispatch(self, event: Event) -> DispatchReport:
        """Deliver a parsed event; a batch is delivered record by record.

        A record with a batch item id (SQS message, stream record) whose handler
        raises is reported in ``failed``; in an ordered batch (DynamoDB stream,
        FIFO queue) dispatch stops there and the remaining records are reported
        too. Other events' exceptions propagate.
        """
        records: list[Event] = list(event.records) if isinstance(event, EventBatch) else [event]
        ordered = isinstance(event, EventBatch) and event.ordered
        result = process_batch(records, self.publish, item_id=_batch_item_id, ordered=ordered)
        for failure in result.failures:
            logger.error(
                "handler failed on %s %s",
                type(failure.item).__name__,
                failure.item_id,
                exc_info=failure.error,
            )
        return DispatchReport(result)

    def dispatch_lambda(
        self, raw: Mapping[str, object] | Event
    ) -> PartialBatchResponse | dict[str, object]:
        """Parse a raw Lambda event, dispatch it, and return Lambda's response.

        For SQS and DynamoDB stream batches that is the partial batch response
        (``{"batchItemFailures": [{"itemIdentifier": ...}]}``; enable
        ``ReportBatchItemFailures``); for SNS and EventBridge it is ``{}`` and a
        handler's exception propagates, so Lambda retries the invocation.
        Raises :class:`~cqrs.core.errors.InvalidEventError` for a malformed event.
        """
        event = parse_event(raw)
        report = self.dispatch(event)
        if isinstance(event, EventBatch) and event.records[0].batch_item_id is not None:
            return report.response()
        return {}


def _batch_item_id(event: Event) -> str | None:
    return event.batch_item_id

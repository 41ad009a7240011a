"""Fault injection for DynamoDB clients and Lambda-like stream delivery (pytest kit).

:class:`FaultInjector` makes chosen calls of a boto3 client fail, either *before*
the request is sent (nothing happened) or *after* it succeeded (it happened, but
the caller sees an error), with a throttle (``ClientError`` ThrottlingException)
or a timeout (``ReadTimeoutError``). Faults are raised from botocore event
hooks, so the client's own retries do not hide them.

:func:`deliver` feeds stream records to ``app.process_event`` the way Lambda
can: in batches, redelivering whole batches, with duplicates and reordered
records, and on a partial batch failure retrying from the first failed record,
until every batch has gone through without failure.

Example::

    schedule = [Fault("UpdateItem", 1, "after", "timeout")]
    with FaultInjector(app.clients.dynamodb, schedule) as faults:
        deliver(app, records, DeliveryPlan(batch_size=3))
    assert faults.injected
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from .app import Cqrs

F = TypeVar("F", bound=Callable[..., Any])

When = Literal["before", "after"]
Kind = Literal["throttle", "timeout"]


@dataclass(frozen=True)
class Fault:
    """Fail the ``nth`` call (1-based) of ``operation`` (e.g. ``"UpdateItem"``)."""

    operation: str
    nth: int
    when: When = "before"
    kind: Kind = "throttle"


def make_error(fault: Fault) -> Exception:
    """The botocore exception a fault raises."""
    from botocore.exceptions import ClientError, ReadTimeoutError

    if fault.kind == "throttle":
        response: Any = {
            "Error": {"Code": "ThrottlingException", "Message": f"injected: {fault}"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        return ClientError(response, fault.operation)
    return ReadTimeoutError(endpoint_url=f"injected://{fault.operation}#{fault.nth}")


class FaultInjector:
    """Raise scheduled faults from a boto3 client's ``before-call``/``after-call`` hooks.

    Calls are counted per operation from when the injector is installed (``with``
    or :meth:`install`). ``injected`` lists the faults that fired, ``calls`` the
    count per operation.
    """

    def __init__(self, client: Any, schedule: Iterable[Fault] = ()) -> None:
        self._client = client
        self.schedule = list(schedule)
        self.calls: Counter[str] = Counter()
        self.injected: list[Fault] = []
        self._installed = False

    # -- hooks ----------------------------------------------------------------------

    def _match(self, operation: str, nth: int, when: When) -> Fault | None:
        for fault in self.schedule:
            if fault.operation == operation and fault.nth == nth and fault.when == when:
                return fault
        return None

    def _before(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1
        fault = self._match(model.name, self.calls[model.name], "before")
        if fault is not None:
            self.injected.append(fault)
            raise make_error(fault)

    def _after(self, model: Any, http_response: Any = None, parsed: Any = None, **_: Any) -> None:
        status = getattr(http_response, "status_code", 200)
        error = isinstance(parsed, dict) and "Error" in parsed and parsed["Error"].get("Code")
        if status >= 300 or error:  # the call failed anyway: nothing succeeded to hide
            return
        fault = self._match(model.name, self.calls[model.name], "after")
        if fault is not None:
            self.injected.append(fault)
            raise make_error(fault)

    # -- lifecycle --------------------------------------------------------------------

    def install(self) -> FaultInjector:
        """Register the hooks (idempotent)."""
        if not self._installed:
            events = self._client.meta.events
            events.register("before-call.dynamodb.*", self._before)
            events.register("after-call.dynamodb.*", self._after)
            self._installed = True
        return self

    def uninstall(self) -> None:
        """Unregister the hooks."""
        if self._installed:
            events = self._client.meta.events
            events.unregister("before-call.dynamodb.*", self._before)
            events.unregister("after-call.dynamodb.*", self._after)
            self._installed = False

    def __enter__(self) -> FaultInjector:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    @property
    def pending(self) -> list[Fault]:
        """Scheduled faults that have not fired (their call never happened)."""
        return [f for f in self.schedule if f not in self.injected]


# -- delivery -------------------------------------------------------------------------


@dataclass
class DeliveryPlan:
    """How records reach the handler.

    ``order`` is a permutation of record indexes (default: as given); ``duplicates``
    are indexes of records delivered once more, inserted at ``(position, index)``;
    ``redeliver`` lists batch indexes delivered again (whole) after they succeeded.
    """

    batch_size: int = 100
    order: Sequence[int] | None = None
    duplicates: Sequence[tuple[int, int]] = ()
    redeliver: Sequence[int] = ()
    max_attempts: int = 20

    def batches(self, records: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """The batches this plan delivers, before retries."""
        order = list(self.order) if self.order is not None else list(range(len(records)))
        sequence = [records[i] for i in order]
        for position, index in self.duplicates:
            sequence.insert(min(position, len(sequence)), records[index])
        size = max(1, self.batch_size)
        batches = [sequence[i : i + size] for i in range(0, len(sequence), size)]
        for i in self.redeliver:
            if 0 <= i < len(batches):
                batches.insert(i + 1, list(batches[i]))
        return batches


@dataclass
class DeliveryLog:
    """What :func:`deliver` did."""

    invocations: int = 0
    partial_failures: int = 0
    raised: int = 0
    errors: list[BaseException] = field(default_factory=list)


class DeliveryError(AssertionError):
    """A batch still failed after ``max_attempts``."""


def deliver(app: Cqrs, records: Sequence[dict[str, Any]], plan: DeliveryPlan) -> DeliveryLog:
    """Deliver ``records`` to ``app.process_event`` per ``plan``; return once all are applied.

    A batch is retried, like Lambda with ``ReportBatchItemFailures``, from the
    first record whose sequence number was reported failed (the records before
    it are checkpointed); if the handler raises, the whole batch is retried.
    """
    log = DeliveryLog()
    for batch in plan.batches(records):
        pending = list(batch)
        for _ in range(plan.max_attempts):
            log.invocations += 1
            try:
                report = app.process_event({"Records": pending})
            except Exception as exc:  # Lambda retries the whole batch
                log.raised += 1
                log.errors.append(exc)
                continue
            if not report.failed:
                break
            log.partial_failures += 1
            log.errors.extend(report.errors)
            failed = set(report.failed)
            first = next(
                (i for i, r in enumerate(pending) if r["dynamodb"]["SequenceNumber"] in failed),
                None,
            )
            if first is None:
                raise DeliveryError(f"reported failures not in the batch: {sorted(failed)}")
            pending = pending[first:]
        else:
            raise DeliveryError(
                f"batch still failing after {plan.max_attempts} attempts: {log.errors[-3:]!r}"
            )
    return log


def fault_search(examples: int, seed: int) -> Callable[[F], F]:
    """Hypothesis settings for a search over fault schedules (decorate the ``@given`` test).

    A fixed ``seed`` keeps CI stable; no shrinking (a failing example replays a whole
    delivery, slow to shrink), no example database, health checks that only flag slowness
    and function-scoped fixtures (the world is reset per example) turned off.
    """
    import hypothesis

    def decorate(test: F) -> F:
        configured = hypothesis.settings(
            max_examples=examples,
            deadline=None,
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.reuse, hypothesis.Phase.generate],
            suppress_health_check=[
                hypothesis.HealthCheck.too_slow,
                hypothesis.HealthCheck.function_scoped_fixture,
            ],
            database=None,
        )(test)
        return hypothesis.seed(seed)(configured)

    return decorate

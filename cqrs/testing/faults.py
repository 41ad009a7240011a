"""Fault injection for DynamoDB clients and Lambda-like stream delivery (pytest kit).

:class:`FaultInjector` makes chosen calls of a boto3 client fail, either *before*
the request is sent (nothing happened) or *after* it succeeded (it happened, but
the caller sees an error). Faults are raised from botocore event hooks, so the
client's own retries do not hide them. Each :data:`Kind` raises what DynamoDB (or
the network) really sends:

- transient: a throttle (``ThrottlingException``, 400), a timeout (botocore's
  ``ReadTimeoutError``), a server error (``InternalServerError``, 500);
- permanent: ``"validation"`` (``ValidationException``, 400), ``"item-too-large"``
  (``ValidationException`` "Item size has exceeded the maximum allowed size", 400),
  ``"access-denied"`` (``AccessDeniedException``, 400), ``"unknown"`` (a code nobody
  lists, ``InternalWidgetException``, 400). DynamoDB refuses such a request before
  applying it, so permanent faults only exist ``when="before"``.

A :class:`Fault` fails the ``nth`` call of an operation (and the ``times - 1`` calls
after it); with ``target`` only calls whose request carries that string value (a
table name, a key) count.

:func:`deliver` feeds stream records to ``app.process_event`` the way Lambda
can: in batches, redelivering whole batches, with duplicates and reordered
records, and on a partial batch failure retrying from the first failed record,
until every batch has gone through without failure. A :class:`DeliveryPlan` can
also slip in malformed records (:data:`Corruption`): corrupted copies of real
records, which ``process_event`` must reject (acknowledge and keep), never raise
on nor report failed.

Example::

    schedule = [Fault("UpdateItem", 1, "after", "timeout"),
                Fault("BatchWriteItem", 1, kind="item-too-large", target="ORDER#acme")]
    plan = DeliveryPlan(batch_size=3, malformed=[(0, 2, "version-text")])
    with FaultInjector(app.clients.dynamodb, schedule) as faults:
        deliver(app, records, plan)
    assert faults.injected
"""

from __future__ import annotations

import copy
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args

if TYPE_CHECKING:
    from ..app import Cqrs
    from ..sync.projection import EntityKey

F = TypeVar("F", bound=Callable[..., Any])

When = Literal["before", "after"]
Kind = Literal[
    "throttle",
    "timeout",
    "server-error",
    "validation",
    "item-too-large",
    "access-denied",
    "unknown",
]
#: Every fault kind.
KINDS: tuple[Kind, ...] = get_args(Kind)
#: Kinds a retry can cure (the framework raises a ``TransientError`` for them).
TRANSIENT_KINDS: tuple[Kind, ...] = ("throttle", "timeout", "server-error")
#: Kinds no retry cures; DynamoDB sends them instead of applying the request (``before`` only).
PERMANENT_KINDS: tuple[Kind, ...] = ("validation", "item-too-large", "access-denied", "unknown")

#: kind → (AWS error code, message, HTTP status) of the ``ClientError`` DynamoDB sends.
ERROR_RESPONSES: Mapping[str, tuple[str, str, int]] = {
    "throttle": (
        "ThrottlingException",
        "Rate of requests exceeds the allowed throughput.",
        400,
    ),
    "server-error": ("InternalServerError", "Internal server error", 500),
    "validation": (
        "ValidationException",
        "One or more parameter values were invalid: "
        "An AttributeValue may not contain an empty string",
        400,
    ),
    "item-too-large": (
        "ValidationException",
        "Item size has exceeded the maximum allowed size",
        400,
    ),
    "access-denied": (
        "AccessDeniedException",
        "User: arn:aws:sts::123456789012:assumed-role/app/injected is not authorized to "
        "perform: dynamodb:{operation} on resource: arn:aws:dynamodb:*:123456789012:table/*",
        400,
    ),
    "unknown": ("InternalWidgetException", "The widget failed in an unlisted way", 400),
}


@dataclass(frozen=True)
class Fault:
    """Fail the ``nth`` call (1-based) of ``operation`` (e.g. ``"UpdateItem"``), and the
    ``times - 1`` calls after it.

    ``target``: only calls whose request carries a string value equal to it (a table
    name, a ``pk``) are counted and failed; ``None`` counts every call of ``operation``.
    Raises :class:`ValueError` for an unknown ``kind`` or ``when``, for ``nth`` or
    ``times`` below 1, and for a permanent kind ``after`` the call (DynamoDB never
    applies a request and then says it was invalid).
    """

    operation: str
    nth: int
    when: When = "before"
    kind: Kind = "throttle"
    target: str | None = None
    times: int = 1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(KINDS)}")
        if self.when not in ("before", "after"):
            raise ValueError(f"when must be 'before' or 'after', got {self.when!r}")
        if self.nth < 1 or self.times < 1:
            raise ValueError(f"nth and times must be at least 1: {self}")
        if self.permanent and self.when == "after":
            raise ValueError(
                f"a {self.kind!r} fault is a permanent error: DynamoDB refuses such a request "
                f"instead of applying it, so it cannot come after the call took effect; "
                f"use when='before' ({self})"
            )

    @property
    def permanent(self) -> bool:
        """Whether no retry cures this fault (the framework raises a non-retryable error)."""
        return self.kind in PERMANENT_KINDS

    def covers(self, call: int) -> bool:
        """Whether the ``call``-th counted call fails."""
        return self.nth <= call < self.nth + self.times


def make_error(fault: Fault, call: int | None = None) -> Exception:
    """The botocore exception a fault raises (``call``: which call, for the message)."""
    from botocore.exceptions import ClientError, ReadTimeoutError

    where = f"{fault.operation}#{fault.nth if call is None else call}"
    if fault.kind == "timeout":
        return ReadTimeoutError(endpoint_url=f"injected://{where}")
    code, message, status = ERROR_RESPONSES[fault.kind]
    response: Any = {
        "Error": {
            "Code": code,
            "Message": f"{message.format(operation=fault.operation)} (injected: {where})",
        },
        "ResponseMetadata": {
            "HTTPStatusCode": status,
            "RequestId": "INJECTED",
            "HTTPHeaders": {"x-amzn-requestid": "INJECTED"},
            "RetryAttempts": 0,
        },
    }
    return ClientError(response, fault.operation)


#: A fault due on a call, with the call's number (as the fault counts calls).
Due = tuple[Fault, int]

_AFTER = "cqrs_fault_after"  # the fault due after this call, kept in botocore's request context


class FaultInjector:
    """Raise scheduled faults from a boto3 client's ``before-call``/``after-call`` hooks.

    Calls are counted per operation from when the injector is installed (``with``
    or :meth:`install`); a targeted fault counts only the calls it targets.
    ``injected`` lists the faults that fired (once per firing), ``calls`` the
    count per operation.
    """

    def __init__(self, client: Any, schedule: Iterable[Fault] = ()) -> None:
        self._client = client
        self.schedule = list(schedule)
        self.calls: Counter[str] = Counter()
        self.injected: list[Fault] = []
        self._targeted: Counter[Fault] = Counter()  # calls each targeted fault counted
        self._lock = threading.Lock()
        self._installed = False

    # -- hooks ----------------------------------------------------------------------

    def _due(self, operation: str, body: str) -> tuple[Due | None, Due | None]:
        """Count this call; the faults due before and after it, with the call number."""
        self.calls[operation] += 1
        before: Due | None = None
        after: Due | None = None
        for fault in self.schedule:
            if fault.operation != operation:
                continue
            if fault.target is None:
                call = self.calls[operation]
            elif json.dumps(fault.target) in body:
                self._targeted[fault] += 1
                call = self._targeted[fault]
            else:
                continue
            if not fault.covers(call):
                continue
            if fault.when == "before" and before is None:
                before = (fault, call)
            elif fault.when == "after" and after is None:
                after = (fault, call)
        return before, after

    def _before(self, model: Any, params: Any = None, context: Any = None, **_: Any) -> None:
        body = params.get("body", b"") if isinstance(params, Mapping) else b""
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        with self._lock:
            before, after = self._due(model.name, text)
            if before is not None:
                self.injected.append(before[0])
        if before is not None:
            raise make_error(*before)
        if after is not None and isinstance(context, dict):
            context[_AFTER] = after

    def _after(
        self,
        model: Any,
        http_response: Any = None,
        parsed: Any = None,
        context: Any = None,
        **_: Any,
    ) -> None:
        due = context.pop(_AFTER, None) if isinstance(context, dict) else None
        if due is None:
            return
        status = getattr(http_response, "status_code", 200)
        error = isinstance(parsed, dict) and "Error" in parsed and parsed["Error"].get("Code")
        if status >= 300 or error:  # the call failed anyway: nothing succeeded to hide
            return
        with self._lock:
            self.injected.append(due[0])
        raise make_error(*due)

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
        """Scheduled faults that have not fired as often as scheduled (their calls never
        happened, or failed on their own)."""
        fired = Counter(self.injected)
        return [f for f in self.schedule if fired[f] < f.times]

    @property
    def permanent_fired(self) -> int:
        """How many permanent faults fired."""
        return sum(1 for f in self.injected if f.permanent)


# -- malformed records ------------------------------------------------------------------

Corruption = Literal[
    "no-pk",
    "version-text",
    "version-disagrees",
    "sk-without-version",
    "no-new-image",
    "not-dynamodb-json",
    "unknown-event",
    "no-sequence-number",
    "not-a-mapping",
]
#: Every way :func:`corrupt` can break a record.
CORRUPTIONS: tuple[Corruption, ...] = get_args(Corruption)


def corrupt(record: Mapping[str, Any], corruption: Corruption) -> Any:
    """A malformed copy of a real stream record (``record`` is left untouched).

    - ``no-pk``: the new image has no ``pk``;
    - ``version-text``: ``version`` is ``{"S": "one"}``;
    - ``version-disagrees``: ``version`` is not the sk's ``@<version>``;
    - ``sk-without-version``: the sk (image and keys) lost its ``@<version>``;
    - ``no-new-image``: an INSERT without ``NewImage``;
    - ``not-dynamodb-json``: the image holds plain values, not attribute values;
    - ``unknown-event``: ``eventName`` is ``UPSERT``;
    - ``no-sequence-number``: ``dynamodb.SequenceNumber`` is gone;
    - ``not-a-mapping``: the record is a string.

    Each copy gets a sequence number of its own (the original's, plus two digits for the
    corruption), so the same corruption of the same record is the same record
    (delivered twice: kept once), and different ones are different records.
    """
    if corruption not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {corruption!r}; one of {', '.join(CORRUPTIONS)}")
    bad = copy.deepcopy(dict(record))
    ddb = bad["dynamodb"]
    seq = f"{ddb['SequenceNumber']}{CORRUPTIONS.index(corruption) + 1:02d}"
    ddb["SequenceNumber"] = seq
    image = ddb.get("NewImage", {})
    if corruption == "no-pk":
        image.pop("pk", None)
    elif corruption == "version-text":
        image["version"] = {"S": "one"}
    elif corruption == "version-disagrees":
        image["version"] = {"N": str(int(image["version"]["N"]) + 7)}
    elif corruption == "sk-without-version":
        base = image["sk"]["S"].rsplit("@", 1)[0]
        image["sk"] = {"S": base}
        ddb.setdefault("Keys", {})["sk"] = {"S": base}
    elif corruption == "no-new-image":
        ddb.pop("NewImage", None)
    elif corruption == "not-dynamodb-json":
        ddb["NewImage"] = {k: _plain(v) for k, v in image.items()}
    elif corruption == "unknown-event":
        bad["eventName"] = "UPSERT"
    elif corruption == "no-sequence-number":
        del ddb["SequenceNumber"]
    else:  # not-a-mapping
        return f"not a stream record: {bad.get('eventSourceARN')} #{seq}"
    return bad


def _plain(value: Any) -> Any:
    """An attribute value's payload without its type (``{"S": "x"}`` → ``"x"``)."""
    if isinstance(value, Mapping) and len(value) == 1:
        return next(iter(value.values()))
    return value


def sequence_number(record: Any) -> str | None:
    """A delivered record's ``dynamodb.SequenceNumber`` (``None`` if it has none)."""
    ddb = record.get("dynamodb") if isinstance(record, Mapping) else None
    seq = ddb.get("SequenceNumber") if isinstance(ddb, Mapping) else None
    return seq if isinstance(seq, str) else None


# -- delivery -------------------------------------------------------------------------


@dataclass
class DeliveryPlan:
    """How records reach the handler.

    ``order`` is a permutation of record indexes (default: as given); ``duplicates``
    are indexes of records delivered once more, inserted at ``(position, index)``;
    ``malformed`` inserts :func:`corrupt` copies at ``(position, index, corruption)``
    (after the duplicates); ``redeliver`` lists batch indexes delivered again (whole)
    after they succeeded.
    """

    batch_size: int = 100
    order: Sequence[int] | None = None
    duplicates: Sequence[tuple[int, int]] = ()
    redeliver: Sequence[int] = ()
    max_attempts: int = 20
    malformed: Sequence[tuple[int, int, Corruption]] = ()

    def planned(self, records: Sequence[Mapping[str, Any]]) -> list[list[tuple[Any, bool]]]:
        """The batches this plan delivers, before retries: ``(record, is it malformed)``."""
        order = list(self.order) if self.order is not None else list(range(len(records)))
        sequence: list[tuple[Any, bool]] = [(records[i], False) for i in order]
        for position, index in self.duplicates:
            sequence.insert(min(position, len(sequence)), (records[index], False))
        for position, index, corruption in self.malformed:
            bad = corrupt(records[index], corruption)
            sequence.insert(min(position, len(sequence)), (bad, True))
        size = max(1, self.batch_size)
        batches = [sequence[i : i + size] for i in range(0, len(sequence), size)]
        for i in self.redeliver:
            if 0 <= i < len(batches):
                batches.insert(i + 1, list(batches[i]))
        return batches

    def batches(self, records: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
        """The batches this plan delivers, before retries."""
        return [[r for r, _ in batch] for batch in self.planned(records)]

    def malformed_records(self, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        """The distinct malformed records this plan delivers (each must be kept once)."""
        out: list[Any] = []
        for _, index, corruption in self.malformed:
            bad = corrupt(records[index], corruption)
            if bad not in out:
                out.append(bad)
        return out


@dataclass
class DeliveryLog:
    """What :func:`deliver` did."""

    invocations: int = 0
    partial_failures: int = 0
    raised: int = 0
    errors: list[BaseException] = field(default_factory=list)
    malformed_delivered: int = 0  # malformed records handed to process_event, retries included
    malformed_retried: int = 0  # reported failed because keeping them failed transiently
    rejected: int = 0  # records the synchronizer rejected, over every invocation
    stuck: list[EntityKey] = field(default_factory=list)  # acknowledged while stuck


class DeliveryError(AssertionError):
    """A batch still failed after ``max_attempts``, or a malformed record made
    ``process_event`` raise or was reported failed without a transient cause."""


def deliver(app: Cqrs, records: Sequence[Mapping[str, Any]], plan: DeliveryPlan) -> DeliveryLog:
    """Deliver ``records`` to ``app.process_event`` per ``plan``; return once all are applied.

    A batch is retried, like Lambda with ``ReportBatchItemFailures``, from the
    first record whose sequence number was reported failed (the records before
    it are checkpointed); if the handler raises, the whole batch is retried.

    Malformed records (``plan.malformed``) must be rejected: :class:`DeliveryError` if
    ``process_event`` raises on a batch holding one, or reports one failed while no
    error of the batch is retryable (only a transient failure to keep a rejected
    record justifies its retry).
    """
    from ..core.errors import is_retryable

    log = DeliveryLog()
    for batch in plan.planned(records):
        pending = list(batch)
        for _ in range(plan.max_attempts):
            log.invocations += 1
            malformed = [r for r, bad in pending if bad]
            log.malformed_delivered += len(malformed)
            try:
                report = app.process_event({"Records": [r for r, _ in pending]})
            except Exception as exc:  # Lambda retries the whole batch
                if malformed:
                    raise DeliveryError(
                        f"process_event raised on a batch with {len(malformed)} malformed "
                        f"records: {exc!r}"
                    ) from exc
                log.raised += 1
                log.errors.append(exc)
                continue
            log.rejected += len(report.rejected)
            log.stuck.extend(report.stuck)
            if not report.failed:
                break
            log.partial_failures += 1
            log.errors.extend(report.errors)
            failed = set(report.failed)
            bad_failed = [sequence_number(r) for r in malformed if sequence_number(r) in failed]
            if bad_failed and not any(is_retryable(e) for e in report.errors):
                raise DeliveryError(
                    f"malformed records reported failed: {bad_failed}; errors: {report.errors!r}"
                )
            log.malformed_retried += len(bad_failed)
            first = next(
                (i for i, (r, _) in enumerate(pending) if sequence_number(r) in failed),
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

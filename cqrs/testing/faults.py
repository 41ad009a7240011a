"""Fault injection for DynamoDB clients (pytest kit).

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
table name, a key) count. :func:`fault_search` configures hypothesis for a search
over fault schedules.

Lambda-like delivery (:func:`deliver`, :class:`DeliveryPlan`, malformed records) lives
in :mod:`cqrs.testing.delivery`; its names are importable from here too.

Example::

    schedule = [Fault("UpdateItem", 1, "after", "timeout"),
                Fault("BatchWriteItem", 1, kind="item-too-large", target="ORDER#acme")]
    plan = DeliveryPlan(batch_size=3, malformed=[(0, 2, "version-text")])
    with FaultInjector(app.clients.dynamodb, schedule) as faults:
        deliver(app, records, plan)
    assert faults.injected
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from botocore.model import OperationModel

from .delivery import (
    CORRUPTIONS,
    Corruption,
    DeliveryError,
    DeliveryLog,
    DeliveryPlan,
    corrupt,
    deliver,
    sequence_number,
)

__all__ = [
    "CORRUPTIONS",
    "ERROR_RESPONSES",
    "KINDS",
    "PERMANENT_KINDS",
    "TRANSIENT_KINDS",
    "Corruption",
    "DeliveryError",
    "DeliveryLog",
    "DeliveryPlan",
    "Due",
    "Fault",
    "FaultInjector",
    "Kind",
    "When",
    "corrupt",
    "deliver",
    "fault_search",
    "make_error",
    "sequence_number",
]

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
    return ClientError(
        {
            "Error": {
                "Code": code,
                "Message": f"{message.format(operation=fault.operation)} (injected: {where})",
            },
            "ResponseMetadata": {
                "HTTPStatusCode": status,
                "RequestId": "INJECTED",
                "HostId": "",
                "HTTPHeaders": {"x-amzn-requestid": "INJECTED"},
                "RetryAttempts": 0,
            },
        },
        fault.operation,
    )


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

    def __init__(self, client: BaseClient, schedule: Iterable[Fault] = ()) -> None:
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

    def _before(
        self, model: OperationModel, params: object = None, context: object = None, **_: object
    ) -> None:
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
        model: OperationModel,
        http_response: object = None,
        parsed: object = None,
        context: object = None,
        **_: object,
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

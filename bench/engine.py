"""What every benchmark shares: the in-process engine, apps on it, the workload, counters.

The whole run happens inside one ``mock_aws()`` (in-process moto): every app
gets fresh tables under its own prefix and drops them when done.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cqrs import Cqrs, InvokeContext
    from cqrs.core.inputs import CommandInput

REPO = Path(__file__).resolve().parents[1]
TABLES = REPO / "tables"
REGION = "ap-northeast-1"
TENANTS = 10

#: The follower's own request on the DynamoDB client (Lambda's event source mapping does it
#: on AWS); everything else on that client is the command/projection path.
FOLLOWER_DYNAMODB_OPS = frozenset({"DescribeTable"})

_FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SESSION_TOKEN": "bench",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    # botocore >= 1.44.4 otherwise sends account-id endpoints that in-process moto
    # answers with "Not yet implemented" for DescribeStream.
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}


def fake_aws_environment() -> None:
    """Make sure nothing here can reach AWS: fake credentials, fixed region."""
    os.environ.update(_FAKE_AWS)
    os.environ.pop("CQRS_ENDPOINT_URL", None)


@contextmanager
def embedded_engine() -> Iterator[None]:
    """In-process moto for the whole run (the ``CQRS_ENDPOINT_URL=embedded`` engine)."""
    from moto import mock_aws

    with mock_aws():
        yield


def new_app(
    tag: str,
    *,
    handlers: Sequence[object] = (),
    sns_topic_arn: str | None = None,
    **settings_: Any,
) -> Cqrs:
    """A migrated app on the active engine, with fresh tables (prefix ``b-<tag>-<random>-``).

    ``handlers``: custom projections (``DataSyncHandler`` instances) of the ``order``
    entity; ``sns_topic_arn``: where notifications go (``CQRS_SNS_TOPIC_ARN``); other
    keywords are more settings (``s3_bucket``, say).
    """
    from cqrs import Cqrs, Settings
    from cqrs.store.clients import make_clients

    settings = Settings(
        endpoint_url=None,
        region=REGION,
        table_prefix=f"b-{tag}-{uuid.uuid4().hex[:6]}-",
        tables_dir=TABLES,
        sns_topic_arn=sns_topic_arn,
        **settings_,
    )
    app = Cqrs(settings, clients=make_clients(settings))
    if handlers:
        app.register("order", handlers=list(handlers))  # type: ignore[arg-type]
    app.migrate()
    return app


class StreamDriver:
    """Feeds an app's streams to its handler in batches of ``batch`` records, the way
    Lambda's event source mapping does with a full batch, counting invocations.

    Keep one per app: it remembers how far it read (its own checkpoints).
    """

    def __init__(self, app: Cqrs, batch: int) -> None:
        from cqrs.store.streams import StreamsGateway
        from cqrs.sync.follower import StreamFollower

        self.app = app
        self.batch = batch
        self.calls = 0
        self.records = 0
        streams = StreamsGateway(app.clients.dynamodb, app.clients.streams)
        self.follower = StreamFollower(
            streams, app.streamed_tables(), self.handle, batch_size=batch, region=REGION
        )

    def handle(self, event: dict[str, Any]) -> Mapping[str, Any]:
        """One invocation of the handler."""
        self.calls += 1
        self.records += len(event["Records"])
        return self.app.handle_event(event)

    def drain(self) -> None:
        """Hand every new record to the handler."""
        self.follower.drain()


def drop_app(app: Cqrs) -> None:
    """Delete the app's tables (frees the engine's memory between benchmarks)."""
    for definition in app.schema.definitions():
        app.clients.dynamodb.delete_table(TableName=definition.name)


# -- workload ------------------------------------------------------------------------


def tenant(i: int) -> str:
    """The tenant of entity ``i``."""
    return f"t{i % TENANTS}"


def context(i: int) -> InvokeContext:
    """Who publishes entity ``i``'s commands."""
    from cqrs import InvokeContext

    return InvokeContext(tenant_code=tenant(i), user_id="bench", source_ip="127.0.0.1")


def attributes(i: int, revision: int) -> dict[str, Any]:
    """An order's attributes; each revision changes status and a quantity."""
    return {
        "status": ("open", "paid", "packed", "shipped")[revision % 4],
        "lines": [{"sku": f"sku-{i % 7}", "qty": 1 + revision}, {"sku": "ink", "qty": 2}],
        "note": f"order {i}",
    }


def order(i: int, version: int, revision: int | None = None) -> CommandInput:
    """A full command for entity ``i`` based on ``version`` (0 creates)."""
    from cqrs import CommandInput

    code = f"{i:07d}"
    return CommandInput(
        pk=f"ORDER#{tenant(i)}",
        sk=f"ORDER#{code}",
        code=code,
        name=f"Order {code}",
        tenant_code=tenant(i),
        type="ORDER",
        version=version,
        attributes=attributes(i, version if revision is None else revision),
    )


def publish(app: Cqrs, i: int, version: int, revision: int | None = None) -> None:
    """``publish_async`` one command of entity ``i``."""
    app.entity("order").commands.publish_async(order(i, version, revision), context(i))


# -- counting ------------------------------------------------------------------------


@dataclass
class Requests:
    """Requests counted on an app's two clients, by operation."""

    dynamodb: Counter[str] = field(default_factory=Counter)
    streams: Counter[str] = field(default_factory=Counter)

    @property
    def handler(self) -> Counter[str]:
        """DynamoDB requests of the command and projection path (what Lambda would make)."""
        return Counter(
            {op: n for op, n in self.dynamodb.items() if op not in FOLLOWER_DYNAMODB_OPS}
        )

    @property
    def follower(self) -> Counter[str]:
        """Requests only the local follower makes (DescribeTable + the Streams API)."""
        own = {op: n for op, n in self.dynamodb.items() if op in FOLLOWER_DYNAMODB_OPS}
        return Counter(own) + self.streams

    def __iadd__(self, other: Requests) -> Requests:
        self.dynamodb.update(other.dynamodb)
        self.streams.update(other.streams)
        return self


@contextmanager
def counting(app: Cqrs) -> Iterator[Requests]:
    """Count requests on ``app.clients.dynamodb`` and ``app.clients.streams`` separately."""
    from cqrs.testing import RequestCounter

    with RequestCounter(app.clients.dynamodb) as db, RequestCounter(app.clients.streams) as st:
        requests = Requests(db.by_operation, st.by_operation)
        yield requests


class OpTimer:
    """Wall time spent per operation on some boto3 clients (single-threaded use)."""

    def __init__(self, *clients: Any) -> None:
        self._clients = clients
        self._started: list[float] = []
        self.seconds: Counter[str] = Counter()  # values are float seconds
        self.calls: Counter[str] = Counter()

    def _before(self, **_: Any) -> None:
        self._started.append(time.perf_counter())

    def _after(self, model: Any, **_: Any) -> None:
        elapsed = time.perf_counter() - self._started.pop()
        self.seconds[model.name] += elapsed  # type: ignore[assignment]
        self.calls[model.name] += 1

    def __enter__(self) -> OpTimer:
        for client in self._clients:
            client.meta.events.register("before-call.*.*", self._before)
            client.meta.events.register("after-call.*.*", self._after)
        return self

    def __exit__(self, *exc: object) -> None:
        for client in self._clients:
            client.meta.events.unregister("before-call.*.*", self._before)
            client.meta.events.unregister("after-call.*.*", self._after)

    def ms_per_call(self) -> dict[str, float]:
        """Mean milliseconds per call, by operation."""
        return {op: 1000 * s / self.calls[op] for op, s in self.seconds.items()}


def median(values: list[float]) -> float:
    """The median (values need not be sorted)."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]

"""Cold start: a fresh interpreter imports the handler and handles its first batch.

``python -m bench.coldstart [--rounds N] [--records 10]``

Both handlers run on one local moto server (``cqrs.testing.local_server``, the
same engine for both), each round on fresh tables holding ``--records`` new
commands whose stream records make the event:

- ``cqrs``: ``import cqrs.aws`` then ``cqrs.aws.handler(event)``; the app is
  built from the environment (``CQRS_ENDPOINT_URL``, ``CQRS_TABLE_PREFIX``,
  ``CQRS_TABLES_DIR``), as on Lambda;
- ``boto3``: ``bench/plain_handler.py``, which makes the same requests (one
  ``BatchWriteItem`` of history items, one conditional ``UpdateItem`` per row).

Each run is timed inside its fresh interpreter, from before the import to the
handler's return (interpreter start-up excluded), and must project every record.
The two alternate which goes first; medians over the rounds.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .engine import REGION, REPO, TABLES, fake_aws_environment, publish

if TYPE_CHECKING:
    from cqrs import Cqrs

#: The handler module each side imports in its fresh interpreter.
HANDLERS = {"cqrs": "cqrs.aws", "boto3": "bench.plain_handler"}

_TIMED = """\
import json, sys, time
with open(sys.argv[1]) as f:
    event = json.load(f)
_t, _c = time.perf_counter(), time.process_time()
import {module} as handler_module
response = handler_module.handler(event)
elapsed, cpu = time.perf_counter() - _t, time.process_time() - _c
assert response == {{"batchItemFailures": []}}, response
print(elapsed, cpu)
"""


@dataclass
class ColdStarts:
    """Seconds per fresh-interpreter run, by handler: wall clock and the handler's own CPU."""

    wall: dict[str, list[float]] = field(default_factory=lambda: {n: [] for n in HANDLERS})
    cpu: dict[str, list[float]] = field(default_factory=lambda: {n: [] for n in HANDLERS})

    def ratio(self, runs: dict[str, list[float]]) -> float:
        """cqrs's median over the plain boto3 handler's."""
        return statistics.median(runs["cqrs"]) / statistics.median(runs["boto3"])

    def summary(self) -> str:
        lines = []
        for what, runs in (("wall", self.wall), ("cpu", self.cpu)):
            for name, seconds in runs.items():
                ms = sorted(1000 * s for s in seconds)
                lines.append(
                    f"{what:4} {name:6} median {statistics.median(ms):5.0f} ms  "
                    f"min {ms[0]:5.0f}  max {ms[-1]:5.0f}  (n={len(ms)})"
                )
            lines.append(f"{what:4} ratio cqrs/boto3 (medians): {self.ratio(runs):.2f}x")
        return "\n".join(lines)


def measure(rounds: int, records: int = 10) -> ColdStarts:
    """``rounds`` fresh-interpreter cold starts of each handler on a local moto server."""
    from cqrs.testing.local_server import LocalServer
    from cqrs.testing.plugin import free_port

    fake_aws_environment()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = LocalServer(free_port())
    server.start()
    runs = ColdStarts()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(rounds):
                order = list(HANDLERS) if r % 2 else list(reversed(HANDLERS))
                for name in order:
                    app, event = _prepared(server.endpoint, records)
                    path = Path(tmp) / "event.json"
                    path.write_text(json.dumps(event))
                    wall, cpu = _cold_start(HANDLERS[name], path, app)
                    runs.wall[name].append(wall)
                    runs.cpu[name].append(cpu)
                    _check_and_drop(app, records)
    finally:
        server.stop()
    return runs


def _prepared(endpoint: str, records: int) -> tuple[Cqrs, dict[str, Any]]:
    """A migrated app on fresh tables with ``records`` new commands; their stream event."""
    from cqrs import Cqrs, Settings
    from cqrs.store.streams import StreamsGateway
    from cqrs.sync.follower import StreamFollower

    prefix = f"c-{uuid.uuid4().hex[:6]}-"
    app = Cqrs(Settings(endpoint_url=endpoint, region=REGION, table_prefix=prefix,
                        tables_dir=TABLES))  # fmt: skip
    app.migrate()
    for i in range(records):
        publish(app, i, 0)
    streams = StreamsGateway(app.clients.dynamodb, app.clients.streams)
    follower = StreamFollower(streams, app.streamed_tables(), app.handle_event, region=REGION)
    event = {"Records": follower.read_records()}
    assert len(event["Records"]) == records, len(event["Records"])
    return app, event


def _cold_start(module: str, event_path: Path, app: Cqrs) -> tuple[float, float]:
    env = {
        **os.environ,
        "CQRS_ENDPOINT_URL": str(app.settings.endpoint_url),
        "CQRS_TABLE_PREFIX": app.settings.table_prefix,
        "CQRS_TABLES_DIR": str(TABLES),
    }
    env.pop("CQRS_APP", None)
    out = subprocess.run(
        [sys.executable, "-c", _TIMED.format(module=module), str(event_path)],
        capture_output=True, text=True, check=True, cwd=REPO, env=env,
    ).stdout  # fmt: skip
    wall, cpu = out.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def _check_and_drop(app: Cqrs, records: int) -> None:
    """Every record reached the data table; then the tables go."""
    tables = app.schema.entity_tables("order")
    count = app.clients.dynamodb.scan(TableName=tables.data, Select="COUNT")["Count"]
    assert count == records, f"{count} data rows, expected {records}"
    for definition in app.schema.definitions():
        app.clients.dynamodb.delete_table(TableName=definition.name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.coldstart", description=__doc__)
    parser.add_argument("--rounds", type=int, default=15, help="runs of each handler")
    parser.add_argument("--records", type=int, default=10, help="records in the first batch")
    args = parser.parse_args(argv)
    print(measure(args.rounds, args.records).summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())

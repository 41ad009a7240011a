"""The cost sections of ``python -m bench`` run, tiny, and their deterministic figures hold.

Only request counts, capacity units and failed writes are checked (they do not depend
on the machine); times and CPU are not. Slow-marked: each section builds its own apps.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench import batching, engine, large, requests
from bench.report import Section

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def embedded(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The bench's engine and fake credentials, undone afterwards."""
    pytest.importorskip("moto")
    for name, value in engine._FAKE_AWS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CQRS_ENDPOINT_URL", raising=False)
    with engine.embedded_engine():
        yield


def _rows(section: Section) -> dict[str, list[str]]:
    return {row[0]: list(row) for row in section.rows}


def test_cost_per_command_side_by_side() -> None:
    section = requests.run(entities=2, batch=100, rounds=1)
    rows = _rows(section)
    col = {name: i for i, name in enumerate(section.headers)}
    req, wcu, rcu, failed = (col["DynamoDB req/cmd"], col["WCU/cmd (of which GSI)"],
                             col["RCU/cmd"], col["failed cond. writes/cmd"])  # fmt: skip
    # 2 commands in one batch: one history BatchWriteItem for both (0.5 per command)
    assert rows["create (version 0)"][req] == "2.50"
    # command + history + data + its code-index entry, 1 KB each
    assert rows["create (version 0)"][wcu] == "4.00 (1.00)"
    assert rows["update (version N)"][rcu] == "1.00"
    # caught up: the data row is the base (1 GetItem), no window of command versions
    assert rows["update (version -1: latest)"][req] == "3.50"
    assert rows["update (version -1: latest)"][rcu] == "1.00"
    # beside each figure, the raw script's for the same kind of command
    assert rows["update (version N)"][rcu + 1] == "(1.00)"
    assert rows["create (version 0)"][wcu + 1] == "(4.00)"
    # its stream record is marked syncMode SYNC and skipped: no failed conditional write
    assert rows["publish_sync update (version N)"][failed] == "0.00"
    assert rows["publish_sync update (version N), with a handler"][failed] == "0.00"
    raw = "raw boto3 floor: create, data via conditional UpdateItem (cqrs's expression shape)"
    assert rows[raw][req] == rows["create (version 0)"][req]
    assert rows[raw][wcu] == rows["create (version 0)"][wcu]
    assert "identical in every round" in section.notes[-1]


def test_batch_sizes_and_parallelization() -> None:
    batches = _rows(batching.run_batches(entities=4, rounds=1, default=100))
    assert batches["1"][3] == "4.00"  # update: GetItem, PutItem, UpdateItem, BatchWriteItem
    assert batches["1"][1] == "100"  # invocations per 100 commands
    parallel = batching.run_parallel(entities=2, batch=100, default=1)
    col = parallel.headers.index("failed cond. writes/cmd")
    first = parallel.rows[0]
    assert (first[0], first[1], first[col]) == ("1 (template default)", "no", "0.00")


def test_large_attributes_inline_and_in_s3() -> None:
    rows = {(r[0], r[1], r[2]): r for r in large.run(entities=1).rows}
    s3 = "S3 over 102,400 B"
    # inline, 150 KB: command, data row, its code-index entry, history item: 147 WCU each
    assert rows[("150 KB", "inline", "create")][4] == "588.0"
    assert rows[("150 KB", s3, "create")][4:] == ["4.0", "0.0", "PutObject 1.00"]
    assert rows[("150 KB", s3, "read (data.get)")][5:] == ["0.5", "GetObject 1.00"]
    assert rows[("50 KB", s3, "create")][6] == "—"  # under the limit: inline

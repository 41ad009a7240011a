"""Data migrations: ordered, applied once each, recorded; failures stop and resume; dry run."""

from __future__ import annotations

import io
import shutil
import textwrap
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from cqrs import SYSTEM, CommandInput, CommandPartialInput, ConfigurationError, Cqrs, InvokeContext
from cqrs.cli import main
from cqrs.core.errors import AccessDeniedError, TableNotFoundError
from cqrs.core.settings import Settings
from cqrs.store.codec import from_wire_item as deserialize
from cqrs.store.codec import to_wire_item as serialize
from cqrs.system.data_migrations import (
    MIGRATION_PK,
    MigrationConflictError,
    MigrationContext,
    MigrationFailedError,
    applied_ids,
    default_directory,
    discover,
    run_migrations,
)
from cqrs.system.data_migrations.progress import LineProgress, line_progress, track
from cqrs.testing import REGION

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "tables"
EXAMPLE = REPO / "migrations" / "0001_order_priority.py"

# A migration that appends its id to ran.log beside it: what ran, in which order.
LOGGING_BODY = """
from pathlib import Path


def up(ctx):
    with open(Path(__file__).with_name("ran.log"), "a") as log:
        log.write(ctx.migration.id + "\\n")
"""


def write(directory: Path, name: str, body: str = LOGGING_BODY, doc: str | None = None) -> Path:
    """Write ``directory/name`` with a docstring (default: derived from the name) and body."""
    directory.mkdir(parents=True, exist_ok=True)
    docstring = f'"""{doc if doc is not None else "Migration " + name}"""\n' if doc != "" else ""
    path = directory / name
    path.write_text(docstring + textwrap.dedent(body))
    return path


def ran(directory: Path) -> list[str]:
    log = directory / "ran.log"
    return log.read_text().split() if log.exists() else []


def records(app: Cqrs) -> dict[str, dict[str, Any]]:
    response = app.clients.dynamodb.query(
        TableName=app.schema.system_table("migrations"),
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues=serialize({":pk": MIGRATION_PK}),
    )
    return {item["sk"]: item for item in map(deserialize, response["Items"])}


def quiet(_line: str) -> None:
    pass


# -- discovery -------------------------------------------------------------------


def test_discovery_orders_by_number_and_ignores_helpers(tmp_path: Path) -> None:
    for name in ("0010_c.py", "0002_b.py", "0001_a.py", "_helpers.py", "__init__.py"):
        write(tmp_path, name)
    (tmp_path / "README.md").write_text("# notes")

    found = discover(tmp_path)

    assert [m.id for m in found] == ["0001_a", "0002_b", "0010_c"]
    assert [(m.number, m.name) for m in found] == [(1, "a"), (2, "b"), (10, "c")]
    assert found[0].description == "Migration 0001_a.py"


@pytest.mark.parametrize(
    ("name", "body", "doc", "message"),
    [
        ("add_priority.py", LOGGING_BODY, None, "0001_short_name"),
        ("0002-dash.py", LOGGING_BODY, None, "0001_short_name"),
        ("0002_CamelCase.py", LOGGING_BODY, None, "0001_short_name"),
        ("0001_again.py", LOGGING_BODY, None, "duplicate migration number 1"),
        ("1_same_number.py", LOGGING_BODY, None, "duplicate migration number 1"),
        ("0002_no_doc.py", LOGGING_BODY, "", "docstring"),
        ("0002_no_up.py", "def down(ctx):\n    pass\n", None, "function up"),
        ("0002_broken.py", "def up(ctx)\n    pass\n", None, "syntax error"),
    ],
)
def test_bad_files_are_refused_before_anything_runs(
    cqrs_app: Cqrs, tmp_path: Path, name: str, body: str, doc: str | None, message: str
) -> None:
    write(tmp_path, "0001_first.py")
    write(tmp_path, name, body, doc)

    with pytest.raises(ConfigurationError, match=message) as caught:
        run_migrations(cqrs_app, tmp_path, echo=quiet)

    assert name in str(caught.value)
    assert ran(tmp_path) == []
    assert applied_ids(cqrs_app) == []


def test_a_file_that_fails_to_import_stops_before_anything_runs(
    cqrs_app: Cqrs, tmp_path: Path
) -> None:
    write(tmp_path, "0001_first.py")
    write(
        tmp_path, "0002_bad_import.py", "import no_such_module_here\n\n\ndef up(ctx):\n    pass\n"
    )

    with pytest.raises(ConfigurationError, match="no_such_module_here"):
        run_migrations(cqrs_app, tmp_path, echo=quiet)
    assert ran(tmp_path) == []


# -- running -----------------------------------------------------------------------


def test_runs_in_order_each_exactly_once_across_runs(cqrs_app: Cqrs, tmp_path: Path) -> None:
    write(tmp_path, "0002_second.py")
    write(tmp_path, "0001_first.py", doc="Do the first thing.\n\nIn detail")
    lines: list[str] = []

    first = run_migrations(cqrs_app, tmp_path, echo=lines.append)

    assert ran(tmp_path) == ["0001_first", "0002_second"]
    assert [a.migration.id for a in first.applied] == ["0001_first", "0002_second"]
    assert first.already_applied == [] and first.pending == []
    assert "applying     0001_first  Do the first thing." in lines
    stored = records(cqrs_app)
    assert set(stored) == {"0001_first", "0002_second"}
    record = stored["0001_first"]
    assert record["name"] == "first"
    assert record["description"] == "Do the first thing.\n\nIn detail"
    assert record["appliedAt"].endswith("+00:00") and isinstance(record["durationMs"], int)

    lines.clear()
    second = run_migrations(cqrs_app, tmp_path, echo=lines.append)

    assert ran(tmp_path) == ["0001_first", "0002_second"]
    assert second.applied == [] and second.already_applied == ["0001_first", "0002_second"]
    assert lines == ["migrations: up to date (2 applied)"]

    write(tmp_path, "0003_third.py")
    third = run_migrations(cqrs_app, tmp_path, echo=quiet)
    assert [a.migration.id for a in third.applied] == ["0003_third"]
    assert ran(tmp_path) == ["0001_first", "0002_second", "0003_third"]


FAILING_BODY = (
    LOGGING_BODY
    + """
    raise RuntimeError("backfill exploded")
"""
)


def test_a_failing_migration_stops_the_run_and_a_rerun_resumes(
    cqrs_app: Cqrs, tmp_path: Path
) -> None:
    write(tmp_path, "0001_first.py")
    failing = write(tmp_path, "0002_fails.py", FAILING_BODY)
    write(tmp_path, "0003_third.py")

    with pytest.raises(MigrationFailedError, match="0002_fails failed") as caught:
        run_migrations(cqrs_app, tmp_path, echo=quiet)

    error = caught.value
    assert isinstance(error.cause, RuntimeError) and "backfill exploded" in str(error)
    assert error.migration.id == "0002_fails"
    assert [a.migration.id for a in error.report.applied] == ["0001_first"]
    assert [m.id for m in error.report.pending] == ["0002_fails", "0003_third"]
    assert ran(tmp_path) == ["0001_first", "0002_fails"]  # 0003 never started
    assert applied_ids(cqrs_app) == ["0001_first"]  # the failed one is not recorded

    with pytest.raises(MigrationFailedError):  # still broken: fails again, same place
        run_migrations(cqrs_app, tmp_path, echo=quiet)
    assert applied_ids(cqrs_app) == ["0001_first"]

    failing.write_text('"""Fixed."""\n' + textwrap.dedent(LOGGING_BODY))
    report = run_migrations(cqrs_app, tmp_path, echo=quiet)

    assert [a.migration.id for a in report.applied] == ["0002_fails", "0003_third"]
    assert ran(tmp_path) == ["0001_first", "0002_fails", "0002_fails", "0002_fails", "0003_third"]
    assert applied_ids(cqrs_app) == ["0001_first", "0002_fails", "0003_third"]


def test_dry_run_lists_pending_and_runs_nothing(cqrs_app: Cqrs, tmp_path: Path) -> None:
    write(tmp_path, "0001_first.py")
    run_migrations(cqrs_app, tmp_path, echo=quiet)
    write(tmp_path, "0002_second.py", doc="Add the second thing")
    write(tmp_path, "0003_third.py", doc="Add the third thing")
    lines: list[str] = []

    report = run_migrations(cqrs_app, tmp_path, dry_run=True, echo=lines.append)

    assert report.dry_run and report.applied == []
    assert [m.id for m in report.pending] == ["0002_second", "0003_third"]
    assert lines == [
        "would apply  0002_second  Add the second thing",
        "would apply  0003_third  Add the third thing",
        "migrations: 2 pending, none run (dry run)",
    ]
    assert ran(tmp_path) == ["0001_first"]
    assert applied_ids(cqrs_app) == ["0001_first"]


def test_dry_run_before_the_migrations_table_exists(tmp_path: Path) -> None:
    write(tmp_path, "0001_first.py")
    with mock_aws():
        app = Cqrs(Settings(tables_dir=FIXTURES, table_prefix="fresh-", region=REGION))
        report = run_migrations(app, tmp_path, dry_run=True, echo=quiet)
    assert [m.id for m in report.pending] == ["0001_first"]


def test_a_denied_ledger_read_is_not_taken_for_a_missing_table(
    cqrs_app: Cqrs, tmp_path: Path
) -> None:
    """Only a missing table counts as "nothing applied" in a dry run; a denied Query raises."""
    write(tmp_path, "0001_first.py")

    def deny(**_: Any) -> None:
        error = {"Code": "AccessDeniedException", "Message": "not allowed: dynamodb:Query"}
        raise ClientError({"Error": error}, "Query")

    events = cqrs_app.clients.dynamodb.meta.events
    events.register("before-call.dynamodb.Query", deny)
    try:
        with pytest.raises(AccessDeniedError) as caught:
            run_migrations(cqrs_app, tmp_path, dry_run=True, echo=quiet)
    finally:
        events.unregister("before-call.dynamodb.Query", deny)
    assert not caught.value.retryable and isinstance(caught.value.cause, ClientError)
    assert ran(tmp_path) == []


def test_estimate_rows_of_a_missing_table_names_migrate(tmp_path: Path) -> None:
    with mock_aws():
        app = Cqrs(Settings(tables_dir=FIXTURES, table_prefix="fresh-", region=REGION))
        with pytest.raises(TableNotFoundError, match="cqrs migrate"):
            context_for(app, tmp_path).estimate_rows("order")


def test_a_missing_directory_is_skipped_with_a_line(cqrs_app: Cqrs, tmp_path: Path) -> None:
    lines: list[str] = []
    report = run_migrations(cqrs_app, tmp_path / "nowhere", echo=lines.append)
    assert not report.found and report.applied == []
    assert lines == [f"migrations: no {tmp_path / 'nowhere'}/ folder, nothing to run"]


def test_renaming_an_applied_migration_is_refused(cqrs_app: Cqrs, tmp_path: Path) -> None:
    path = write(tmp_path, "0001_first.py")
    run_migrations(cqrs_app, tmp_path, echo=quiet)
    path.rename(tmp_path / "0001_renamed.py")

    with pytest.raises(ConfigurationError, match="applied as '0001_first'"):
        run_migrations(cqrs_app, tmp_path, echo=quiet)
    assert ran(tmp_path) == ["0001_first"]


def test_recorded_ids_without_a_file_are_reported_and_kept(cqrs_app: Cqrs, tmp_path: Path) -> None:
    other = tmp_path / "other"
    write(other, "0005_elsewhere.py")
    run_migrations(cqrs_app, other, echo=quiet)
    write(tmp_path / "here", "0001_first.py")
    lines: list[str] = []

    run_migrations(cqrs_app, tmp_path / "here", echo=lines.append)

    assert any("0005_elsewhere is recorded but has no file" in line for line in lines)
    assert applied_ids(cqrs_app) == ["0001_first", "0005_elsewhere"]


# Plays "another runner": records this very migration while it runs.
RACING_BODY = """
def up(ctx):
    ctx.app.clients.store.put(
        ctx.app.schema.system_table("migrations"),
        {"pk": "MIGRATION", "sk": ctx.migration.id, "name": "other runner"},
    )
"""


def test_a_migration_recorded_meanwhile_by_another_runner_stops_the_run(
    cqrs_app: Cqrs, tmp_path: Path
) -> None:
    write(tmp_path, "0001_raced.py", RACING_BODY)
    write(tmp_path, "0002_next.py")

    with pytest.raises(MigrationConflictError, match="recorded by another runner") as caught:
        run_migrations(cqrs_app, tmp_path, echo=quiet)

    assert records(cqrs_app)["0001_raced"]["name"] == "other runner"  # theirs, not overwritten
    assert [m.id for m in caught.value.report.pending] == ["0002_next"]
    assert ran(tmp_path) == []

    run_migrations(cqrs_app, tmp_path, echo=quiet)  # a rerun carries on
    assert ran(tmp_path) == ["0002_next"]


# -- the context helpers -----------------------------------------------------------


def acme() -> InvokeContext:
    return InvokeContext(tenant_code="acme")


def order(tenant: str, code: str, **attributes: Any) -> CommandInput:
    return CommandInput(
        pk=f"ORDER#{tenant}",
        sk=f"ORDER#{code}",
        code=code,
        name=f"Order {code}",
        tenant_code=tenant,
        type="ORDER",
        attributes=attributes,
    )


def context_for(app: Cqrs, tmp_path: Path) -> MigrationContext:
    write(tmp_path, "0001_probe.py")
    (migration,) = discover(tmp_path)
    return MigrationContext(app, migration)


def test_scan_data_pages_through_every_tenant(cqrs_app: Cqrs, drain: Any, tmp_path: Path) -> None:
    orders = cqrs_app.entity("order")
    for tenant, code in [("acme", "A-1"), ("acme", "A-2"), ("globex", "G-1")]:
        orders.commands.publish_async(order(tenant, code), InvokeContext(tenant_code=tenant))
    drain(cqrs_app)
    ctx = context_for(cqrs_app, tmp_path)

    rows = list(ctx.scan_data("order", page_size=1))

    assert sorted(r["code"] for r in rows) == ["A-1", "A-2", "G-1"]
    assert all(isinstance(r["attributes"], dict) for r in rows)
    assert ctx.estimate_rows("order") == 3
    latest = ctx.latest_command("order", "ORDER#acme", "ORDER#A-1")
    assert latest is not None and latest["sk"] == "ORDER#A-1@1"
    assert ctx.latest_command("order", "ORDER#acme", "ORDER#none") is None
    assert ctx.invoke_context("acme").user_id == "migration:0001_probe"


def test_progress_of_a_failing_migration_is_closed_as_stopped(
    cqrs_app: Cqrs, tmp_path: Path
) -> None:
    body = """
    def up(ctx):
        for n in ctx.progress(range(10), label="rows"):
            if n == 3:
                raise ValueError("bad row")
    """
    write(tmp_path, "0001_partial.py", body)
    stream = io.StringIO()

    with pytest.raises(MigrationFailedError, match="bad row"):
        run_migrations(cqrs_app, tmp_path, echo=quiet, progress_bars=line_progress(stream))

    assert stream.getvalue().splitlines()[-1].startswith("rows: stopped after 3 in ")


class RecordingBar:
    """A progress bar that records what it was told."""

    def __init__(self, total: int | None, label: str) -> None:
        self.total, self.label, self.count, self.closed = total, label, 0, None

    def advance(self, n: int = 1) -> None:
        self.count += n

    def close(self, *, stopped: bool = False) -> None:
        self.closed = "stopped" if stopped else "done"


def test_progress_bars_are_injected(cqrs_app: Cqrs, tmp_path: Path) -> None:
    body = """
    def up(ctx):
        for _ in ctx.progress(range(4), label="rows"):
            pass
        for _ in ctx.progress(iter([1, 2]), total=5):
            pass
    """
    write(tmp_path, "0001_counted.py", body)
    bars: list[RecordingBar] = []

    def factory(total: int | None, label: str) -> RecordingBar:
        bars.append(RecordingBar(total, label))
        return bars[-1]

    run_migrations(cqrs_app, tmp_path, echo=quiet, progress_bars=factory)

    assert [(b.label, b.total, b.count, b.closed) for b in bars] == [
        ("rows", 4, 4, "done"),
        ("0001_counted", 5, 2, "done"),  # the label defaults to the migration id
    ]


# -- the example migration ---------------------------------------------------------


@pytest.fixture
def example_dir(tmp_path: Path) -> Path:
    """A migrations folder holding only the repo's example migration."""
    directory = tmp_path / "migrations"
    directory.mkdir()
    shutil.copy(EXAMPLE, directory)
    return directory


def test_example_backfills_priority_across_tenants(
    cqrs_app: Cqrs, drain: Any, example_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    orders = cqrs_app.entity("order")
    globex = InvokeContext(tenant_code="globex")
    orders.commands.publish_async(order("acme", "A-1", status="open"), acme())
    orders.commands.publish_async(order("acme", "A-2", priority="high"), acme())
    orders.commands.publish_async(order("globex", "G-1"), globex)
    orders.commands.publish_partial_update_async(
        CommandPartialInput(pk="ORDER#globex", sk="ORDER#G-1", attributes={"note": "rush"}), globex
    )
    drain(cqrs_app)

    report = run_migrations(cqrs_app, example_dir)
    drain(cqrs_app)

    assert [a.migration.id for a in report.applied] == ["0001_order_priority"]
    out, err = capsys.readouterr()
    assert "set priority on 2 order(s); 1 already had one" in out
    assert "order priority: 3 done in " in err  # the progress bar's final line, on stderr
    a1 = orders.data.get("ORDER#acme", "ORDER#A-1", context=SYSTEM)
    a2 = orders.data.get("ORDER#acme", "ORDER#A-2", context=SYSTEM)
    g1 = orders.data.get("ORDER#globex", "ORDER#G-1", context=SYSTEM)
    assert a1 and a2 and g1
    assert (a1.version, a1.attributes) == (2, {"status": "open", "priority": "normal"})
    assert (a2.version, a2.attributes) == (1, {"priority": "high"})  # kept, no new version
    assert (g1.version, g1.attributes) == (3, {"note": "rush", "priority": "normal"})
    history = orders.history.list("ORDER#acme", "ORDER#A-1", context=SYSTEM)
    assert [(h.version, h.attributes.get("priority")) for h in history] == [
        (1, None),
        (2, "normal"),
    ]
    assert history[-1].updated_by == "migration:0001_order_priority"

    # A crash after the backfill but before the record: running up again changes nothing.
    (migration,) = discover(example_dir)
    migration.load()(MigrationContext(cqrs_app, migration, echo=quiet))
    drain(cqrs_app)
    assert orders.commands.latest_version("ORDER#acme", "ORDER#A-1", context=SYSTEM) == 2
    assert run_migrations(cqrs_app, example_dir, echo=quiet).applied == []


def test_example_keeps_a_priority_the_data_row_does_not_show_yet(
    cqrs_app: Cqrs, drain: Any, example_dir: Path
) -> None:
    orders = cqrs_app.entity("order")
    orders.commands.publish_async(order("acme", "A-1"), acme())
    drain(cqrs_app)
    orders.commands.publish_partial_update_async(  # not synced: the data row is at version 1
        CommandPartialInput(pk="ORDER#acme", sk="ORDER#A-1", attributes={"priority": "high"}),
        acme(),
    )

    run_migrations(cqrs_app, example_dir, echo=quiet)
    drain(cqrs_app)

    row = orders.data.get("ORDER#acme", "ORDER#A-1", context=SYSTEM)
    assert row and (row.version, row.attributes) == (2, {"priority": "high"})


def test_example_in_dry_run_mode_writes_nothing(
    cqrs_app: Cqrs, drain: Any, example_dir: Path
) -> None:
    orders = cqrs_app.entity("order")
    orders.commands.publish_async(order("acme", "A-1"), acme())
    drain(cqrs_app)
    lines: list[str] = []
    (migration,) = discover(example_dir)

    migration.load()(MigrationContext(cqrs_app, migration, dry_run=True, echo=lines.append))

    assert lines == ["  would set priority on 1 order(s); 0 already had one"]
    assert orders.commands.latest_version("ORDER#acme", "ORDER#A-1", context=SYSTEM) == 1


# -- the command line ----------------------------------------------------------------


@pytest.fixture
def moto_client() -> Any:
    with mock_aws():
        yield boto3.client("dynamodb", region_name=REGION)


def test_cli_migrate_dry_run_then_apply(
    moto_client: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "0001_first.py", doc="Set things up")
    args = ["migrate", "--tables-dir", str(FIXTURES), "--prefix", "cli-"]
    args += ["--migrations-dir", str(tmp_path)]

    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would create-table cli-migrations" in out
    assert "would apply  0001_first  Set things up" in out
    assert "migrations: 1 pending, none run (dry run)" in out
    assert moto_client.list_tables()["TableNames"] == []
    assert ran(tmp_path) == []

    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.index("create-table cli-migrations") < out.index("applying     0001_first")
    assert "migrations: applied 1" in out
    assert ran(tmp_path) == ["0001_first"]

    assert main(args) == 0
    assert "migrations: up to date (1 applied)" in capsys.readouterr().out
    assert ran(tmp_path) == ["0001_first"]


def test_cli_migrate_reports_a_failing_migration(
    moto_client: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "0001_fails.py", FAILING_BODY)
    args = ["migrate", "--tables-dir", str(FIXTURES), "--prefix", "cli-"]

    assert main([*args, "--migrations-dir", str(tmp_path)]) == 1

    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: backfill exploded" in err
    assert "cqrs: error: migration 0001_fails failed" in err


def test_cli_migrate_refuses_bad_files_before_touching_data(
    moto_client: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "0001_first.py")
    write(tmp_path, "0001_second.py")
    args = ["migrate", "--tables-dir", str(FIXTURES), "--prefix", "cli-"]

    assert main([*args, "--migrations-dir", str(tmp_path)]) == 2

    assert "duplicate migration number 1" in capsys.readouterr().err
    assert ran(tmp_path) == []


def test_cli_default_directory_is_beside_the_tables_dir(
    moto_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert default_directory(Path("tables")) == Path("migrations")
    assert default_directory(REPO / "tables") == REPO / "migrations"
    assert main(["migrate", "--tables-dir", str(FIXTURES), "--prefix", "cli-"]) == 0
    missing = FIXTURES.parent / "migrations"
    assert f"migrations: no {missing}/ folder, nothing to run" in capsys.readouterr().out


# -- the progress printer ------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_prints_a_line_every_ten_percent() -> None:
    stream, clock = io.StringIO(), Clock()
    printer = LineProgress(20, "rows", stream=stream, clock=clock)
    for _ in range(20):
        clock.now += 0.5
        printer.advance()
    printer.close()
    printer.close()  # once only

    lines = stream.getvalue().splitlines()
    assert len(lines) == 10 + 1  # 10%, 20% … 100%, then the final line
    assert lines[0] == "rows: 2/20 (10%) 2.0/s, eta 9.0s"
    assert lines[-1] == "rows: 20 done in 10.0s, 2.0/s"


def test_progress_without_a_total_prints_every_few_seconds() -> None:
    stream, clock = io.StringIO(), Clock()
    printer = LineProgress(label="scan", stream=stream, every_seconds=5, clock=clock)
    for _ in range(12):
        clock.now += 1
        printer.advance()

    assert stream.getvalue().splitlines() == ["scan: 5 done 1.0/s", "scan: 10 done 1.0/s"]


def test_progress_holds_an_estimate_below_100() -> None:
    stream, clock = io.StringIO(), Clock()
    printer = LineProgress(2, "rows", stream=stream, clock=clock)
    for _ in range(3):  # the total was an estimate: one more row than expected
        clock.now += 1
        printer.advance()
    assert printer.render() == "rows: 3/2 (99%) 1.0/s"
    printer.close()
    assert stream.getvalue().endswith("rows: 3 done in 3.0s, 1.0/s\n")


def test_track_wraps_an_iterable_and_closes_the_bar() -> None:
    stream = io.StringIO()
    assert list(track([1, 2, 3], LineProgress(3, "x", stream=stream))) == [1, 2, 3]
    assert stream.getvalue().splitlines()[-1].startswith("x: 3 done in ")

    stream = io.StringIO()
    for n in track(range(10), LineProgress(10, "y", stream=stream)):
        if n == 2:
            break
    assert stream.getvalue().splitlines()[-1].startswith("y: stopped after 2 in ")

"""The storage gateway is the only code in ``cqrs`` that calls a DynamoDB (or S3) client.

Two checks: a static one over every module (a DynamoDB, DynamoDB Streams or S3 client
method called on something that looks like a client), and a dynamic one that runs every
service once and asserts, from botocore's own ``before-call`` hook, that the innermost
``cqrs`` frame of every DynamoDB and DynamoDB Streams request is in ``cqrs/store/``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import boto3
from botocore import xform_name

from cqrs import SYSTEM, CommandInput, CommandPartialInput, Cqrs, InvokeContext
from cqrs.system.data_migrations import run_migrations

PACKAGE = Path(__import__("cqrs").__file__).parent
STORE = PACKAGE / "store"
CTX = InvokeContext(tenant_code="acme", user_id="alice")


def client_operations() -> set[str]:
    """Every method name of the DynamoDB, DynamoDB Streams and S3 clients (S3: where large
    attributes are kept, :mod:`cqrs.store.objects`)."""
    names = {"get_paginator", "get_waiter"}
    for service in ("dynamodb", "dynamodbstreams", "s3"):
        client = boto3.client(service, region_name="ap-northeast-1")
        names |= {xform_name(op) for op in client.meta.service_model.operation_names}
    return names


CLIENTISH = {"client", "_client", "dynamodb", "_dynamodb", "streams", "_streams", "ddb", "s3"}


def _receiver(node: ast.expr) -> str | None:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None


def test_no_module_outside_the_store_calls_a_dynamodb_client() -> None:
    operations = client_operations()
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if STORE in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in operations
                and _receiver(node.func.value) in CLIENTISH
            ):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.func.attr}")
    assert offenders == []


def test_the_static_check_would_catch_a_direct_call(tmp_path: Path) -> None:
    code = "def f(self):\n    return self._client.put_item(TableName='t', Item={})\n"
    node = next(n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Call))
    assert isinstance(node.func, ast.Attribute)
    assert node.func.attr in client_operations() and _receiver(node.func.value) in CLIENTISH


class CallerCheck:
    """A botocore hook recording the innermost ``cqrs`` module behind each request."""

    def __init__(self) -> None:
        self.callers: dict[str, set[str]] = {}

    def __call__(self, model: Any, **_: Any) -> None:
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            filename = Path(frame.f_code.co_filename)
            if PACKAGE in filename.parents:
                module = str(filename.relative_to(PACKAGE))
                self.callers.setdefault(module, set()).add(model.name)
                return
            frame = frame.f_back

    def install(self, app: Cqrs) -> None:
        for client in (app.clients.dynamodb, app.clients.streams):
            client.meta.events.register("before-call.*.*", self)


def order(code: str, version: int = 0, **attributes: Any) -> CommandInput:
    return CommandInput(
        pk="ORDER#acme", sk=f"ORDER#{code}", code=code, name=code, tenant_code="acme",
        type="ORDER", version=version, attributes=attributes,
    )  # fmt: skip


class Flaky:
    """Fails ORDER#P until healed, so the poison path (record, stuck, redrive) runs."""

    healed = False

    def up(self, command: Any) -> None:
        if command.code == "P" and not self.healed:
            raise RuntimeError("poison")

    def down(self, command: Any) -> None:
        return None


def exercise(app: Cqrs, tmp_path: Path) -> None:
    """Every service of the framework, once."""
    flaky = Flaky()
    orders = app.register("order", handlers=[flaky])
    orders.commands.publish_async(order("1", qty=1), CTX)
    orders.commands.publish_async(order("1", 1, qty=2), CTX)
    orders.commands.publish_partial_update_async(
        CommandPartialInput(pk="ORDER#acme", sk="ORDER#1", attributes={"qty": 3}), CTX
    )
    orders.commands.publish_sync(order("2"), CTX)
    orders.commands.duplicate("ORDER#acme", "ORDER#1@1", CTX)
    orders.commands.publish_async(order("P"), CTX)
    for _ in range(app.settings.sync_max_attempts + 1):
        app.sync()
    orders.data.get("ORDER#acme", "ORDER#1", context=CTX)
    orders.data.get_fresh("ORDER#acme", "ORDER#1", context=CTX)
    orders.data.list_by_pk("ORDER#acme", limit=1, context=CTX)
    orders.data.find_by_code("acme", "1", context=CTX)
    orders.history.list("ORDER#acme", "ORDER#1", context=CTX)
    orders.history.get("ORDER#acme", "ORDER#1", 1, context=CTX)
    orders.commands.get("ORDER#acme", "ORDER#1", context=CTX)
    orders.commands.is_applied("ORDER#acme", "ORDER#1", 1, context=SYSTEM)
    assert app.sync_failures.failing("order")
    flaky.healed = True
    assert all(r.ok for r in app.sync_failures.redrive("order"))
    app.sync_failures.rejected_records.list()
    app.sequences.next("acme", "ORD", context=CTX)
    app.sequences.reserve("acme", "ORD", count=3, context=CTX)
    app.sequences.current("acme", "ORD", context=CTX)

    @app.tasks.handler("echo")
    def echo(task: Any) -> Any:
        task.report_progress({"half": True})
        return task.input

    app.tasks.create("acme", "echo", {"x": 1}, context=CTX)
    app.tasks.create("acme", "echo", None, subtasks=[{"i": 0}, {"i": 1}], context=CTX)
    for _ in range(6):
        app.sync()
    app.tasks.list("acme", "echo", context=CTX)
    app.tasks.sweep("acme", context=CTX)
    app.rebuild("order")
    (tmp_path / "0001_touch.py").write_text('"""Touch."""\n\n\ndef up(ctx):\n    return None\n')
    run_migrations(app, tmp_path)


def test_every_request_of_every_service_comes_from_the_store(
    cqrs_app: Cqrs, tmp_path: Path
) -> None:
    check = CallerCheck()
    check.install(cqrs_app)
    cqrs_app.migrate()
    exercise(cqrs_app, tmp_path)
    outside = {m: ops for m, ops in check.callers.items() if not m.startswith("store/")}
    assert outside == {}
    assert {"store/gateway.py", "store/tables.py", "store/streams.py"} <= set(check.callers)
    every = set().union(*check.callers.values())
    assert {"PutItem", "UpdateItem", "BatchWriteItem", "TransactWriteItems", "GetRecords"} <= every

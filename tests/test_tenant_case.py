"""Tenant codes are lowercase, as MBC CQRS Serverless >= 1.1 keeps them.

MBC 1.1 lowercases the tenant code of the user context (``getUserContext``), from which
services build their keys, and renamed the common tenant ``COMMON`` to ``common``. Here
every input is normalised the same way: ``ORDER#Acme`` and ``ORDER#acme`` are one key,
for writes and for reads. Rows stored earlier with a mixed-case tenant are left as they
are, and reads by key do not find them, exactly as MBC >= 1.1 does not; the migration
republishes them (last test).
"""

from __future__ import annotations

from typing import Any

import pytest

from cqrs import (
    SYSTEM,
    CommandInput,
    CommandPartialInput,
    Cqrs,
    InvokeContext,
    TenantMismatchError,
)
from cqrs.core.keys import (
    COMMON_TENANT,
    check_tenant,
    is_common_tenant,
    make_pk,
    normalize_pk,
    normalize_tenant_code,
)
from cqrs.store.codec import from_wire_item, to_wire_item
from cqrs.testing import table_items

pytestmark = pytest.mark.engine  # also on DynamoDB Local in CI


def test_helpers() -> None:
    assert normalize_tenant_code("MY_Tenant-1") == "my_tenant-1"
    assert normalize_pk("ORDER#Acme") == "ORDER#acme"
    assert normalize_pk("MASTER#SUB#Acme") == "MASTER#SUB#acme"  # only the tenant part
    assert normalize_pk("ORDERACME") == "ORDERACME"  # not a pk: left for the key rules
    assert make_pk("ORDER", "ACME") == "ORDER#acme"
    assert COMMON_TENANT == "common"
    assert is_common_tenant("COMMON") and is_common_tenant("common")
    assert is_common_tenant("Shared", common=("common", "shared")) and not is_common_tenant("acme")
    assert check_tenant("ORDER#ACME", InvokeContext(tenant_code="Acme")) == "ORDER#acme"
    assert check_tenant("Acme", SYSTEM, is_pk=False) == "acme"
    with pytest.raises(TenantMismatchError):
        check_tenant("ORDER#acme", InvokeContext(tenant_code="other"))


def test_inputs_are_normalised() -> None:
    full = CommandInput(
        pk="ORDER#Acme", sk="ORDER#X1", code="X1", name="n", tenant_code="ACME", type="ORDER",
        id="ORDER#Acme#ORDER#X1",
    )  # fmt: skip
    assert (full.pk, full.tenant_code, full.id) == ("ORDER#acme", "acme", "ORDER#acme#ORDER#X1")
    assert (full.sk, full.code) == ("ORDER#X1", "X1")  # codes keep their case
    full.pk = "ORDER#BETA"
    assert full.pk == "ORDER#beta"
    assert CommandPartialInput(pk="ORDER#Acme", sk="ORDER#X1").pk == "ORDER#acme"
    other = CommandInput(
        pk="ORDER#Acme", sk="ORDER#X1", code="X1", name="n", tenant_code="acme", type="ORDER",
        id="ORDER#beta#ORDER#X1",
    )  # fmt: skip
    assert other.id == "ORDER#beta#ORDER#X1"  # not built from this pk: left for the rules


def _order(tenant: str, code: str = "A1", version: int = 0, **kw: Any) -> CommandInput:
    return CommandInput(
        pk=f"ORDER#{tenant}", sk=f"ORDER#{code}", code=code, name=f"order {code}",
        tenant_code=tenant, type="ORDER", version=version, **kw,
    )  # fmt: skip


def test_mixed_case_writes_and_reads_are_one_tenant(cqrs_app: Cqrs, drain: Any) -> None:
    orders = cqrs_app.entity("order")
    upper = InvokeContext(tenant_code="ACME", user_id="u")  # a context built as given
    lower = InvokeContext(tenant_code="acme", user_id="u")
    first = orders.commands.publish_async(_order("Acme", attributes={"n": 1}), upper)
    assert first is not None
    assert (first.pk, first.tenant_code, first.id) == ("ORDER#acme", "acme", "ORDER#acme#ORDER#A1")
    orders.commands.publish_partial_update_async(
        CommandPartialInput(pk="ORDER#ACME", sk="ORDER#A1", attributes={"n": 2}), lower
    )
    drain(cqrs_app)

    (row,) = table_items(cqrs_app, orders.tables.data)
    assert (row["pk"], row["tenantCode"], row["version"]) == ("ORDER#acme", "acme", 2)
    for pk, ctx in (("ORDER#Acme", lower), ("ORDER#acme", upper), ("ORDER#ACME", SYSTEM)):
        record = orders.data.get(pk, "ORDER#A1", context=ctx)
        assert record is not None and record.attributes == {"n": 2}
        assert orders.commands.latest_version(pk, "ORDER#A1", context=ctx) == 2
        assert len(orders.history.list(pk, "ORDER#A1", context=ctx)) == 2
        assert [r.code for r in orders.data.list_by_pk(pk, context=ctx).items] == ["A1"]
    found = orders.data.find_by_code("ACME", "A1", context=lower)
    assert found is not None and found.version == 2
    fresh = orders.data.get_fresh("ORDER#Acme", "ORDER#A1", after=first, context=upper)
    assert fresh is not None and fresh.version == 2
    copy = orders.commands.duplicate("ORDER#Acme", "ORDER#A1@1", upper)
    assert (copy.pk, copy.version) == ("ORDER#acme", 3)
    with pytest.raises(TenantMismatchError):
        orders.data.get("ORDER#Acme", "ORDER#A1", context=InvokeContext(tenant_code="other"))
    with pytest.raises(TenantMismatchError):
        orders.commands.publish_async(_order("Acme", "A2"), InvokeContext(tenant_code="beta"))


def test_legacy_mixed_case_rows_and_their_migration(cqrs_app: Cqrs, drain: Any) -> None:
    """A command MBC < 1.1 wrote under ``ORDER#Acme`` is projected as it is; reads by key
    (lowercased) do not see it, as MBC >= 1.1 does not; republishing it moves it."""
    orders = cqrs_app.entity("order")
    legacy = {
        "pk": "ORDER#Acme", "sk": "ORDER#L1@1", "id": "ORDER#Acme#ORDER#L1", "code": "L1",
        "name": "legacy", "version": 1, "tenantCode": "Acme", "type": "ORDER",
        "attributes": {"total": 5}, "createdAt": "2024-05-01T10:00:00.000Z",
        "createdBy": "mbc-user", "updatedAt": "2024-05-01T10:00:00.000Z", "updatedBy": "mbc-user",
    }  # fmt: skip
    cqrs_app.clients.dynamodb.put_item(TableName=orders.tables.command, Item=to_wire_item(legacy))
    drain(cqrs_app)
    (row,) = table_items(cqrs_app, orders.tables.data)
    assert (row["pk"], row["tenantCode"]) == ("ORDER#Acme", "Acme")  # stored keys: never rewritten

    ctx = InvokeContext(tenant_code="Acme")
    assert orders.data.get("ORDER#Acme", "ORDER#L1", context=ctx) is None  # as MBC >= 1.1
    assert orders.data.find_by_code("Acme", "L1", context=ctx) is None

    # The migration (e.g. migrations/NNNN_lowercase_tenants.py): scan for rows whose tenant
    # is not lowercase, republish each; the inputs lowercase its keys.
    scan = cqrs_app.clients.dynamodb.scan(TableName=orders.tables.data)["Items"]
    for item in map(from_wire_item, scan):
        if item["pk"] != normalize_pk(item["pk"]) and not item.get("isDeleted"):
            migrated = CommandInput.model_validate(
                {k: v for k, v in item.items() if k not in ("id", "version")}
            )
            orders.commands.publish_sync(migrated, InvokeContext(tenant_code=item["tenantCode"]))
    record = orders.data.get("ORDER#Acme", "ORDER#L1", context=ctx)
    assert record is not None and (record.pk, record.tenant_code) == ("ORDER#acme", "acme")
    assert record.attributes == {"total": 5}
    assert {r["pk"] for r in table_items(cqrs_app, orders.tables.data)} == {
        "ORDER#Acme", "ORDER#acme"
    }  # fmt: skip


def test_tasks_and_sequences_keep_one_lowercase_tenant(cqrs_app: Cqrs) -> None:
    ctx = InvokeContext(tenant_code="acme", user_id="alice")
    task = cqrs_app.tasks.create("ACME", "report", None, context=ctx)
    assert (task.pk, task.tenant_code) == ("TASK#acme", "acme")
    assert cqrs_app.tasks.get("Acme", task.sk, context=ctx) == task
    assert cqrs_app.tasks.get("TASK#ACME", task.sk, context=ctx) == task
    numbers = [cqrs_app.sequences.next(t, "ORD", context=ctx) for t in ("ACME", "acme")]
    assert [(n.pk, n.number) for n in numbers] == [("SEQ#acme", 1), ("SEQ#acme", 2)]

"""The baseline: a plain boto3 script making only the floor's requests, nothing else.

Per command: a conditional PutItem of the command (the same condition cqrs
uses), a consistent GetItem of the base version for updates, the history item
in a BatchWriteItem of 25, and one conditional data write, either an
UpdateItem shaped like cqrs's (one SET/REMOVE clause per field) or a PutItem.
No validation, no models, no streams: the commands it projects are the ones it
just wrote, kept in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from .engine import attributes, tenant

DataWrite = Literal["update", "put"]

_ser = TypeSerializer()
_de = TypeDeserializer()

#: The fields a data row carries (what cqrs projects from a command), in order.
DATA_FIELDS = (
    "id", "code", "name", "version", "tenantCode", "type", "isDeleted", "seq", "ttl",
    "attributes", "requestId", "createdAt", "createdBy", "createdIp",
    "updatedAt", "updatedBy", "updatedIp", "cpk", "csk",
)  # fmt: skip
CREATED = ("createdAt", "createdBy", "createdIp")
NEW_KEY = "attribute_not_exists(pk) AND attribute_not_exists(sk)"


def wire(item: dict[str, Any]) -> dict[str, Any]:
    """A plain item in DynamoDB's attribute-value format."""
    return {k: _ser.serialize(v) for k, v in item.items() if v is not None}


def plain(item: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`wire` (numbers stay ``Decimal``)."""
    return {k: _de.deserialize(v) for k, v in item.items()}


def now() -> str:
    """An ISO timestamp as the framework writes it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class RawFloor:
    """Writes commands and projects them with the minimum number of requests."""

    def __init__(
        self, client: Any, command: str, data: str, history: str, data_write: DataWrite
    ) -> None:
        self.client = client
        self.command_table, self.data_table, self.history_table = command, data, history
        self.data_write = data_write

    # -- write side ----------------------------------------------------------------

    def create(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Write version 1 of an entity (``fields``: pk, base sk, code, name, ...)."""
        stamp = now()
        item = {**fields, "sk": f"{fields['sk']}@1", "version": 1, "createdAt": stamp,
                "createdBy": "bench", "createdIp": "127.0.0.1", "updatedAt": stamp,
                "updatedBy": "bench", "updatedIp": "127.0.0.1"}  # fmt: skip
        self._put_command(item)
        return item

    def update(self, pk: str, sk: str, base_version: int, attributes: Any) -> dict[str, Any]:
        """Read version ``base_version`` and write the next one with new ``attributes``."""
        resp = self.client.get_item(
            TableName=self.command_table,
            Key=wire({"pk": pk, "sk": f"{sk}@{base_version}"}),
            ConsistentRead=True,
        )
        base = plain(resp["Item"])
        version = int(base["version"]) + 1
        item = {**base, "sk": f"{sk}@{version}", "version": version, "attributes": attributes,
                "updatedAt": now(), "updatedBy": "bench", "updatedIp": "127.0.0.1"}  # fmt: skip
        self._put_command(item)
        return item

    def _put_command(self, item: dict[str, Any]) -> None:
        self.client.put_item(
            TableName=self.command_table, Item=wire(item), ConditionExpression=NEW_KEY
        )

    # -- projection ------------------------------------------------------------------

    def project(self, commands: Sequence[dict[str, Any]]) -> None:
        """History in batches of 25, then one conditional data write per command."""
        rows = [data_row(c) for c in commands]
        for start in range(0, len(rows), 25):
            chunk = rows[start : start + 25]
            requests = [
                {"PutRequest": {"Item": wire({**r, "sk": f"{r['sk']}@{r['version']}"})}}
                for r in chunk
            ]
            pending: Any = {self.history_table: requests}
            while pending:
                pending = self.client.batch_write_item(RequestItems=pending)["UnprocessedItems"]
        for row in rows:
            if self.data_write == "update":
                self._update_data(row)
            else:
                self._put_data(row)

    def _put_data(self, row: dict[str, Any]) -> None:
        expected = int(row["version"]) - 1
        kwargs: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        if expected:
            kwargs = {
                "ConditionExpression": "#v = :expected",
                "ExpressionAttributeNames": {"#v": "version"},
                "ExpressionAttributeValues": {":expected": {"N": str(expected)}},
            }
        self.client.put_item(TableName=self.data_table, Item=wire(row), **kwargs)

    def _update_data(self, row: dict[str, Any]) -> None:
        expected = int(row["version"]) - 1
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets, removes = [], []
        for i, name in enumerate(DATA_FIELDS):
            names[f"#f{i}"] = name
            if row.get(name) is None:
                if name not in CREATED:
                    removes.append(f"#f{i}")
                else:
                    del names[f"#f{i}"]
                continue
            values[f":f{i}"] = _ser.serialize(row[name])
            value = f"if_not_exists(#f{i}, :f{i})" if name in CREATED else f":f{i}"
            sets.append(f"#f{i} = {value}")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        condition = "attribute_not_exists(pk)"
        if expected:
            condition = "#f3 = :expected"
            values[":expected"] = {"N": str(expected)}
        self.client.update_item(
            TableName=self.data_table,
            Key=wire({"pk": row["pk"], "sk": row["sk"]}),
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )


def data_row(command: dict[str, Any]) -> dict[str, Any]:
    row = {k: command.get(k) for k in DATA_FIELDS if k not in ("cpk", "csk")}
    row.update(pk=command["pk"], sk=command["sk"].rpartition("@")[0])
    row.update(cpk=command["pk"], csk=command["sk"])
    return row


def entity_key(i: int) -> tuple[str, str]:
    """``(pk, base sk)`` of entity ``i``, as :func:`bench.engine.order` spells them."""
    return f"ORDER#{tenant(i)}", f"ORDER#{i:07d}"


def entity_fields(i: int) -> dict[str, object]:
    """The fields of entity ``i``'s first command (what :meth:`RawFloor.create` takes)."""
    pk, sk = entity_key(i)
    code = sk.partition("#")[2]
    return {
        "pk": pk,
        "sk": sk,
        "id": f"{pk}#{sk}",
        "code": code,
        "name": f"Order {code}",
        "tenantCode": tenant(i),
        "type": "ORDER",
        "attributes": attributes(i, 0),
    }

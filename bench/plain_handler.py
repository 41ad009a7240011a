"""The cold-start baseline: a plain boto3 Lambda handler making cqrs's writes by hand.

For a batch of command-table INSERT records it makes the requests the cqrs
handler makes for the same batch of creates: the history items in one
``BatchWriteItem`` (25 per request) and one conditional ``UpdateItem`` per data
row, shaped like the projector's (one ``SET`` per field). No validation, no
models, no routing table: the data and history tables are named after the
command table. It imports boto3 and the standard library only, so that
``bench/coldstart.py`` can time it in a fresh interpreter against ``cqrs.aws``.
"""

from __future__ import annotations

import os
from typing import Any

import boto3

#: The fields a data row carries, in the projector's order.
DATA_FIELDS = (
    "id", "code", "name", "version", "tenantCode", "type", "isDeleted", "seq", "ttl",
    "attributes", "requestId", "createdAt", "createdBy", "createdIp",
    "updatedAt", "updatedBy", "updatedIp",
)  # fmt: skip
CREATED = ("createdAt", "createdBy", "createdIp")

_client = boto3.session.Session().client(
    "dynamodb", endpoint_url=os.environ.get("CQRS_ENDPOINT_URL") or None
)


def handler(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    """Project every INSERT record of ``event``; Lambda's partial batch response."""
    by_table: dict[str, list[dict[str, Any]]] = {}
    for record in event["Records"]:
        if record["eventName"] == "INSERT":
            table = record["eventSourceARN"].split("/")[1]
            by_table.setdefault(table, []).append(record["dynamodb"]["NewImage"])
    for table, images in by_table.items():
        base = table.removesuffix("-command")
        for start in range(0, len(images), 25):
            puts = [{"PutRequest": {"Item": image}} for image in images[start : start + 25]]
            pending: Any = {f"{base}-history": puts}
            while pending:
                pending = _client.batch_write_item(RequestItems=pending)["UnprocessedItems"]
        for image in images:
            _update_data(f"{base}-data", image)
    return {"batchItemFailures": []}


def _update_data(table: str, image: dict[str, Any]) -> None:
    row = dict(image)
    sk, _, version = image["sk"]["S"].rpartition("@")
    row.update(sk={"S": sk}, cpk=image["pk"], csk=image["sk"])
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    sets, removes = [], []
    for i, name in enumerate((*DATA_FIELDS, "cpk", "csk")):
        names[f"#f{i}"] = name
        if name not in row:
            if name in CREATED:
                del names[f"#f{i}"]
            else:
                removes.append(f"#f{i}")
            continue
        values[f":f{i}"] = row[name]
        sets.append(f"#f{i} = " + (f"if_not_exists(#f{i}, :f{i})" if name in CREATED else f":f{i}"))
    condition = "attribute_not_exists(pk)"
    if int(version) > 1:
        condition = "#f3 = :expected"
        values[":expected"] = {"N": str(int(version) - 1)}
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    _client.update_item(
        TableName=table,
        Key={"pk": row["pk"], "sk": row["sk"]},
        UpdateExpression=expression,
        ConditionExpression=condition,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )

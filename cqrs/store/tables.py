"""Table administration for ``migrate``: describe, create, update, TTL; errors classified."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..core.errors import TransientError
from .calls import calling
from .classify import classify, error_code

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import UpdateTableInputTypeDef


class TableAdmin:
    """DynamoDB's control plane, as much of it as ``cqrs migrate`` needs.

    ``describe`` and ``create`` keep plain mappings in their signatures: subclasses
    (:class:`cqrs.testing.fresh_tables.FreshTables`) override them with those types.
    """

    def __init__(
        self, client: DynamoDBClient, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._client = client
        self._sleep = sleep

    def describe(self, name: str) -> Mapping[str, Any] | None:
        """``DescribeTable``'s ``Table``, or ``None`` when the table does not exist."""
        try:
            return self._client.describe_table(TableName=name)["Table"]
        except Exception as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise classify(exc, f"describe {name}") from exc

    def create(self, spec: Mapping[str, Any]) -> None:
        """``CreateTable`` with a CreateTable-shaped ``spec``, then wait until ACTIVE."""
        with calling(f"create {spec['TableName']}"):
            self._client.create_table(**spec)
        self.wait_active(spec["TableName"])

    def update(self, request: UpdateTableInputTypeDef) -> None:
        """``UpdateTable`` (one change at a time, as DynamoDB requires), then wait."""
        name = request["TableName"]
        with calling(f"update {name}"):
            self._client.update_table(**request)
        self.wait_active(name)

    def ttl_enabled(self, name: str) -> bool:
        """Whether TTL is enabled (or being enabled) on the table."""
        with calling(f"describe TTL of {name}"):
            desc = self._client.describe_time_to_live(TableName=name)
        status = desc.get("TimeToLiveDescription", {}).get("TimeToLiveStatus")
        return status in ("ENABLED", "ENABLING")

    def enable_ttl(self, name: str, attribute: str) -> None:
        """Turn TTL on for ``attribute``."""
        with calling(f"enable TTL on {name}"):
            self._client.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute},
            )

    def wait_active(self, name: str, timeout: float = 300) -> None:
        """Wait until the table and its indexes are ACTIVE."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            table = self.describe(name)
            busy = (
                table is None
                or table["TableStatus"] != "ACTIVE"
                or any(
                    i.get("IndexStatus", "ACTIVE") != "ACTIVE"
                    for i in table.get("GlobalSecondaryIndexes", [])
                )
            )
            if not busy:
                return
            self._sleep(0.5)
        raise TransientError(f"table {name} did not become ACTIVE within {timeout:.0f}s")

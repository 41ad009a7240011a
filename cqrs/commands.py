"""The write path: validate, resolve the base version, write one command item.

A command is written as ``<base sk>@<N+1>`` with the condition
``attribute_not_exists(pk) AND attribute_not_exists(sk)``, so of two writers
based on the same version exactly one wins; the other gets
:class:`~cqrs.errors.VersionConflictError` and nothing is written.

Requests per publish: version 0 → 1 ``PutItem``; version N → 1 ``GetItem`` of
the base command + 1 ``PutItem``; version -1 → 1 ``GetItem`` (data version) + 1
``BatchGetItem`` (a window of command versions from there) + 1 ``PutItem``.
``publish_sync`` adds the projection (see :mod:`cqrs.projection`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic

from .batch import batch_get
from .clients import dynamo_errors, error_code, translate
from .codec import Item, deserialize, item_size, serialize
from .errors import (
    CommandNotAppliedError,
    InterfaceError,
    InvalidAttributesError,
    ItemTooLargeError,
    NotFoundError,
    SyncTimeoutError,
    TenantMismatchError,
    VersionConflictError,
)
from .items import is_dirty
from .keys import (
    VERSION_FIRST,
    VERSION_LATEST,
    add_version,
    check_tenant,
    make_id,
    remove_version,
    validate_key,
    validate_part,
    version_of,
)
from .merge import deep_merge
from .models import AttrT, Command, CommandInput, CommandPartialInput, InvokeContext, now_iso

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from .entity import EntitySpec
    from .projection import Projector
    from .schema import EntityTables

MAX_ITEM_BYTES = 400 * 1024
_LATEST_WINDOW = 10  # command versions fetched per BatchGetItem when looking for the latest


class CommandService(Generic[AttrT]):
    """Publishes commands of one entity."""

    def __init__(
        self,
        client: DynamoDBClient,
        tables: EntityTables,
        spec: EntitySpec[AttrT],
        projector: Projector,
    ) -> None:
        self._client = client
        self.tables = tables
        self._spec = spec
        self._projector = projector

    # -- publishing --------------------------------------------------------------

    def publish_async(self, input: CommandInput, context: InvokeContext) -> Command[AttrT] | None:
        """Write a full command; the synchronizer projects it later.

        Returns the stored command, or ``None`` if it changes nothing ("not dirty").
        """
        return self._publish(self._prepare_full(input, context), project=False)

    def publish_sync(self, input: CommandInput, context: InvokeContext) -> Command[AttrT] | None:
        """Write a full command and project it into data and history before returning."""
        return self._publish(self._prepare_full(input, context), project=True)

    def publish_partial_update_async(
        self, input: CommandPartialInput, context: InvokeContext
    ) -> Command[AttrT] | None:
        """Deep-merge ``input`` into its base command and write the result."""
        return self._publish(self._prepare_partial(input, context), project=False)

    def publish_partial_update_sync(
        self, input: CommandPartialInput, context: InvokeContext
    ) -> Command[AttrT] | None:
        """Partial update, projected into data and history before returning."""
        return self._publish(self._prepare_partial(input, context), project=True)

    def duplicate(self, pk: str, sk: str, context: InvokeContext) -> Command[AttrT]:
        """Re-publish a command (``sk`` with ``@version``, or the latest) as a new version.

        Useful to re-run projections. The copy is written even though it is not dirty.
        """
        base_sk = remove_version(sk)
        self._check_key(pk, base_sk, context)
        version = version_of(sk)
        base = self._get_command(pk, base_sk, version) if version else self._latest(pk, base_sk)
        if base is None:
            raise NotFoundError(f"no command {pk} / {sk} to duplicate")
        latest = self._latest(pk, base_sk) if version else base
        assert latest is not None
        command = self._publish(self._next_item(base, latest, context), project=False)
        assert command is not None
        return command

    # -- reading commands --------------------------------------------------------
    # Each takes ``context`` like every DataService/HistoryService read: without it a
    # tenant-scoped caller had no way to refuse another tenant's commands.

    def get(
        self,
        pk: str,
        sk: str,
        version: int | None = None,
        *,
        context: InvokeContext | None = None,
    ) -> Command[AttrT] | None:
        """One stored command: ``version`` (or the version in ``sk``), else the latest.

        With ``context``, a key of another tenant raises :class:`TenantMismatchError`.
        """
        base_sk = remove_version(sk)
        validate_key(pk, base_sk)
        check_tenant(pk, context)
        version = version if version is not None else version_of(sk)
        item = self._get_command(pk, base_sk, version) if version else self._latest(pk, base_sk)
        return self._spec.command_model(item) if item else None

    def latest_version(self, pk: str, sk: str, *, context: InvokeContext | None = None) -> int:
        """The latest accepted version of an entity (0 if none)."""
        validate_key(pk, remove_version(sk))
        check_tenant(pk, context)
        item = self._latest(pk, remove_version(sk))
        return int(item["version"]) if item else 0

    def is_applied(
        self, pk: str, sk: str, version: int, *, context: InvokeContext | None = None
    ) -> bool:
        """True once the read model reflects ``version`` (data version ≥ version)."""
        check_tenant(pk, context)
        return self._data_version(pk, remove_version(sk)) >= version

    def wait_until_applied(
        self,
        pk: str,
        sk: str,
        version: int,
        *,
        timeout: float = 10.0,
        interval: float = 0.05,
        context: InvokeContext | None = None,
    ) -> None:
        """Block until the read model reflects ``version``, polling with backoff.

        Raises :class:`~cqrs.errors.SyncTimeoutError` after ``timeout`` seconds. Something
        must be synchronizing (Lambda, ``cqrs sync --follow`` or ``cqrs dev``).
        """
        check_tenant(pk, context)
        deadline = time.monotonic() + timeout
        while not self.is_applied(pk, sk, version):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SyncTimeoutError(
                    f"{pk} / {sk} version {version} not applied within {timeout:g}s "
                    f"(data is at {self._data_version(pk, remove_version(sk))}); "
                    "is a synchronizer running?"
                )
            time.sleep(min(interval, remaining))
            interval = min(interval * 2, 1.0)

    # -- preparation -------------------------------------------------------------

    def _prepare_full(self, input: CommandInput, context: InvokeContext) -> Item | None:
        validate_key(input.pk, input.sk)
        validate_part("code", input.code)
        validate_part("tenant code", input.tenant_code)
        self._check_key(input.pk, input.sk, context)
        if input.tenant_code != context.tenant_code:
            raise TenantMismatchError(input.tenant_code, context.tenant_code)
        if input.version < VERSION_LATEST:
            raise InterfaceError(f"version must be >= -1, got {input.version}")
        candidate = {
            "pk": input.pk,
            "sk": input.sk,
            "id": input.id or make_id(input.pk, input.sk),
            "code": input.code,
            "name": input.name,
            "tenantCode": input.tenant_code,
            "type": input.type,
            "isDeleted": input.is_deleted,
            "seq": input.seq,
            "ttl": input.ttl,
            "attributes": self._spec.dump_attributes(input.attributes),
            "source": input.source,
        }
        if input.version == VERSION_FIRST:
            return self._first_item(candidate, context)
        if input.version == VERSION_LATEST:
            base = self._latest(input.pk, input.sk)
            if base is None:
                return self._first_item(candidate, context)
        else:
            base = self._get_command(input.pk, input.sk, input.version)
            if base is None:
                raise VersionConflictError(
                    input.pk, input.sk, input.version, self._latest_version_or_none(input)
                )
        if not is_dirty(base, candidate):
            return None
        return self._next_item(candidate, base, context)

    def _prepare_partial(self, input: CommandPartialInput, context: InvokeContext) -> Item | None:
        self._check_key(input.pk, input.sk, context)
        if input.version < VERSION_LATEST:
            raise InterfaceError(f"version must be >= -1, got {input.version}")
        if input.version > VERSION_FIRST:
            base = self._get_command(input.pk, input.sk, input.version)
            if base is None:
                latest = self._latest_version_or_none(input)
                if latest is not None:  # the entity exists: the base is stale or unknown
                    raise VersionConflictError(input.pk, input.sk, input.version, latest)
        else:
            base = self._latest(input.pk, input.sk)
        if base is None:
            raise NotFoundError(f"no command {input.pk} / {input.sk} to update partially")
        patch: dict[str, Any] = {}
        for name in input.model_fields_set - {"pk", "sk", "version", "attributes"}:
            value = getattr(input, name)
            if value is None and name in ("code", "name", "type"):
                continue  # required fields cannot be cleared: None means "unchanged"
            alias = type(input).model_fields[name].alias or name
            patch[alias] = value
        if "code" in patch:
            validate_part("code", patch["code"])
        if input.attributes is not None:
            raw = input.attributes
            if hasattr(raw, "model_dump"):
                raw = raw.model_dump(mode="json", exclude_unset=True)
            if not isinstance(raw, Mapping):
                raise InterfaceError("partial attributes must be a mapping or a pydantic model")
            patch["attributes"] = deep_merge(base.get("attributes") or {}, raw)
        candidate = {**base, **patch}
        candidate["attributes"] = self._spec.dump_attributes(candidate.get("attributes") or {})
        if not is_dirty(base, candidate):
            return None
        return self._next_item(candidate, base, context)

    def _first_item(self, candidate: Item, context: InvokeContext) -> Item:
        now = now_iso()
        return {
            **candidate,
            "sk": add_version(candidate["sk"], 1),
            "version": 1,
            "requestId": context.request_id,
            "createdAt": now,
            "createdBy": context.user_id,
            "createdIp": context.source_ip,
            "updatedAt": now,
            "updatedBy": context.user_id,
            "updatedIp": context.source_ip,
        }

    def _next_item(self, candidate: Item, base: Item, context: InvokeContext) -> Item:
        version = int(base["version"]) + 1
        item = {k: v for k, v in candidate.items() if k not in ("cpk", "csk", "status")}
        item.update(
            sk=add_version(base["sk"], version),
            version=version,
            requestId=context.request_id,
            updatedAt=now_iso(),
            updatedBy=context.user_id,
            updatedIp=context.source_ip,
        )
        for field in ("createdAt", "createdBy", "createdIp"):  # kept from version 1 on
            item[field] = base.get(field)
        return item

    def _check_key(self, pk: str, sk: str, context: InvokeContext) -> None:
        validate_key(pk, sk)
        validate_part("tenant code", context.tenant_code)
        check_tenant(pk, context)

    # -- writing -----------------------------------------------------------------

    def _publish(self, item: Item | None, *, project: bool) -> Command[AttrT] | None:
        if item is None:
            return None
        self._write(item)
        command = self._spec.command_model(item)
        if project:
            outcome = self._projector.apply([item])[(item["pk"], remove_version(item["sk"]))]
            if outcome.error is not None:  # stored all the same: say so, or callers republish
                raise CommandNotAppliedError(
                    f"command {item['pk']} / {item['sk']} is stored, but applying it to "
                    f"{self.tables.data} failed (the stream will apply it): {outcome.error}",
                    command=command,
                    cause=outcome.error,
                ) from outcome.error
        return command

    def _write(self, item: Item) -> None:
        try:
            wire = serialize(item)
        except TypeError as exc:  # boto3 refuses the value (datetime, NaN, arbitrary objects)
            raise InvalidAttributesError(
                f"command {item['pk']} / {item['sk']} cannot be stored in DynamoDB: {exc}",
                cause=exc,
            ) from exc
        size = item_size(wire)
        if size > MAX_ITEM_BYTES:
            raise ItemTooLargeError(
                f"command {item['pk']} / {item['sk']} is about {size} bytes; DynamoDB's item "
                f"limit is {MAX_ITEM_BYTES}: keep large payloads in S3 and store a reference"
            )
        try:
            self._client.put_item(
                TableName=self.tables.command,
                Item=wire,
                ConditionExpression="attribute_not_exists(pk) AND attribute_not_exists(sk)",
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                base_sk = remove_version(item["sk"])
                actual = self._latest(item["pk"], base_sk)
                raise VersionConflictError(
                    item["pk"],
                    base_sk,
                    int(item["version"]) - 1,
                    int(actual["version"]) if actual else None,
                    cause=exc,
                ) from exc
            raise translate(exc, f"put {self.tables.command}") from exc

    # -- reads -------------------------------------------------------------------

    def _get_command(self, pk: str, sk: str, version: int) -> Item | None:
        with dynamo_errors(f"get {self.tables.command}"):
            resp = self._client.get_item(
                TableName=self.tables.command,
                Key=serialize({"pk": pk, "sk": add_version(sk, version)}),
                ConsistentRead=True,
            )
        return deserialize(resp["Item"]) if "Item" in resp else None

    def _data_version(self, pk: str, sk: str) -> int:
        with dynamo_errors(f"get {self.tables.data}"):
            resp = self._client.get_item(
                TableName=self.tables.data,
                Key=serialize({"pk": pk, "sk": sk}),
                ConsistentRead=True,
                ProjectionExpression="#v",
                ExpressionAttributeNames={"#v": "version"},
            )
        return int(deserialize(resp.get("Item", {})).get("version", 0))

    def _latest(self, pk: str, sk: str) -> Item | None:
        """The latest command: start at the data row's version, read a window per request."""
        return latest_command(
            self._client, self.tables.command, pk, sk, max(self._data_version(pk, sk), 1)
        )

    def _latest_version_or_none(self, input: CommandInput | CommandPartialInput) -> int | None:
        latest = self._latest(input.pk, input.sk)
        return int(latest["version"]) if latest else None


def latest_command(client: DynamoDBClient, table: str, pk: str, sk: str, start: int) -> Item | None:
    """The latest of the contiguous command versions from ``start`` on (``None`` if ``start``
    itself is absent): one ``BatchGetItem`` per window of versions, never one read per version."""
    latest: Item | None = None
    while True:
        versions = range(start, start + _LATEST_WINDOW)
        keys = [{"pk": pk, "sk": add_version(sk, v)} for v in versions]
        found = {int(i["version"]): i for i in batch_get(client, table, keys)}
        for v in versions:  # versions are contiguous: stop at the first hole
            if v not in found:
                return latest
            latest = found[v]
        start += _LATEST_WINDOW

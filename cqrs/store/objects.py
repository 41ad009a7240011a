"""Large attributes in S3, as MBC keeps them: the only code in ``cqrs`` that calls S3.

With a bucket configured (``CQRS_S3_BUCKET``), a command whose ``attributes`` take more
than the limit (``CQRS_ATTRIBUTE_LIMIT_SIZE`` bytes of compact JSON, MBC's
``objectBytes``), or would not fit DynamoDB's item limit inline, has them written to
``ddb/{table}/{pk}/{sk}/{ulid}.json`` and stores ``s3://{bucket}/{key}`` instead
(:mod:`cqrs.core.large`). Its data row and history items keep that same pointer, so
projecting it costs no S3 request. Reads that hand attributes to users resolve a
pointer with one ``GetObject``, whoever wrote it; without a bucket nothing is offloaded
but pointers are still read (the bucket is in the pointer).

Objects are never deleted by the framework, as MBC never deletes them: a command, its
data row and its history items may share one, and an expired command version's may
still be the data row's. Expire them by age with an S3 lifecycle rule only if every
row that points to them may lose its attributes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from ..core.errors import ConfigurationError, InvalidEventError
from ..core.items import Attributes, CommandItem, DataItem, Item, StoredValue
from ..core.large import DEFAULT_ATTRIBUTE_LIMIT, AttributesRef, is_pointer, object_key
from ..core.ulid import UlidFactory
from .calls import calling

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
_R = TypeVar("_R", CommandItem, DataItem)


class AttributeObjects:
    """Writes large ``attributes`` to S3 and reads them back. One per app; thread-safe.

    ``client``: a boto3 S3 client, or a function building one on first use (the
    handler's cold start does not pay for it unless a pointer is met), or ``None``
    (then meeting a pointer is a :class:`~cqrs.core.errors.ConfigurationError`).
    ``bucket``: where new objects go; ``None`` offloads nothing.
    """

    def __init__(
        self,
        client: S3Client | Callable[[], S3Client] | None = None,
        *,
        bucket: str | None = None,
        limit: int = DEFAULT_ATTRIBUTE_LIMIT,
    ) -> None:
        self._client = client
        self.bucket = bucket
        self.limit = limit
        self._lock = threading.Lock()
        self._ulid = UlidFactory(time.time)

    @property
    def enabled(self) -> bool:
        """Whether large attributes are offloaded (a bucket is configured)."""
        return self.bucket is not None

    @property
    def client(self) -> S3Client:
        """The S3 client, built on first use."""
        with self._lock:
            if self._client is None:
                raise ConfigurationError(
                    "an item's attributes are kept in S3, but these clients have no S3 "
                    "client: build them with make_clients(settings) or pass "
                    "Clients(..., objects=AttributeObjects(s3_client))"
                )
            if not hasattr(self._client, "get_object"):  # the factory: build it once
                self._client = self._client()
            return self._client  # type: ignore[return-value]

    def ensure_bucket(self, region: str) -> bool:
        """Create the bucket in ``region`` if it does not exist (local engines: ``cqrs
        dev``, tests; on AWS the template creates it). Whether it was created."""
        if self.bucket is None:
            return False
        with calling(f"list buckets for {self.bucket}"):
            names = {b.get("Name") for b in self.client.list_buckets().get("Buckets", [])}
            if self.bucket in names:
                return False
            where: Any = {"LocationConstraint": region} if region != "us-east-1" else {}
            self.client.create_bucket(Bucket=self.bucket, CreateBucketConfiguration=where)
        return True

    def encoded(self, attributes: Mapping[str, StoredValue]) -> bytes | None:
        """``attributes`` as MBC stores them in S3 (compact UTF-8 JSON); ``None`` when
        JSON cannot hold them (sets, binary, non-finite numbers): those stay inline."""
        try:
            text = json.dumps(
                attributes, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                default=_json_number,
            )  # fmt: skip
        except (TypeError, ValueError):
            return None
        return text.encode()

    def offload(
        self,
        table: str,
        pk: str,
        sk: str,
        attributes: Mapping[str, StoredValue],
        *,
        force: bool = False,
    ) -> AttributesRef | None:
        """Write ``attributes`` of item ``pk``/``sk`` of ``table`` to S3 when they are over
        the limit (or ``force``: the item does not fit inline); the pointer, else ``None``
        (no bucket, small enough, or not JSON). One ``PutObject``."""
        body = self.encoded(attributes) if self.bucket is not None else None
        if self.bucket is None or body is None or (len(body) <= self.limit and not force):
            return None
        ref = AttributesRef(self.bucket, object_key(table, pk, sk, self._ulid()))
        with calling(f"put {ref.uri}"):
            self.client.put_object(
                Bucket=ref.bucket, Key=ref.key, Body=body, ContentType="application/json"
            )
        return ref

    def load(self, ref: AttributesRef) -> Attributes:
        """The attributes kept at ``ref`` (one ``GetObject``). A missing object is a
        :class:`~cqrs.core.errors.MissingAttributesObjectError`; one that is not a JSON
        object an :class:`~cqrs.core.errors.InvalidEventError`."""
        with calling(f"get {ref.uri}"):
            body = self.client.get_object(Bucket=ref.bucket, Key=ref.key)["Body"].read()
        try:
            value = json.loads(body)
        except ValueError as exc:
            raise InvalidEventError(f"{ref.uri} is not JSON: {exc}", cause=exc) from exc
        if not isinstance(value, dict):
            raise InvalidEventError(f"{ref.uri} holds {type(value).__name__}, not an object")
        return value

    def delete(self, ref: AttributesRef) -> None:
        """Delete the object at ``ref`` (one ``DeleteObject``): for an object nothing
        points to, such as the one of a command that lost its version race."""
        with calling(f"delete {ref.uri}"):
            self.client.delete_object(Bucket=ref.bucket, Key=ref.key)

    def resolved(self, record: _R) -> _R:
        """``record`` with its attributes loaded if they are a pointer (else ``record``)."""
        if isinstance(record.attributes, AttributesRef):
            return replace(record, attributes=self.load(record.attributes))
        return record

    def resolve(self, item: Item) -> Item:
        """``item`` with a pointer in ``attributes`` replaced by what it points to (a
        copy; ``item`` itself when it holds none). Every read that hands a stored item to
        a user goes through here."""
        value = item.get("attributes")
        if not isinstance(value, str) or not is_pointer(value):
            return item
        return {**item, "attributes": self.load(AttributesRef.parse(value))}


def _json_number(value: object) -> int | float:
    """JSON for a ``Decimal`` (what DynamoDB's numbers decode to elsewhere): a number."""
    if isinstance(value, Decimal) and value.is_finite():
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{value!r} cannot be kept in JSON")

"""Attributes kept in S3: the pointer MBC stores in place of a large ``attributes`` map.

MBC CQRS Serverless (``data-store/dynamodb.service.ts``) writes ``attributes`` larger
than ``ATTRIBUTE_LIMIT_SIZE`` to S3 as JSON at ``ddb/{table}/{pk}/{sk}/{ulid}.json``
and stores the string ``s3://{bucket}/{key}`` instead. Inside the framework such a
pointer is an :class:`AttributesRef`: a command or row read from a stream image or
scanned for projection carries it as is, so projecting it writes the same pointer
(no S3 request), and every read that hands attributes to a user resolves it
(:class:`cqrs.store.objects.AttributeObjects`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidEventError

#: Offload threshold by default, in bytes of compact JSON (100 KB). MBC has no default in
#: code (its templates set 389120); an item over DynamoDB's limit is offloaded anyway.
DEFAULT_ATTRIBUTE_LIMIT = 102_400

#: What an ``attributes`` string starts with when it points to S3 (MBC's ``S3_PREFIX``).
S3_SCHEME = "s3://"


@dataclass(frozen=True)
class AttributesRef:
    """Where an item's ``attributes`` are kept: ``s3://<bucket>/<key>``."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        """The stored form, ``s3://<bucket>/<key>``."""
        return f"{S3_SCHEME}{self.bucket}/{self.key}"

    @classmethod
    def parse(cls, text: str) -> AttributesRef:
        """The pointer ``text`` (``s3://<bucket>/<key>``); a string that is not one is an
        :class:`~cqrs.core.errors.InvalidEventError`."""
        bucket, slash, key = text.removeprefix(S3_SCHEME).partition("/")
        if not text.startswith(S3_SCHEME) or not bucket or not slash or not key:
            raise InvalidEventError(
                f"'attributes' must be a map or an S3 pointer 's3://<bucket>/<key>', "
                f"got {text[:200]!r}"
            )
        return cls(bucket, key)


#: What S3 accepts as a bucket name: 3-63 lowercase letters, digits, dots and hyphens.
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def is_pointer(value: object) -> bool:
    """Whether a stored ``attributes`` value points to S3 (MBC's ``isS3AttributeKey``)."""
    return isinstance(value, str) and value.startswith(S3_SCHEME)


def object_key(table: str, pk: str, sk: str, unique: str) -> str:
    """The S3 key MBC gives the attributes of item ``pk``/``sk`` of ``table``."""
    return f"ddb/{table}/{pk}/{sk}/{unique}.json"

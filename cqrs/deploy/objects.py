"""The S3 bucket of large attributes in the template (:mod:`cqrs.store.objects`).

Functions that read or write entities get ``CQRS_S3_BUCKET`` and access to the
objects the framework (and MBC) keep there, ``ddb/*``, and nothing else of the
bucket: ``GetObject`` to resolve a pointer, ``PutObject`` to offload a command's
attributes, ``DeleteObject`` to remove the object of a command that lost its
version race. The task sweep touches no entity and gets none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.errors import ConfigurationError
from ..core.large import BUCKET_NAME

#: What functions may do with the bucket's objects, and where (MBC's key layout).
OBJECT_ACTIONS: tuple[str, ...] = ("s3:DeleteObject", "s3:GetObject", "s3:PutObject")
OBJECT_PREFIX = "ddb/"


@dataclass(frozen=True)
class AttributesBucket:
    """Where large attributes are kept: a bucket the stack creates (``existing`` unset),
    or one that exists already, such as the bucket an MBC service of the same tables
    uses (both sides must use the same one)."""

    existing: str | None = None
    logical_id: str = "AttributesBucket"

    def check(self) -> None:
        """Refuse a bucket name S3 would refuse."""
        if self.existing is not None and not BUCKET_NAME.fullmatch(self.existing):
            raise ConfigurationError(
                f"attributes bucket {self.existing!r} is not an S3 bucket name "
                "(3-63 lowercase letters, digits, dots and hyphens)"
            )

    def resources(self) -> dict[str, Any]:
        """The bucket (none for an existing one): private, encrypted, kept on delete,
        since rows point into it."""
        if self.existing is not None:
            return {}
        public = (
            "BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"
        )  # fmt: skip
        return {
            self.logical_id: {
                "Type": "AWS::S3::Bucket",
                "DeletionPolicy": "Retain",
                "UpdateReplacePolicy": "Retain",
                "Properties": {
                    "BucketEncryption": {
                        "ServerSideEncryptionConfiguration": [
                            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                        ]
                    },
                    "PublicAccessBlockConfiguration": dict.fromkeys(public, True),
                    "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                },
            }
        }

    @property
    def name(self) -> str | dict[str, str]:
        """The bucket's name as the template spells it (``CQRS_S3_BUCKET``)."""
        return self.existing if self.existing is not None else {"Ref": self.logical_id}

    def statement(self) -> dict[str, Any]:
        """Object access under ``ddb/`` of this bucket, nothing else."""
        if self.existing is not None:
            arn: Any = f"arn:${{AWS::Partition}}:s3:::{self.existing}/{OBJECT_PREFIX}*"
        else:
            arn = f"${{{self.logical_id}.Arn}}/{OBJECT_PREFIX}*"
        return {
            "Sid": "AttributesObjects",
            "Effect": "Allow",
            "Action": list(OBJECT_ACTIONS),
            "Resource": [{"Fn::Sub": arn}],
        }

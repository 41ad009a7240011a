"""DynamoDB Streams reads for the local follower: stream ARNs, shards, records."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .classify import classify, error_code

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient
    from mypy_boto3_dynamodbstreams.type_defs import (
        DescribeStreamInputTypeDef,
        GetShardIteratorInputTypeDef,
        RecordTypeDef,
        ShardTypeDef,
    )

#: Errors that mean a shard's data is gone (trimmed after 24 h, or the stream was replaced).
SHARD_GONE = ("ResourceNotFoundException", "TrimmedDataAccessException")


class StreamsGateway:
    """The stream API calls :class:`~cqrs.sync.follower.StreamFollower` makes."""

    def __init__(self, dynamodb: DynamoDBClient, streams: DynamoDBStreamsClient) -> None:
        self._dynamodb = dynamodb
        self._streams = streams

    def stream_arn(self, table: str) -> str | None:
        """The latest stream ARN of ``table`` if its stream is enabled."""
        try:
            desc = self._dynamodb.describe_table(TableName=table)["Table"]
        except Exception as exc:
            raise classify(exc, f"describe {table}") from exc
        spec = desc.get("StreamSpecification")
        arn = desc.get("LatestStreamArn")
        if arn and (spec is None or spec.get("StreamEnabled", True)):
            return str(arn)
        return None

    def shards(self, arn: str) -> list[ShardTypeDef]:
        """Every shard of a stream (all ``DescribeStream`` pages)."""
        shards: list[ShardTypeDef] = []
        start: str | None = None
        while True:
            kwargs: DescribeStreamInputTypeDef = {"StreamArn": arn}
            if start:
                kwargs["ExclusiveStartShardId"] = start
            try:
                desc = self._streams.describe_stream(**kwargs)["StreamDescription"]
            except Exception as exc:
                raise classify(exc, f"describe stream {arn}") from exc
            shards.extend(desc.get("Shards", []))
            start = desc.get("LastEvaluatedShardId")
            if not start:
                return shards

    def iterator(self, arn: str, shard: str, after: str | None) -> str | None:
        """A shard iterator after sequence number ``after`` (else at the trim horizon);
        ``None`` when the shard is gone."""
        kwargs: GetShardIteratorInputTypeDef = {
            "StreamArn": arn,
            "ShardId": shard,
            "ShardIteratorType": "TRIM_HORIZON",
        }
        if after:
            kwargs["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
            kwargs["SequenceNumber"] = after
        try:
            iterator = self._streams.get_shard_iterator(**kwargs).get("ShardIterator")
        except Exception as exc:
            if error_code(exc) in SHARD_GONE:
                return None
            raise classify(exc, f"shard iterator {arn} {shard}") from exc
        return str(iterator) if iterator else None

    def records(self, arn: str, iterator: str, limit: int) -> Iterator[list[RecordTypeDef]]:
        """Pages of raw ``GetRecords`` records from ``iterator`` until a page comes back empty.

        An open shard always hands back a next iterator; on local engines an empty read
        means its current end, so reading stops there.
        """
        next_iterator: str | None = iterator
        while next_iterator:
            try:
                response = self._streams.get_records(ShardIterator=next_iterator, Limit=limit)
            except Exception as exc:
                raise classify(exc, f"get records {arn}") from exc
            records = response.get("Records", [])
            if not records:
                return
            next_iterator = response.get("NextShardIterator")
            yield list(records)

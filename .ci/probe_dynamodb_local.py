"""Probe what a DynamoDB engine supports: DynamoDB Local (by URL) and/or moto.

    python .ci/probe_dynamodb_local.py --endpoint http://127.0.0.1:8000   # DynamoDB Local
    python .ci/probe_dynamodb_local.py --moto                             # in-process moto
    python .ci/probe_dynamodb_local.py --endpoint URL --moto               # both, side by side

Each probe prints one line: ``id  engine  result``. ``--verbose`` also prints
a sample stream record and raw error responses. Exit code is always 0 unless
the script itself breaks: the probes record behaviour, they don't assert it.

z1/z2 (DynamoDB Local only) check the -sharedDb hazard: without -sharedDb,
a request under another access key/region resets the stream sequence counter,
and later writes to stream-enabled tables fail (InternalFailure) or get
sequence numbers lower than older records. .ci/dynamodb-local.sh starts the
engine with -sharedDb for that reason.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
os.environ.pop("AWS_SESSION_TOKEN", None)

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError

REGION = "ap-northeast-1"
VERBOSE = False


def _err(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        e = exc.response.get("Error", {})
        return f"ERROR {e.get('Code')}: {e.get('Message')}"
    return f"ERROR {type(exc).__name__}: {exc}"


class Engine:
    def __init__(self, name: str, endpoint: str | None) -> None:
        self.name = name
        cfg = Config(retries={"mode": "standard", "max_attempts": 2})
        self.ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION, config=cfg)
        self.streams = boto3.client(
            "dynamodbstreams", endpoint_url=endpoint, region_name=REGION, config=cfg
        )
        self.endpoint = endpoint
        self.prefix = f"probe-{uuid.uuid4().hex[:6]}-"
        self.results: list[tuple[str, str]] = []

    def t(self, name: str) -> str:
        return self.prefix + name

    def record(self, pid: str, outcome: str) -> None:
        self.results.append((pid, outcome))
        print(f"{pid:<34} {self.name:<8} {outcome}", flush=True)

    def run(self, pid: str, fn: Callable[[], str | None]) -> None:
        try:
            out = fn()
            if out and (out.startswith("ERROR") or out.startswith("NO ERROR")):
                self.record(pid, out)  # the probe expected (and caught) an error
            else:
                self.record(pid, "works" + (f"; {out}" if out else ""))
        except (ClientError, ParamValidationError) as exc:
            self.record(pid, _err(exc))
        except Exception as exc:  # the probe itself, or an engine crash
            self.record(pid, f"EXCEPTION {type(exc).__name__}: {exc}")


KEYS = {
    "KeySchema": [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ],
}
ATTRS = [
    {"AttributeName": "pk", "AttributeType": "S"},
    {"AttributeName": "sk", "AttributeType": "S"},
]
GSI_ATTRS = [
    {"AttributeName": "tenantCode", "AttributeType": "S"},
    {"AttributeName": "code", "AttributeType": "S"},
]
GSI = {
    "IndexName": "code-index",
    "KeySchema": [
        {"AttributeName": "tenantCode", "KeyType": "HASH"},
        {"AttributeName": "code", "KeyType": "RANGE"},
    ],
    "Projection": {"ProjectionType": "ALL"},
}
STREAM = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}


def s(v: str) -> dict[str, str]:
    return {"S": v}


def key(pk: str, sk: str = "0") -> dict[str, Any]:
    return {"pk": s(pk), "sk": s(sk)}


# ---------------------------------------------------------------- streams helpers


def stream_arn(e: Engine, table: str) -> str:
    return e.ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]


def read_stream(e: Engine, arn: str) -> list[dict[str, Any]]:
    """Every record currently in the stream, all shards, from TRIM_HORIZON."""
    out: list[dict[str, Any]] = []
    desc = e.streams.describe_stream(StreamArn=arn)["StreamDescription"]
    for shard in desc["Shards"]:
        it = e.streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for _ in range(20):
            if not it:
                break
            resp = e.streams.get_records(ShardIterator=it)
            out.extend(resp["Records"])
            it = resp.get("NextShardIterator")
            if not resp["Records"]:
                break
    return out


def events_for(records: list[dict[str, Any]], pk: str) -> list[str]:
    return [r["eventName"] for r in records if r["dynamodb"]["Keys"]["pk"]["S"] == pk]


# ---------------------------------------------------------------- probes


def probe_all(e: Engine) -> None:
    ddb = e.ddb
    data, cmd, plain, other = e.t("data"), e.t("command"), e.t("plain"), e.t("other")

    # a. tables
    def create_full() -> str:
        ddb.create_table(
            TableName=data,
            AttributeDefinitions=ATTRS + GSI_ATTRS,
            BillingMode="PAY_PER_REQUEST",
            GlobalSecondaryIndexes=[GSI],
            StreamSpecification=STREAM,
            **KEYS,
        )
        ddb.get_waiter("table_exists").wait(TableName=data, WaiterConfig={"Delay": 1})
        t = ddb.describe_table(TableName=data)["Table"]
        billing = t.get("BillingModeSummary", {}).get("BillingMode")
        gsis = [(g["IndexName"], g.get("IndexStatus")) for g in t.get("GlobalSecondaryIndexes", [])]
        has_arn = "yes" if t.get("LatestStreamArn") else "no"
        return (
            f"status={t['TableStatus']} billing={billing} gsi={gsis} "
            f"stream={t.get('StreamSpecification')} arn={has_arn}"
        )

    e.run("a1 create PPR+GSI+stream", create_full)

    def create_plain() -> str:
        for name in (plain, other):
            ddb.create_table(
                TableName=name, AttributeDefinitions=ATTRS, BillingMode="PAY_PER_REQUEST", **KEYS
            )
            ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
        ddb.create_table(
            TableName=cmd,
            AttributeDefinitions=ATTRS,
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification=STREAM,
            **KEYS,
        )
        ddb.get_waiter("table_exists").wait(TableName=cmd, WaiterConfig={"Delay": 1})
        return None

    e.run("a0 create plain PPR tables", create_plain)

    def add_gsi() -> str:
        ddb.update_table(
            TableName=plain,
            AttributeDefinitions=ATTRS + GSI_ATTRS,
            GlobalSecondaryIndexUpdates=[{"Create": GSI}],
        )
        for _ in range(30):
            t = ddb.describe_table(TableName=plain)["Table"]
            st = [g.get("IndexStatus") for g in t.get("GlobalSecondaryIndexes", [])]
            if st == ["ACTIVE"]:
                break
            time.sleep(0.5)
        return f"index status={st} table={t['TableStatus']}"

    e.run("a2 update_table add GSI (no PT)", add_gsi)

    def gsi_query_after_add() -> str:
        ddb.put_item(
            TableName=plain,
            Item={**key("g1"), "tenantCode": s("t1"), "code": s("c1")},
        )
        r = ddb.query(
            TableName=plain,
            IndexName="code-index",
            KeyConditionExpression="tenantCode = :t",
            ExpressionAttributeValues={":t": s("t1")},
        )
        return f"count={r['Count']}"

    e.run("a2b query added GSI", gsi_query_after_add)

    def enable_stream() -> str:
        r = ddb.update_table(TableName=plain, StreamSpecification=STREAM)["TableDescription"]
        arn = r.get("LatestStreamArn") or stream_arn(e, plain)
        ddb.put_item(TableName=plain, Item=key("after-enable"))
        ev = events_for(read_stream(e, arn), "after-enable")
        return f"stream={r.get('StreamSpecification')} events-after-enable={ev}"

    e.run("a3 update_table enable stream", enable_stream)

    def ttl() -> str:
        r = ddb.update_time_to_live(
            TableName=data, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"}
        )
        d = ddb.describe_time_to_live(TableName=data)
        return f"update={r['TimeToLiveSpecification']} describe={d['TimeToLiveDescription']}"

    e.run("a4 update/describe TTL", ttl)

    def ttl_idempotent() -> str:
        ddb.update_time_to_live(
            TableName=data, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"}
        )
        return "second enable accepted"

    e.run("a4b TTL enable again (same attr)", ttl_idempotent)

    # b. streams
    arn_holder: dict[str, str] = {}

    def describe() -> str:
        arn = stream_arn(e, cmd)
        arn_holder["arn"] = arn
        d = e.streams.describe_stream(StreamArn=arn)["StreamDescription"]
        ls = e.streams.list_streams(TableName=cmd)["Streams"]
        return (
            f"status={d['StreamStatus']} view={d['StreamViewType']} shards={len(d['Shards'])} "
            f"shard0={d['Shards'][0] if d['Shards'] else None} list_streams={len(ls)} arn={arn}"
        )

    e.run("b1 describe_stream", describe)

    def put_and_read() -> str:
        arn = arn_holder["arn"]
        shard = e.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
        t0 = time.monotonic()
        ddb.put_item(TableName=cmd, Item={**key("p1"), "v": {"N": "1"}})
        it = e.streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        recs: list[dict[str, Any]] = []
        polls = 0
        while not recs and time.monotonic() - t0 < 10:
            resp = e.streams.get_records(ShardIterator=it)
            polls += 1
            recs = resp["Records"]
            it = resp["NextShardIterator"]
            if not recs:
                time.sleep(0.05)
        lag = time.monotonic() - t0
        if VERBOSE and recs:
            print(f"    [{e.name}] sample record:", json.dumps(recs[0], default=str))
        return f"records={len(recs)} first-seen-after={lag * 1000:.0f}ms polls={polls}"

    e.run("b2 TRIM_HORIZON + get_records", put_and_read)

    def after_seq() -> str:
        arn = arn_holder["arn"]
        ddb.put_item(TableName=cmd, Item={**key("p2"), "v": {"N": "1"}})
        recs = read_stream(e, arn)
        first = recs[0]["dynamodb"]["SequenceNumber"]
        shard = e.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
        it = e.streams.get_shard_iterator(
            StreamArn=arn,
            ShardId=shard["ShardId"],
            ShardIteratorType="AFTER_SEQUENCE_NUMBER",
            SequenceNumber=first,
        )["ShardIterator"]
        got = e.streams.get_records(ShardIterator=it)["Records"]
        seqs = [r["dynamodb"]["SequenceNumber"] for r in recs]
        first_after = got[0]["dynamodb"]["Keys"]["pk"]["S"] if got else None
        return (
            f"all={len(recs)} after-first={len(got)} first-after={first_after} "
            f"seq-sample={seqs[:2]} seq-type={type(first).__name__}"
        )

    e.run("b3 AFTER_SEQUENCE_NUMBER", after_seq)

    def at_seq_latest() -> str:
        arn = arn_holder["arn"]
        shard = e.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
        first = read_stream(e, arn)[0]["dynamodb"]["SequenceNumber"]
        it = e.streams.get_shard_iterator(
            StreamArn=arn,
            ShardId=shard["ShardId"],
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=first,
        )["ShardIterator"]
        at = len(e.streams.get_records(ShardIterator=it)["Records"])
        it = e.streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
        )["ShardIterator"]
        ddb.put_item(TableName=cmd, Item=key("p3"))
        latest = e.streams.get_records(ShardIterator=it)["Records"]
        return f"AT_SEQUENCE_NUMBER records={at}; LATEST then put -> records={len(latest)}"

    e.run("b3b AT_SEQUENCE_NUMBER / LATEST", at_seq_latest)

    def record_shape() -> str:
        recs = read_stream(e, arn_holder["arn"])
        r = recs[0]
        d = r["dynamodb"]
        return (
            f"top={sorted(r)} dynamodb={sorted(d)} eventSource={r.get('eventSource')} "
            f"awsRegion={r.get('awsRegion')} ACDT={d.get('ApproximateCreationDateTime')!r}"
        )

    e.run("b4 record shape", record_shape)

    def noop_put() -> str:
        item = {**key("noop"), "v": {"N": "1"}}
        ddb.put_item(TableName=cmd, Item=item)
        ddb.put_item(TableName=cmd, Item=item)
        time.sleep(0.3)
        return f"events={events_for(read_stream(e, arn_holder['arn']), 'noop')}"

    e.run("b5 identical put twice", noop_put)

    def noop_update() -> str:
        ddb.put_item(TableName=cmd, Item={**key("noopu"), "v": {"N": "1"}})
        ddb.update_item(
            TableName=cmd,
            Key=key("noopu"),
            UpdateExpression="SET v = :v",
            ExpressionAttributeValues={":v": {"N": "1"}},
        )
        time.sleep(0.3)
        return f"events={events_for(read_stream(e, arn_holder['arn']), 'noopu')}"

    e.run("b5b put then no-op update_item", noop_update)

    def update_creates() -> str:
        ddb.update_item(
            TableName=cmd,
            Key=key("upd"),
            UpdateExpression="SET v = :v",
            ExpressionAttributeValues={":v": {"N": "1"}},
        )
        time.sleep(0.3)
        recs = [
            r
            for r in read_stream(e, arn_holder["arn"])
            if r["dynamodb"]["Keys"]["pk"]["S"] == "upd"
        ]
        images = [sorted(k for k in r["dynamodb"] if k.endswith("Image")) for r in recs]
        return f"events={[r['eventName'] for r in recs]} images={images}"

    e.run("b6 update_item creating item", update_creates)

    def delete_event() -> str:
        ddb.delete_item(TableName=cmd, Key=key("upd"))
        ddb.delete_item(TableName=cmd, Key=key("never-existed"))
        time.sleep(0.3)
        recs = read_stream(e, arn_holder["arn"])
        return (
            f"upd={events_for(recs, 'upd')} delete-of-missing={events_for(recs, 'never-existed')}"
        )

    e.run("b7 delete_item (existing / missing)", delete_event)

    def ttl_in_stream_record_user_identity() -> str:
        recs = read_stream(e, arn_holder["arn"])
        return f"any userIdentity={any('userIdentity' in r for r in recs)}"

    e.run("b8 userIdentity present", ttl_in_stream_record_user_identity)

    # c. conditions
    cond = "attribute_not_exists(pk) AND attribute_not_exists(sk)"

    def cond_put_fail() -> str:
        ddb.put_item(TableName=cmd, Item={**key("c1"), "v": {"N": "1"}}, ConditionExpression=cond)
        try:
            ddb.put_item(
                TableName=cmd, Item={**key("c1"), "v": {"N": "2"}}, ConditionExpression=cond
            )
        except ClientError as exc:
            modeled = isinstance(exc, ddb.exceptions.ConditionalCheckFailedException)
            return f"{_err(exc)} (is ddb.exceptions.ConditionalCheckFailedException={modeled})"
        return "NO ERROR (condition not enforced!)"

    e.run("c1 put cond fail", cond_put_fail)

    def rvoccf(op: str) -> Callable[[], str]:
        def run() -> str:
            try:
                if op == "put":
                    ddb.put_item(
                        TableName=cmd,
                        Item={**key("c1"), "v": {"N": "3"}},
                        ConditionExpression=cond,
                        ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    )
                elif op == "update":
                    ddb.update_item(
                        TableName=cmd,
                        Key=key("c1"),
                        UpdateExpression="SET v = :v",
                        ConditionExpression="v = :old",
                        ExpressionAttributeValues={":v": {"N": "3"}, ":old": {"N": "99"}},
                        ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    )
                else:
                    ddb.delete_item(
                        TableName=cmd,
                        Key=key("c1"),
                        ConditionExpression="v = :old",
                        ExpressionAttributeValues={":old": {"N": "99"}},
                        ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    )
            except ClientError as exc:
                if VERBOSE:
                    print(
                        f"    [{e.name}] raw error response:", json.dumps(exc.response, default=str)
                    )
                return f"{_err(exc)}; response Item={exc.response.get('Item')}"
            return "NO ERROR"

        return run

    e.run("c2 put RVOCCF=ALL_OLD", rvoccf("put"))
    e.run("c3 update RVOCCF=ALL_OLD", rvoccf("update"))
    e.run("c4 delete RVOCCF=ALL_OLD", rvoccf("delete"))

    def tx_cancel() -> str:
        try:
            ddb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": cmd,
                            "Item": {**key("c1"), "v": {"N": "5"}},
                            "ConditionExpression": cond,
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    },
                    {"Put": {"TableName": cmd, "Item": key("tx-ok")}},
                ]
            )
        except ClientError as exc:
            if VERBOSE:
                print(f"    [{e.name}] raw error response:", json.dumps(exc.response, default=str))
            return f"{_err(exc)}; CancellationReasons={exc.response.get('CancellationReasons')}"
        return "NO ERROR"

    e.run("c5 transact cond fail + RVOCCF", tx_cancel)

    # d. batch / transactions
    def batch_write_25() -> str:
        reqs = [{"PutRequest": {"Item": {**key(f"b{i}"), "n": {"N": str(i)}}}} for i in range(25)]
        r = ddb.batch_write_item(RequestItems={other: reqs})
        return f"unprocessed={r.get('UnprocessedItems')}"

    e.run("d1 batch_write 25 puts", batch_write_25)

    def batch_write_26() -> str:
        reqs = [{"PutRequest": {"Item": key(f"x{i}")}} for i in range(26)]
        ddb.batch_write_item(RequestItems={other: reqs})
        return "26 accepted (no limit enforced)"

    e.run("d1b batch_write 26 puts", batch_write_26)

    def batch_get_two() -> str:
        r = ddb.batch_get_item(
            RequestItems={
                other: {"Keys": [key("b0"), key("b1"), key("missing")], "ConsistentRead": True},
                cmd: {"Keys": [key("c1")], "ConsistentRead": True},
            }
        )
        return (
            f"{ {t[len(e.prefix) :]: len(v) for t, v in r['Responses'].items()} } "
            f"unprocessed={r.get('UnprocessedKeys')}"
        )

    e.run("d2 batch_get 2 tables ConsistentRead", batch_get_two)

    def transact_ok() -> str:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": cmd, "Item": key("t1"), "ConditionExpression": cond}},
                {
                    "Update": {
                        "TableName": other,
                        "Key": key("b0"),
                        "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": other,
                        "Key": key("b1"),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
                {"Delete": {"TableName": other, "Key": key("b2")}},
            ],
            ClientRequestToken=uuid.uuid4().hex,
        )
        n = ddb.get_item(TableName=other, Key=key("b0"), ConsistentRead=True)["Item"]["n"]
        gone = "Item" not in ddb.get_item(TableName=other, Key=key("b2"))
        ev = events_for(read_stream(e, arn_holder["arn"]), "t1")
        return f"b0.n={n} b2 deleted={gone} stream events for tx put={ev}"

    e.run("d3 transact_write 4 kinds", transact_ok)

    def transact_get() -> str:
        r = ddb.transact_get_items(
            TransactItems=[
                {"Get": {"TableName": other, "Key": key("b0")}},
                {"Get": {"TableName": cmd, "Key": key("nope")}},
            ]
        )
        return f"responses={[bool(x.get('Item')) for x in r['Responses']]}"

    e.run("d4 transact_get_items", transact_get)

    def transact_same_item_twice() -> str:
        try:
            ddb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": other, "Item": key("dup")}},
                    {
                        "Update": {
                            "TableName": other,
                            "Key": key("dup"),
                            "UpdateExpression": "SET a = :a",
                            "ExpressionAttributeValues": {":a": s("x")},
                        }
                    },
                ]
            )
        except ClientError as exc:
            return _err(exc)
        return "NO ERROR (accepted two ops on one item)"

    e.run("d5 transact two ops same item", transact_same_item_twice)

    # e. queries / update expressions
    def gsi_query() -> str:
        for i in range(5):
            ddb.put_item(
                TableName=data,
                Item={**key(f"q{i}"), "tenantCode": s("T"), "code": s(f"code{i}")},
            )
        r = ddb.query(
            TableName=data,
            IndexName="code-index",
            KeyConditionExpression="tenantCode = :t AND begins_with(code, :c)",
            ExpressionAttributeValues={":t": s("T"), ":c": s("code")},
        )
        return f"count={r['Count']} first={r['Items'][0]['code']['S']}"

    e.run("e1 query GSI", gsi_query)

    def gsi_consistent() -> str:
        ddb.query(
            TableName=data,
            IndexName="code-index",
            ConsistentRead=True,
            KeyConditionExpression="tenantCode = :t",
            ExpressionAttributeValues={":t": s("T")},
        )
        return "accepted (real DynamoDB rejects ConsistentRead on a GSI)"

    e.run("e1b query GSI ConsistentRead=True", gsi_consistent)

    def paged() -> str:
        for i in range(5):
            ddb.put_item(TableName=other, Item=key("page", f"{i:03d}"))
        pages, lek = [], None
        for _ in range(10):
            kw: dict[str, Any] = {"ExclusiveStartKey": lek} if lek else {}
            r = ddb.query(
                TableName=other,
                KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": s("page")},
                Limit=2,
                **kw,
            )
            pages.append([i["sk"]["S"] for i in r["Items"]])
            lek = r.get("LastEvaluatedKey")
            if not lek:
                break
        return f"pages={pages}"

    e.run("e2 query Limit+ExclusiveStartKey", paged)

    def paged_gsi() -> str:
        pages, lek = [], None
        for _ in range(10):
            kw: dict[str, Any] = {"ExclusiveStartKey": lek} if lek else {}
            r = ddb.query(
                TableName=data,
                IndexName="code-index",
                KeyConditionExpression="tenantCode = :t",
                ExpressionAttributeValues={":t": s("T")},
                Limit=2,
                ScanIndexForward=False,
                **kw,
            )
            pages.append([i["code"]["S"] for i in r["Items"]])
            lek = r.get("LastEvaluatedKey")
            if not lek:
                break
        return f"pages={pages} last LEK keys={sorted(lek) if lek else None}"

    e.run("e2b GSI query Limit+ESK desc", paged_gsi)

    def if_not_exists() -> str:
        r1 = ddb.update_item(
            TableName=other,
            Key=key("ine"),
            UpdateExpression="SET a = if_not_exists(a, :v)",
            ExpressionAttributeValues={":v": s("first")},
            ReturnValues="ALL_NEW",
        )["Attributes"]["a"]
        r2 = ddb.update_item(
            TableName=other,
            Key=key("ine"),
            UpdateExpression="SET a = if_not_exists(a, :v)",
            ExpressionAttributeValues={":v": s("second")},
            ReturnValues="ALL_NEW",
        )["Attributes"]["a"]
        return f"first={r1} second={r2}"

    e.run("e3 SET if_not_exists", if_not_exists)

    def add_seq() -> str:
        out = []
        for _ in range(2):
            r = ddb.update_item(
                TableName=other,
                Key=key("seq-add"),
                UpdateExpression="ADD seq :n",
                ExpressionAttributeValues={":n": {"N": "1"}},
                ReturnValues="UPDATED_NEW",
            )
            out.append(r.get("Attributes"))
        return f"ADD x2 -> {out}"

    e.run("e4 ADD seq :n UPDATED_NEW", add_seq)

    def set_seq() -> str:
        out = []
        for _ in range(2):
            r = ddb.update_item(
                TableName=other,
                Key=key("seq-set"),
                UpdateExpression="SET seq = if_not_exists(seq, :z) + :n",
                ExpressionAttributeValues={":z": {"N": "0"}, ":n": {"N": "1"}},
                ReturnValues="UPDATED_NEW",
            )
            out.append(r.get("Attributes"))
        return f"SET x2 -> {out}"

    e.run("e5 SET seq=if_not_exists+:n", set_seq)

    def return_values_put() -> str:
        r = ddb.put_item(TableName=other, Item={**key("rv"), "a": s("1")}, ReturnValues="ALL_OLD")
        r2 = ddb.put_item(TableName=other, Item={**key("rv"), "a": s("2")}, ReturnValues="ALL_OLD")
        return f"first Attributes={r.get('Attributes')} second={r2.get('Attributes')}"

    e.run("e6 put ReturnValues=ALL_OLD", return_values_put)

    def empty_string() -> str:
        ddb.put_item(TableName=other, Item={**key("empty"), "e": s("")})
        return "empty string attribute accepted"

    e.run("e7 empty string non-key attr", empty_string)


def probe_isolation(e: Engine) -> None:
    """DynamoDB Local without -sharedDb keeps one database per access key + region."""

    def run() -> str:
        seen = {}
        for ak, region in (("other-key", REGION), ("local", "us-east-1")):
            c = boto3.client(
                "dynamodb",
                endpoint_url=e.endpoint,
                region_name=region,
                aws_access_key_id=ak,
                aws_secret_access_key="x",
            )
            names = c.list_tables()["TableNames"]
            seen[f"{ak}/{region}"] = sum(n.startswith(e.prefix) for n in names)
        mine = sum(n.startswith(e.prefix) for n in e.ddb.list_tables()["TableNames"])
        return f"own tables={mine}; visible to {seen}"

    e.run("z1 tables seen by other key/region", run)

    def stream_after_other_key() -> str:
        # z1 touched other key/region databases. Without -sharedDb, DynamoDB
        # Local 2020-01 then reuses stream sequence numbers already taken.
        ddb, table = e.ddb, e.t("command")
        arn = stream_arn(e, table)
        before = max(int(r["dynamodb"]["SequenceNumber"]) for r in read_stream(e, arn))
        fails = 0
        for i in range(10):
            try:
                ddb.put_item(TableName=table, Item=key(f"after-z1-{i}"))
            except ClientError as exc:
                fails += 1
                last = _err(exc)
        new = [
            int(r["dynamodb"]["SequenceNumber"])
            for r in read_stream(e, arn)
            if r["dynamodb"]["Keys"]["pk"]["S"].startswith("after-z1-")
        ]
        lower = sum(n <= before for n in new)
        msg = (
            f"10 puts: {fails} failed, {len(new)} stream records, "
            f"{lower} with seq <= previous max {before}"
        )
        return msg + (f"; last error {last}" if fails else "")

    e.run("z2 stream puts after z1", stream_after_other_key)


def probe_misc(e: Engine) -> None:
    ddb = e.ddb

    def recreate() -> str:
        name = e.t("recreate")
        spec = dict(
            AttributeDefinitions=ATTRS,
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification=STREAM,
            **KEYS,
        )
        ddb.create_table(TableName=name, **spec)
        ddb.put_item(TableName=name, Item=key("old"))
        arn1 = stream_arn(e, name)
        ddb.delete_table(TableName=name)
        ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
        ddb.create_table(TableName=name, **spec)
        ddb.put_item(TableName=name, Item=key("new"))
        arn2 = stream_arn(e, name)
        keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in read_stream(e, arn2)]
        try:
            old = [r["dynamodb"]["Keys"]["pk"]["S"] for r in read_stream(e, arn1)]
            old_s = f"old stream still readable: {old}"
        except ClientError as exc:
            old_s = f"old stream: {_err(exc)}"
        return f"new arn differs={arn1 != arn2}; new stream keys={keys}; {old_s}"

    e.run("z3 delete+recreate stream table", recreate)

    def speed() -> str:
        name = e.t("other")
        t0 = time.monotonic()
        for i in range(200):
            ddb.put_item(TableName=name, Item=key("speed", f"{i:04d}"))
        put = time.monotonic() - t0
        t0 = time.monotonic()
        for i in range(200):
            ddb.get_item(TableName=name, Key=key("speed", f"{i:04d}"))
        get = time.monotonic() - t0
        return f"200 put_item {put:.2f}s, 200 get_item {get:.2f}s"

    e.run("z4 sequential speed", speed)


def main() -> int:
    global VERBOSE
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--endpoint", help="DynamoDB Local URL, e.g. http://127.0.0.1:8000")
    ap.add_argument("--moto", action="store_true", help="also probe in-process moto")
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args()
    VERBOSE = args.verbose
    if not args.endpoint and not args.moto:
        ap.error("give --endpoint URL and/or --moto")
    engines: list[Engine] = []
    if args.endpoint:
        e = Engine("local", args.endpoint)
        probe_all(e)
        probe_misc(e)
        probe_isolation(e)
        engines.append(e)
    if args.moto:
        from moto import mock_aws

        with mock_aws():
            e = Engine("moto", None)
            probe_all(e)
            probe_misc(e)
            engines.append(e)
    if len(engines) == 2:
        a, b = (dict(x.results) for x in engines)
        print("\nprobes where the engines differ (by outcome class):")
        for pid in a:
            ka, kb = a[pid].split(";")[0].split(":")[0], b.get(pid, "-").split(";")[0].split(":")[0]
            if ka != kb:
                print(f"  {pid}: local={a[pid]!r}\n  {'':{len(pid)}}  moto ={b.get(pid)!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The command tables' event source mapping filters: which stream records reach the handler.

Lambda's filter patterns are matched here by a small matcher of the subset the template
uses (exact strings, ``exists``, ``anything-but``; patterns of one filter AND-ed, filters
OR-ed), against records shaped as DynamoDB Streams delivers them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from cqrs.deploy.resources import stream_filters


def _leaf(rules: list[Any], present: bool, value: Any) -> bool:
    for rule in rules:
        if isinstance(rule, dict) and "exists" in rule:
            if rule["exists"] == present:
                return True
        elif isinstance(rule, dict) and "anything-but" in rule:
            if present and value not in rule["anything-but"]:
                return True
        elif present and value == rule:
            return True
    return False


def _matches(pattern: dict[str, Any], event: dict[str, Any] | None) -> bool:
    for name, rule in pattern.items():
        present = isinstance(event, dict) and name in event
        value = event.get(name) if isinstance(event, dict) else None
        if isinstance(rule, list):
            if not _leaf(rule, present, value):
                return False
        elif not _matches(rule, value if isinstance(value, dict) else None):
            return False
    return True


def delivered(record: dict[str, Any]) -> bool:
    """Whether the command table's mapping hands ``record`` to the handler."""
    filters = [json.loads(json.dumps(p)) for p in stream_filters("command")]
    return any(_matches(p, record) for p in filters)


def _image(**extra: Any) -> dict[str, Any]:
    return {"pk": {"S": "ORDER#acme"}, "sk": {"S": "ORDER#1@2"}, "version": {"N": "2"}, **extra}


SYNC = {"syncMode": {"S": "SYNC"}}


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"eventName": "INSERT", "dynamodb": {"NewImage": _image()}}, True),
        ({"eventName": "INSERT", "dynamodb": {"NewImage": _image(**SYNC)}}, False),
        ({"eventName": "INSERT", "dynamodb": {"NewImage": _image(syncMode={"S": "X"})}}, True),
        (
            {
                "eventName": "MODIFY",  # a failed publish_sync hands its command back
                "dynamodb": {"OldImage": _image(**SYNC), "NewImage": _image()},
            },
            True,
        ),
        (
            {  # MBC's status update of a SYNC command
                "eventName": "MODIFY",
                "dynamodb": {
                    "OldImage": _image(**SYNC),
                    "NewImage": _image(**SYNC, status={"S": "finish:FINISHED"}),
                },
            },
            False,
        ),
        (
            {
                "eventName": "MODIFY",  # a status or retention ttl on an async command
                "dynamodb": {"OldImage": _image(), "NewImage": _image(ttl={"N": "1"})},
            },
            False,
        ),
        ({"eventName": "REMOVE", "dynamodb": {"OldImage": _image()}}, False),
    ],
    ids=[
        "insert",
        "insert SYNC",
        "insert other mode",
        "handed back",
        "SYNC status",
        "modify",
        "remove",
    ],
)
def test_command_stream_filter(record: dict[str, Any], expected: bool) -> None:
    assert delivered(record) is expected


def test_other_tables_filter_on_event_names_only() -> None:
    assert stream_filters("tasks") == [{"eventName": ["INSERT", "MODIFY"]}]

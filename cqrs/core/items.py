"""The stored item shapes (camelCase dicts) and the pure functions between them.

A command item is the full state of an entity at one version. The data row and
each history item are derived from it by :func:`data_item`; nothing else is
needed, which is what makes projection idempotent and replayable.
"""

from __future__ import annotations

from typing import Any

from .keys import add_version, remove_version

Item = dict[str, Any]

#: Fields compared by the "not dirty" check (MBC's list).
DIRTY_FIELDS = ("id", "code", "name", "tenantCode", "type", "isDeleted", "seq", "ttl", "attributes")

#: Fields copied from a command to its data row (MBC's DataService.publish).
PROJECTED_FIELDS = (
    "id", "code", "name", "version", "tenantCode", "type", "isDeleted", "seq", "ttl",
    "attributes", "requestId", "createdAt", "createdBy", "createdIp",
    "updatedAt", "updatedBy", "updatedIp",
)  # fmt: skip

#: Audit fields whose first value wins on the data row.
CREATION_FIELDS = ("createdAt", "createdBy", "createdIp")


def data_item(command: Item) -> Item:
    """The data row a command projects to: base sort key, ``cpk``/``csk`` = the command's keys."""
    item: Item = {"pk": command["pk"], "sk": remove_version(command["sk"])}
    for field in PROJECTED_FIELDS:
        value = command.get(field)
        if value is not None:
            item[field] = value
    item["cpk"] = command["pk"]
    item["csk"] = command["sk"]
    return item


def history_item(command: Item) -> Item:
    """The history item of one version: the data row, keyed ``<base sk>@<version>``."""
    item = data_item(command)
    item["sk"] = add_version(item["sk"], int(command["version"]))
    return item

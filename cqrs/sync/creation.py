"""History item ``@v`` is the data row at ``v``: its creation audit fields are the row's.

The data row keeps its first writer's ``createdAt``/``createdBy``/``createdIp`` (each set
only if absent, as MBC's ``DataService.publish`` does: ``data?.createdBy ||
cmd.createdBy``), while a command carries its own author's (MBC writes every version that
way) or its base's (this framework's). So the history item of ``v`` takes, field by field,
the data row's value from before the batch, else the first value among the batch's
commands up to ``v``: what MBC copies into history (its data row at ``v``).

The projector does not read the data row for them (its request budget): it assumes the
row's fields are those of the batch's first command, right for every command this
framework writes, and its conditional data write checks that (:func:`agrees`). When the
assumption was wrong the write fails, the row's fields come back with the conflict (or
are read), and the history items are written again (:func:`stale`) before the data row
moves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..core.errors import CqrsError
from ..core.items import CREATION_FIELDS, CommandItem, Item, StoredValue
from ..store import Condition, absent, all_of, equals
from ..store.codec import WireItem, history_form

if TYPE_CHECKING:
    from ..store import Store

#: ``{stored name: value}``: the creation fields a row has (a missing name: it has none).
Created = dict[str, str]


def created_of(item: CommandItem | Mapping[str, StoredValue] | None) -> Created:
    """The creation fields of a stored item or a command (``None``: no row, none)."""
    if item is None:
        return {}
    return {n: v for n in CREATION_FIELDS if isinstance(v := item.get(n), str)}


def at_version(
    created: Mapping[str, str], commands: Mapping[int, CommandItem], base: int, version: int
) -> dict[str, str | None]:
    """The creation fields of the data row at ``version``: the row's before ``base + 1``
    (``created``), else each field's first value among the commands ``base + 1..version``."""
    out: dict[str, str | None] = {}
    for name in CREATION_FIELDS:
        value = created.get(name)
        for v in range(base + 1, version + 1):
            if value is not None:
                break
            found = commands[v].get(name) if v in commands else None
            value = found if isinstance(found, str) else None
        out[name] = value
    return out


def data_row(commands: Mapping[int, CommandItem], base: int, through: int) -> Item:
    """The data row after ``through`` as the commit writes it: the command's, with the
    earliest creation fields of ``base + 1..through`` (the commit sets them only where the
    row has none, so the row's own win)."""
    fields = at_version({}, commands, base, through)
    row = commands[through].data_row().to_item()
    return row | {name: value for name, value in fields.items() if value is not None}


def assume(created: Created | None, commands: Mapping[int, CommandItem], base: int) -> Created:
    """The data row's creation fields: ``created`` once seen, else (the assumption the
    commit checks) none for a new row and the first command's for an existing one."""
    if created is not None:
        return created
    return created_of(commands[base + 1]) if base else {}


def agrees(created: Mapping[str, str]) -> Condition:
    """The data row's creation fields agree with ``created``: a field ``created`` has is
    that value or absent (the write then sets it to that value), one it lacks is absent."""
    return all_of(
        *(absent(n) | equals(n, created[n]) if n in created else absent(n) for n in CREATION_FIELDS)
    )


def history_items(
    store: Store,
    table: str,
    commands: Mapping[int, CommandItem],
    base: int,
    through: int,
    created: Mapping[str, str],
) -> list[WireItem]:
    """The history items ``base + 1..through`` (wire form, size checked): each version's
    command's history form with the creation fields of the data row at that version."""
    items = []
    for v in range(base + 1, through + 1):
        item = history_form(commands[v], f"{table} item")
        item = {k: x for k, x in item.items() if k not in CREATION_FIELDS}
        fields = at_version(created, commands, base, v)
        item.update({name: {"S": value} for name, value in fields.items() if value is not None})
        items.append(store.sized(table, item))
    return items


def stale(
    store: Store,
    table: str,
    commands: Mapping[int, CommandItem],
    span: tuple[int, int],
    assumed: Mapping[str, str],
    created: Mapping[str, str],
) -> list[WireItem]:
    """The history items ``span`` (``base, upto``) that were written assuming the row's
    creation fields ``assumed`` and differ now that they are known to be ``created``."""
    was = history_items(store, table, commands, *span, assumed)
    now = history_items(store, table, commands, *span, created)
    return [item for old, item in zip(was, now, strict=True) if old != item]


def repair(
    store: Store,
    table: str,
    commands: Mapping[int, CommandItem],
    span: tuple[int, int],
    assumed: Created,
    created: Created | None,
) -> CqrsError | None:
    """After a failed commit: write again the history items ``span`` (``base, upto``:
    versions another writer committed meanwhile) written under ``assumed`` creation
    fields when the row's (``created``, now seen) differ. Returns the write's error."""
    if created is None or created == assumed or span[1] <= span[0]:
        return None
    try:
        store.batch_write(table, wire_puts=stale(store, table, commands, span, assumed, created))
    except CqrsError as exc:
        return exc
    return None

"""Table definitions: which tables exist and what each one looks like.

``tables/cqrs.json`` lists the entities in MBC's own format
(``{"tables": ["order", "cat"]}``). Each entity gets three tables built from
``tables/templates/entity/{command,data,history}.json``; every file in
``tables/templates/system/`` is one system table named after the file. A
project that ships only ``cqrs.json`` (an MBC project, say) gets the templates
bundled with the package.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NotRequired, TypedDict, cast

from ..core.errors import ConfigurationError, UnknownEntityError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.literals import BillingModeType, StreamViewTypeType
    from mypy_boto3_dynamodb.type_defs import (
        AttributeDefinitionTypeDef,
        GlobalSecondaryIndexTypeDef,
        KeySchemaElementTypeDef,
        StreamSpecificationTypeDef,
    )

    class TableTemplate(TypedDict):
        """A table template file: ``CreateTable``'s shape without ``TableName``, plus
        ``TimeToLiveAttribute`` (TTL is set by its own call)."""

        KeySchema: Sequence[KeySchemaElementTypeDef]
        AttributeDefinitions: Sequence[AttributeDefinitionTypeDef]
        BillingMode: NotRequired[BillingModeType]
        GlobalSecondaryIndexes: NotRequired[Sequence[GlobalSecondaryIndexTypeDef]]
        StreamSpecification: NotRequired[StreamSpecificationTypeDef]
        TimeToLiveAttribute: NotRequired[str]


EntityTableKind = Literal["command", "data", "history"]
ENTITY_TABLE_KINDS: tuple[EntityTableKind, ...] = ("command", "data", "history")
CODE_INDEX = "code-index"
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_TABLE_NAME_CHARS = re.compile(r"[A-Za-z0-9_.-]+")

_PACKAGE = Path(__file__).parent.parent
_BUNDLED_TEMPLATES = _PACKAGE / "_tables" / "templates"
_SOURCE_TEMPLATES = _PACKAGE.parent / "tables" / "templates"


@dataclass(frozen=True)
class TableDefinition:
    """One physical table: its name and a CreateTable-shaped spec."""

    name: str
    kind: str  # "command", "data", "history" or a system table name
    entity: str | None
    spec: TableTemplate

    @property
    def stream_view_type(self) -> StreamViewTypeType | None:
        """The stream view type, or ``None`` if the table has no stream."""
        stream = self.spec.get("StreamSpecification")
        return stream.get("StreamViewType") if stream and stream.get("StreamEnabled") else None

    @property
    def ttl_attribute(self) -> str | None:
        """The TTL attribute name, or ``None``."""
        return self.spec.get("TimeToLiveAttribute")

    @property
    def indexes(self) -> list[GlobalSecondaryIndexTypeDef]:
        """Global secondary index specs (possibly empty)."""
        return list(self.spec.get("GlobalSecondaryIndexes") or [])


@dataclass(frozen=True)
class EntityTables:
    """Physical table names of one entity."""

    entity: str
    command: str
    data: str
    history: str


@dataclass(frozen=True)
class Schema:
    """Every table of an application, named with its prefix."""

    prefix: str
    entities: tuple[str, ...]
    system_tables: tuple[str, ...]
    templates: Mapping[str, TableTemplate] = field(repr=False)

    @classmethod
    def load(cls, tables_dir: Path | str, prefix: str = "") -> Schema:
        """Read ``cqrs.json`` and the templates from ``tables_dir``."""
        tables_dir = Path(tables_dir)
        listing = tables_dir / "cqrs.json"
        try:
            raw = json.loads(listing.read_text())
        except FileNotFoundError as exc:
            raise ConfigurationError(
                f"{listing} not found: set CQRS_TABLES_DIR to the folder holding cqrs.json",
                cause=exc,
            ) from exc
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"{listing} is not valid JSON: {exc}", cause=exc) from exc
        entities = raw.get("tables") if isinstance(raw, dict) else None
        if not isinstance(entities, list) or not all(isinstance(e, str) and e for e in entities):
            raise ConfigurationError(
                f'{listing} must look like {{"tables": ["order", ...]}}, got {raw!r}'
            )
        _check_prefix(prefix)
        for entity in entities:
            _check_table_name(f"{prefix}{entity}-history", f"{listing}: entity {entity!r}")
        templates_dir = tables_dir / "templates"
        if not templates_dir.is_dir():
            templates_dir = _BUNDLED_TEMPLATES if _BUNDLED_TEMPLATES.is_dir() else _SOURCE_TEMPLATES
        templates: dict[str, TableTemplate] = {}
        for kind in ENTITY_TABLE_KINDS:
            templates[kind] = _read_template(templates_dir / "entity" / f"{kind}.json")
        system = sorted(p.stem for p in (templates_dir / "system").glob("*.json"))
        for name in system:
            templates[f"system:{name}"] = _read_template(templates_dir / "system" / f"{name}.json")
        return cls(prefix, tuple(dict.fromkeys(entities)), tuple(system), templates)

    def entity_tables(self, entity: str) -> EntityTables:
        """Table names of ``entity``; raises :class:`UnknownEntityError` if unlisted."""
        if entity not in self.entities:
            raise UnknownEntityError(
                f"unknown entity {entity!r}: add it to cqrs.json (known: {list(self.entities)})"
            )
        p = f"{self.prefix}{entity}"
        return EntityTables(entity, f"{p}-command", f"{p}-data", f"{p}-history")

    def system_table(self, name: str) -> str:
        """Physical name of a system table such as ``tasks`` or ``sequences``."""
        if name not in self.system_tables:
            raise ConfigurationError(f"no system table template {name!r} in tables/templates")
        return f"{self.prefix}{name}"

    def definitions(self) -> list[TableDefinition]:
        """Every table to create, entity tables first."""
        out = []
        for entity in self.entities:
            names = self.entity_tables(entity)
            for kind in ENTITY_TABLE_KINDS:
                out.append(
                    TableDefinition(getattr(names, kind), kind, entity, self.templates[kind])
                )
        for name in self.system_tables:
            spec = self.templates[f"system:{name}"]
            out.append(TableDefinition(self.system_table(name), name, None, spec))
        return out

    def entity_of_command_table(self, table_name: str) -> str | None:
        """The entity whose command table is ``table_name``, if any."""
        if table_name.startswith(self.prefix) and table_name.endswith("-command"):
            entity = table_name[len(self.prefix) : -len("-command")]
            if entity in self.entities:
                return entity
        return None


def _check_table_name(name: str, what: str) -> None:
    """DynamoDB's table-name rules: 3-255 characters of ``a-z A-Z 0-9 _ - .``."""
    if not _TABLE_NAME.fullmatch(name):
        raise ConfigurationError(
            f"{what} makes table name {name!r}, which DynamoDB refuses: use 3-255 characters "
            "of a-z, A-Z, 0-9, '_', '-' and '.'"
        )


def _check_prefix(prefix: str) -> None:
    if not isinstance(prefix, str) or (prefix and not _TABLE_NAME_CHARS.fullmatch(prefix)):
        raise ConfigurationError(
            f"table prefix {prefix!r} may only use a-z, A-Z, 0-9, '_', '-' and '.'"
        )


def _read_template(path: Path) -> TableTemplate:
    try:
        spec: object = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigurationError(f"table template {path} is missing", cause=exc) from exc
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"table template {path} is not valid JSON: {exc}") from exc
    if not isinstance(spec, dict) or "KeySchema" not in spec:
        raise ConfigurationError(f"table template {path} must be an object with KeySchema")
    return cast("TableTemplate", spec)  # a CreateTable shape: DynamoDB checks the rest

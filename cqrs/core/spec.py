"""What a service declares about an entity: its attributes model and custom projections."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic

from pydantic import BaseModel, ValidationError

from .errors import InvalidAttributesError
from .items import Item
from .records import AttrT, Command, DataRecord, HistoryRecord


@dataclass(frozen=True)
class EntitySpec(Generic[AttrT]):
    """An entity's declaration.

    ``attributes``: a pydantic model validating ``attributes`` on publish and
    typing them on read; ``None`` keeps them a plain dict. ``handlers``: custom
    :class:`~cqrs.sync.projection.DataSyncHandler` classes (built by the app's
    injector, so they can ask for services) or instances.
    """

    name: str
    attributes: type[BaseModel] | None = None
    handlers: Sequence[Any] = field(default_factory=tuple)

    def dump_attributes(self, value: Any) -> dict[str, Any]:
        """Validate ``attributes`` (a dict or model instance) and return the stored dict."""
        if self.attributes is None:
            if isinstance(value, BaseModel):
                return value.model_dump(mode="json")
            if not isinstance(value, Mapping):
                raise InvalidAttributesError(
                    f"{self.name}: attributes must be a mapping, got {type(value).__name__}"
                )
            return dict(value)
        try:
            model = (
                value
                if isinstance(value, self.attributes)
                else self.attributes.model_validate(
                    value.model_dump() if isinstance(value, BaseModel) else value
                )
            )
        except ValidationError as exc:
            raise InvalidAttributesError(
                f"{self.name}: attributes do not match {self.attributes.__name__}: {exc}",
                cause=exc,
            ) from exc
        return model.model_dump(mode="json")

    def _attr_type(self) -> Any:
        return self.attributes if self.attributes is not None else dict[str, Any]

    def command_model(self, item: Item) -> Command[AttrT]:
        """A stored command item as a typed :class:`~cqrs.core.records.Command`."""
        model: Any = Command[self._attr_type()]  # type: ignore[misc]
        result: Command[AttrT] = model.model_validate(item)
        return result

    def data_model(self, item: Item) -> DataRecord[AttrT]:
        """A data row as a typed :class:`~cqrs.core.records.DataRecord`."""
        model: Any = DataRecord[self._attr_type()]  # type: ignore[misc]
        result: DataRecord[AttrT] = model.model_validate(item)
        return result

    def history_model(self, item: Item) -> HistoryRecord[AttrT]:
        """A history item as a typed :class:`~cqrs.core.records.HistoryRecord`."""
        model: Any = HistoryRecord[self._attr_type()]  # type: ignore[misc]
        result: HistoryRecord[AttrT] = model.model_validate(item)
        return result

"""What a service declares about an entity: its attributes model and custom projections."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, cast, runtime_checkable

from .errors import InvalidAttributesError
from .items import Attributes, AttrT, Item

if TYPE_CHECKING:
    # pydantic and the record models load on first use, not with the Lambda handler:
    # a projection without custom handlers never builds a typed record.
    from pydantic import BaseModel

    from .records import Command, DataRecord, HistoryRecord


@runtime_checkable
class DataSyncHandler(Protocol):
    """A custom projection, registered per entity.

    ``up`` is called for every version, in order, before that version is
    committed to the data table. Streams deliver at least once, so after a crash
    ``up`` may see the same version again: make it idempotent per (key, version).
    ``down`` is called, in reverse order, on handlers whose ``up`` succeeded for
    a version that could not be committed (a later handler failed).

    ``command`` is typed by the entity's attributes model, which this protocol (one
    for every entity) cannot name: implementations declare their own ``Command[...]``.
    """

    def up(self, command: Command[Any]) -> None:
        """Project one command version."""
        ...

    def down(self, command: Command[Any]) -> None:
        """Undo :meth:`up` for a version that was not committed."""
        ...


#: A custom projection as registered: a class (built by the app's injector) or an instance.
HandlerSpec = type[DataSyncHandler] | DataSyncHandler


@dataclass(frozen=True)
class EntitySpec(Generic[AttrT]):
    """An entity's declaration.

    ``attributes``: a pydantic model validating ``attributes`` on publish and
    typing them on read; ``None`` keeps them a plain dict. ``handlers``: custom
    :class:`DataSyncHandler` classes (built by the app's injector, so they can ask
    for services) or instances.
    """

    name: str
    attributes: type[BaseModel] | None = None
    handlers: Sequence[HandlerSpec] = field(default_factory=tuple)

    def dump_attributes(self, value: object) -> Attributes:
        """Validate ``attributes`` (a dict or model instance) and return the stored dict."""
        from pydantic import BaseModel, ValidationError

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

    def _attr_type(self) -> type[BaseModel] | type[dict[str, object]]:
        """The pydantic parameter of the typed records: the model, else a plain dict."""
        return self.attributes if self.attributes is not None else dict[str, object]

    def command_model(self, item: Item) -> Command[AttrT]:
        """A stored command item as a typed :class:`~cqrs.core.records.Command`."""
        from .records import Command

        model = cast("type[Command[AttrT]]", _typed(Command, self._attr_type()))
        return model.model_validate(item)

    def data_model(self, item: Item) -> DataRecord[AttrT]:
        """A data row as a typed :class:`~cqrs.core.records.DataRecord`."""
        from .records import DataRecord

        model = cast("type[DataRecord[AttrT]]", _typed(DataRecord, self._attr_type()))
        return model.model_validate(item)

    def history_model(self, item: Item) -> HistoryRecord[AttrT]:
        """A history item as a typed :class:`~cqrs.core.records.HistoryRecord`."""
        from .records import HistoryRecord

        model = cast("type[HistoryRecord[AttrT]]", _typed(HistoryRecord, self._attr_type()))
        return model.model_validate(item)


#: Parametrized record models, held for good: pydantic caches them only weakly, and
#: building one again once the garbage collector took it costs tens of milliseconds.
_MODELS: dict[tuple[type[BaseModel], object], type[BaseModel]] = {}


def _typed(generic: type[BaseModel], attributes: object) -> type[BaseModel]:
    """``generic[attributes]``, built once per process."""
    key = (generic, attributes)
    model = _MODELS.get(key)
    if model is None:
        model = _MODELS[key] = generic[attributes]  # type: ignore[index]
    return model

"""Task handlers: registered per task type, resolved (and built once) when a task runs.

``Task[Any]`` is the one ``Any`` here: a handler is typed with its own input model
(``Task[CsvImport]``), and only ``Any`` accepts every such handler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from pydantic import BaseModel

from ...core.errors import ProgrammingError
from ...core.keys import validate_part
from .models import Task


class TaskHandler(Protocol):
    """A handler class: built once by the app's injector, then ``run`` per attempt."""

    def run(self, task: Task[Any]) -> object:
        """Do the work; return a JSON-able result (or a pydantic model)."""
        ...


#: A handler function: ``f(task) -> result``.
HandlerFunction: TypeAlias = Callable[[Task[Any]], object]
#: What can be registered: a function, a handler class (built on first use) or an object
#: with ``run``.
HandlerTarget: TypeAlias = HandlerFunction | type[TaskHandler] | TaskHandler
#: Builds a handler class (the app's injector).
HandlerBuilder: TypeAlias = Callable[[type[TaskHandler]], TaskHandler]


@dataclass
class HandlerSpec:
    """A registered handler: a function, a class with ``run`` or an object with ``run``."""

    task_type: str
    target: HandlerTarget
    input_model: type[BaseModel] | None
    instance: TaskHandler | None = None


class Handlers:
    """The handlers of one task service; ``build`` makes instances of handler classes."""

    def __init__(self, build: HandlerBuilder) -> None:
        self._build = build
        self._specs: dict[str, HandlerSpec] = {}

    def register(
        self, task_type: str, target: HandlerTarget, input_model: type[BaseModel] | None = None
    ) -> None:
        """Register the handler of ``task_type`` (once per type)."""
        validate_part("task type", task_type)
        if task_type in self._specs:
            raise ProgrammingError(f"a handler for task type {task_type!r} is already registered")
        if isinstance(target, type):
            if not callable(getattr(target, "run", None)):
                raise ProgrammingError(f"handler class {target.__name__} needs a run(task) method")
        elif not callable(target) and not callable(getattr(target, "run", None)):
            raise ProgrammingError(f"handler for {task_type!r} must be callable or have run()")
        self._specs[task_type] = HandlerSpec(task_type, target, input_model)

    def get(self, task_type: str) -> HandlerSpec | None:
        """The handler of ``task_type``, if one is registered."""
        return self._specs.get(task_type)

    def input_model(self, task_type: str) -> type[BaseModel] | None:
        """The ``input_model`` of ``task_type``'s handler, if any."""
        spec = self._specs.get(task_type)
        return spec.input_model if spec else None

    @property
    def task_types(self) -> list[str]:
        """The task types with a registered handler."""
        return sorted(self._specs)

    def resolve(self, spec: HandlerSpec) -> HandlerFunction:
        """The callable that runs one attempt (a handler class is built on first use)."""
        target = spec.target
        if isinstance(target, type):
            if spec.instance is None:
                spec.instance = self._build(target)
            return spec.instance.run
        method: HandlerFunction | None = getattr(target, "run", None)
        if callable(method):
            return method
        if not callable(target):  # pragma: no cover - refused by register
            raise ProgrammingError(f"handler for {spec.task_type!r} is not callable")
        return target

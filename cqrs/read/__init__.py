"""The read side: current state (:mod:`.data`) and past versions (:mod:`.history`)."""

from __future__ import annotations

from .data import DataService
from .history import HistoryService

__all__ = ["DataService", "HistoryService"]

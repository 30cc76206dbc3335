"""The search: the loop (``loop``), its flags (``flags``), the command (``run``), the controller and the report."""

from .loop import PHASES, Search, SearchStopped

__all__ = ["PHASES", "Search", "SearchStopped"]

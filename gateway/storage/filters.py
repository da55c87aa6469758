"""A WHERE clause built from the filters a search was given, with ``$n`` parameters."""

from __future__ import annotations

from typing import Any


class Filters:
    """Conditions joined with AND; a condition whose value is None is left out."""

    def __init__(self) -> None:
        self._conditions: list[str] = []
        self.args: list[Any] = []

    def add(self, condition: str, value: Any) -> None:
        """``condition`` holds one ``{}`` where the value's parameter goes."""
        if value is None:
            return
        self.args.append(value)
        self._conditions.append(condition.format(f"${len(self.args)}"))

    @property
    def next(self) -> str:
        """The parameter that follows the filters' own (for LIMIT and the like)."""
        return f"${len(self.args) + 1}"

    @property
    def sql(self) -> str:
        return f"WHERE {' AND '.join(self._conditions)}" if self._conditions else ""

"""The exceptions the command line turns into clear one-line messages."""

from __future__ import annotations


class WplError(Exception):
    """A user-facing error: bad input, a bad flag or a missing file, with the fix in the message."""


class ConfigError(WplError, ValueError):
    """Setting ``name`` has the invalid ``value``; ``requirement`` says what it must be."""

    def __init__(self, name: str, value: object, requirement: str) -> None:
        super().__init__(f"{name}={value!r}: {requirement}")
        self.name, self.value, self.requirement = name, value, requirement

    def as_flag(self, flag: str | None = None, default: bool = False) -> str:
        """The message as the command line says it: ``--flag=value (the default): requirement``."""
        note = " (the default)" if default else ""
        return f"--{flag or self.name}={self.value}{note}: {self.requirement}"

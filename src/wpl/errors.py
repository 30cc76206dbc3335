"""The exceptions the command line turns into clear one-line messages."""

from __future__ import annotations

import re
from collections.abc import Mapping

# a setting named with a value inside a message ("it needs shared_optim=sgd")
_SETTING = re.compile(r"(?<![\w-])([a-z][a-z0-9_]*)=")


class WplError(Exception):
    """A user-facing error: bad input, a bad flag or a missing file, with the fix in the message."""


class ConfigError(WplError, ValueError):
    """Setting ``name`` has the invalid ``value``; ``requirement`` says what it must be."""

    def __init__(self, name: str, value: object, requirement: str) -> None:
        super().__init__(f"{name}={value!r}: {requirement}")
        self.name, self.value, self.requirement = name, value, requirement

    def as_flag(self, flag: str | None = None, default: bool = False, flags: Mapping[str, str] | None = None) -> str:
        """The message as the command line says it: ``--flag=value (the default): requirement``. ``flags`` (setting →
        flag) names this setting's flag when ``flag`` does not, and each other setting the requirement names with a
        value (``shared_optim=sgd``) that it knows becomes its flag too."""
        flags = flags or {}
        note = " (the default)" if default else ""
        requirement = _SETTING.sub(lambda m: f"--{flags[m[1]]}=" if m[1] in flags else m[0], self.requirement)
        return f"--{flag or flags.get(self.name, self.name)}={self.value}{note}: {requirement}"

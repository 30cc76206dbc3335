"""Strict command-line parsing: unknown flags and malformed values are errors with a hint."""

from __future__ import annotations

import argparse
import difflib
import sys
from typing import NoReturn

TRUE = ("true", "1", "yes", "y", "t", "on")
FALSE = ("false", "0", "no", "n", "f", "off")


def str2bool(value: str) -> bool:
    """Parse true/false/1/0/yes/no (any case); anything else is an error."""
    v = str(value).strip().lower()
    if v in TRUE:
        return True
    if v in FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false, 1/0, yes/no), got {value!r}")


class StrictParser(argparse.ArgumentParser):
    """An ArgumentParser that rejects unknown flags (naming the closest valid one) in one line."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def known_flags(self) -> list[str]:
        """Every long option string this parser accepts."""
        return [s for a in self._actions for s in a.option_strings if s.startswith("--")]

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        ns, extra = self.parse_known_args(args, namespace)
        if extra:
            self.error(self._unknown_message(extra[0]))
        return ns

    def _unknown_message(self, token: str) -> str:
        if not token.startswith("-"):
            return f"unexpected argument {token!r}"
        flag = token.split("=", 1)[0]
        close = difflib.get_close_matches(flag, self.known_flags(), n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]}?" if close else "; run with --help for the list"
        return f"unknown flag {flag}{hint}"

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)

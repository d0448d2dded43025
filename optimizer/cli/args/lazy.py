"""Naming the library instead of importing it: handlers and converters resolved at first use.

The parser is built for every `evopt` call, `--help` included; what it names here is imported
only when a command runs or a value is converted (issue 16: `--help` within 0.25 s).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["arg_type", "call", "lazy_type", "resolve"]


def resolve(ref: str) -> Any:
    """``"cli.account:login"`` -> ``optimizer.cli.account.login``, importing its module now."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(f"optimizer.{module}"), name)


def call(ref: str, *args: Any) -> Any:
    """``resolve(ref)(*args)``: a library function called from the parser's error paths."""
    return resolve(ref)(*args)


def arg_type(parse: Callable[[str], Any], what: str | None) -> Callable[[str], Any]:
    """An argparse type whose error names the value and ``what`` would be valid (exit 2).

    A ValueError from ``parse`` becomes that error (its message alone when ``what`` is None:
    the message says what is valid); argparse's own ArgumentTypeError passes through.
    """

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as err:
            message = str(err) if what is None else f"{err}; expected {what}"
            raise argparse.ArgumentTypeError(message) from err

    convert.__name__ = what or "value"
    return convert


def lazy_type(ref: str, what: str | None, *, keep_text: bool = False) -> Callable[[str], Any]:
    """:func:`arg_type` of the function ``ref`` names, imported when a value is converted
    (never for `--help`). ``keep_text``: the function only checks the form, and the value stays
    as written."""

    def parse(text: str) -> Any:
        value = call(ref, text)
        return text if keep_text else value

    return arg_type(parse, what)

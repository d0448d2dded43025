"""pydantic's validation errors as sentences in the user's terms, for config and rules alike.

People read these messages in a terminal while editing a YAML file; "Input should be less than
or equal to 80" names neither the key nor the unit and sounds like a bug report. Every error
type we can meet is rewritten here into a sentence that names the key, says what would be
valid (the keys of the section, the allowed values, the range with its unit) and shows what
was written. One translation serves the config and the rule files, so both read the same; no
library wording is passed through (a test sweeps every field with bad values to hold that).
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Iterable, Sequence
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from optimizer.yamlpos import Document, Loc, Problem

__all__ = [
    "did_you_mean",
    "explain",
    "field_keys",
    "model_at",
    "show",
    "unit_of",
    "unknown_key_message",
    "validation_problems",
]

# Units by key, so a range says "80 (amps)" rather than a bare number.
_UNITS = {
    "max_current": "amps",
    "amps": "amps",
    "voltage": "volts",
    "latitude": "degrees",
    "longitude": "degrees",
    "sun_above": "degrees",
    "sun_below": "degrees",
    "battery_soc_above": "%",
    "battery_soc_below": "%",
    "retention_days": "days",
    "budget_per_hour": "requests per hour",
}
_UNIT_SUFFIXES = (
    ("_amps", "amps"),
    ("_kwh", "kWh"),
    ("_kw", "kW"),
    ("_w", "W"),
    ("_pct", "%"),
    ("_days", "days"),
)
_DURATION = "a duration like 30s, 5m or 1h"
_TYPE_WORDS = {
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "finite_number": "a finite number",
    "decimal_parsing": "a number",
    "decimal_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "text",
    "string_unicode": "text",
    "bytes_type": "text",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "frozen_set_type": "a list",
    "iterable_type": "a list",
    "model_type": "a mapping of keys",
    "model_attributes_type": "a mapping of keys",
    "dict_type": "a mapping of keys",
    "mapping_type": "a mapping of keys",
    "timedelta_type": _DURATION,
    "timedelta_parsing": _DURATION,
    "path_type": "a file or directory path",
    "none_required": "empty (null)",
    "date_type": "a date like 2026-12-05",
    "date_parsing": "a date like 2026-12-05",
    "date_from_datetime_parsing": "a date like 2026-12-05",
    "datetime_type": "a date and time like 2026-12-05T07:30:00",
    "datetime_parsing": "a date and time like 2026-12-05T07:30:00",
    "datetime_from_date_parsing": "a date and time like 2026-12-05T07:30:00",
    "time_type": "a time of day like 07:30",
    "time_parsing": "a time of day like 07:30",
    "url_type": "a URL like https://example.com",
    "url_parsing": "a URL like https://example.com",
    "url_scheme": "a URL like https://example.com",
}
_NUMERIC = frozenset(
    {"int_parsing", "int_type", "int_from_float", "float_parsing", "float_type", "finite_number"}
)
_BOUND_WORDS = {
    "greater_than_equal": ("must be at least", "ge"),
    "greater_than": ("must be above", "gt"),
    "less_than_equal": ("must be at most", "le"),
    "less_than": ("must be below", "lt"),
}
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")
_YAML_BOOL = " (YAML reads yes, no, on, off as true/false: quote it)"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for a close match, else an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def show(value: Any) -> str:
    """A value as it would be written in YAML, quoted when it is text."""
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null (empty)"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return str(value)


def unit_of(key: str | int | None) -> str | None:
    """The unit a key's number is in, from its name (``max_amps`` -> amps)."""
    if not isinstance(key, str):
        return None
    if key in _UNITS:
        return _UNITS[key]
    return next((unit for suffix, unit in _UNIT_SUFFIXES if key.endswith(suffix)), None)


def field_keys(model: type[BaseModel] | None) -> tuple[str, ...]:
    """The keys a user may write in a model's mapping (internal fields left out)."""
    if model is None:
        return ()
    return tuple(name for name, info in model.model_fields.items() if not info.exclude)


def unknown_key_message(key: str, valid: Sequence[str], *, where: str | None) -> str:
    """``unknown key 'timezon' in 'site' (did you mean 'timezone'?); valid keys: ...``."""
    inside = f" in '{where}'" if where else ""
    listed = f"; valid keys: {', '.join(valid)}" if valid else ""
    return f"unknown key '{key}'{inside}{did_you_mean(key, valid)}{listed}"


def validation_problems(
    doc: Document,
    err: ValidationError,
    *,
    model: type[BaseModel],
    loc: Loc = (),
    label: str = "",
) -> list[Problem]:
    """Every error of ``err`` (from validating ``model`` at ``loc`` in ``doc``) as a positioned
    sentence, in file order. ``label`` starts messages about the mapping itself (a policy's
    name), whose path within the model is empty."""
    problems = []
    for item in err.errors(include_url=False):
        path = tuple(part for part in item["loc"] if isinstance(part, str | int))
        message = explain(item, model, path)
        problems.append(doc.problem((*loc, *path), f"{label}{message}" if not path else message))
    return sorted(problems, key=lambda p: (p.line, p.column))


def explain(item: ErrorDetails, model: type[BaseModel] | None, path: Loc) -> str:
    """One sentence for one pydantic error at ``path`` within ``model``."""
    kind = item["type"]
    parent = model_at(model, path[:-1]) if model is not None else None
    where = _dotted(path[:-1]) or None
    if kind == "extra_forbidden":
        return unknown_key_message(str(path[-1]), field_keys(parent), where=where)
    if kind == "missing":
        return _missing_message(path, parent, where)
    text = _value_message(item, path)
    return f"{_dotted(path)}: {text}" if path else text


def model_at(model: type[BaseModel] | None, path: Loc) -> type[BaseModel] | None:
    """The nested model at ``path`` (``site``, ``when``, ``tariffs.windows.night``)."""
    annotation: Any = model
    for part in path:
        annotation = _step(annotation, part)
        if annotation is None:
            return None
    return _inner_model(annotation)


def _step(annotation: Any, part: str | int) -> Any:
    """The annotation one path part below ``annotation`` (a field, a list item, a dict value)."""
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        info = annotation.model_fields.get(part) if isinstance(part, str) else None
        return info.annotation if info else None
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is dict and len(args) == 2:
        return args[1]
    if origin in (list, tuple, set, frozenset) and args:
        return args[0]
    return None


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``; a union of models -> its first model."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        models = [arg for arg in args if _inner_model(arg) is not None]
        if models:
            return models[0]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _missing_message(path: Loc, parent: type[BaseModel] | None, where: str | None) -> str:
    key = str(path[-1])
    inside = f" in '{where}'" if where else ""
    info = parent.model_fields.get(key) if parent else None
    about = f" ({info.description})" if info and info.description else ""
    return f"missing required key '{key}'{inside}{about}"


def _value_message(item: ErrorDetails, path: Loc) -> str:
    kind, ctx, value = item["type"], item.get("ctx") or {}, item["input"]
    key = path[-1] if path else None
    unit = unit_of(key)
    if kind in _TYPE_WORDS:
        words = _TYPE_WORDS[kind]
        if unit and kind in _NUMERIC:
            words = f"{words} ({unit})"
        # YAML 1.1 turns an unquoted yes/no/on/off into a boolean: say so, or it is baffling.
        quirk = _YAML_BOOL if isinstance(value, bool) else ""
        return f"must be {words}, got {show(value)}{quirk}"
    if kind in _BOUND_WORDS:
        words, bound = _BOUND_WORDS[kind]
        return f"{words} {show(ctx[bound])}{f' ({unit})' if unit else ''}, got {show(value)}"
    if kind in ("literal_error", "enum"):
        return _choice_message(str(ctx.get("expected", "")), value)
    if kind == "multiple_of":
        return f"must be a multiple of {show(ctx.get('multiple_of'))}, got {show(value)}"
    if kind in ("too_short", "string_too_short"):
        size = ctx.get("min_length", 1)
        what = "character" if kind.startswith("string") else "item"
        return f"needs at least {size} {what}{'' if size == 1 else 's'}"
    if kind in ("too_long", "string_too_long"):
        size = ctx.get("max_length", 0)
        what = "character" if kind.startswith("string") else "item"
        return f"takes at most {size} {what}{'' if size == 1 else 's'}, got {show(value)}"
    if kind == "string_pattern_mismatch":
        if key == "name":
            return (
                f"{show(value)} is not a valid name; use letters, digits, '_', '.' and '-', "
                "starting with a letter or digit"
            )
        return f"{show(value)} does not have the expected form ({ctx.get('pattern')})"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", "")) or f"{show(value)} cannot be used here"
    return f"{show(value)} cannot be used here"


def _choice_message(expected: str, value: Any) -> str:
    """``must be 'pv' or 'min_pv', got 'max'``, with a suggestion for a near miss."""
    choices = [c.replace("\\'", "'") for c in _QUOTED.findall(expected)]
    hint = did_you_mean(value, choices) if isinstance(value, str) else ""
    if isinstance(value, str) and not hint:
        lowered = {c.lower(): c for c in choices}
        hint = f" (did you mean '{lowered[value.lower()]}'?)" if value.lower() in lowered else ""
    quirk = _YAML_BOOL if isinstance(value, bool) else ""
    return f"must be {expected or 'one of the listed values'}, got {show(value)}{hint}{quirk}"


def _dotted(path: Loc) -> str:
    return ".".join(str(part) for part in path)

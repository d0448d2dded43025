"""YAML loading that remembers where every value came from.

Users edit config and rule files by hand; an error must point at ``file:line:col``, not at a
pydantic location tuple. We compose the node tree once (keeping marks) and build plain Python
data from it, plus a map from each value's path to its position.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Loc = tuple[str | int, ...]
# One constructor serves every scalar. PyYAML remembers each node it constructed (and through
# it the file's text); _build forgets each one at once, so a service reloading its rules for
# months keeps no old versions.
_SCALARS = yaml.SafeLoader("")
_YAML_BREAKS = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")
# Everything str.splitlines() breaks at, written as its escape (\n, \x85, ...).
_ESCAPED_BREAKS = {ord(c): repr(c)[1:-1] for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}


@dataclass(frozen=True)
class Problem:
    """One error a user can fix, at a place they can find."""

    file: str
    line: int
    column: int
    message: str
    # Warnings only: a stable short name, shown with the warning and used to silence it.
    code: str | None = None

    def __str__(self) -> str:
        # One problem per line: a value quoted in the message may hold a line break.
        message = self.message.translate(_ESCAPED_BREAKS)
        return f"{self.file}:{self.line}:{self.column}: {message}"

    def as_warning(self) -> str:
        """``file:line:col: warning[code]: message``: the code is what an ignore list takes."""
        message = self.message.translate(_ESCAPED_BREAKS)
        kind = f"warning[{self.code}]" if self.code else "warning"
        return f"{self.file}:{self.line}:{self.column}: {kind}: {message}"


class YamlFileError(Exception):
    """A file that cannot be used; carries every problem found, each with its position."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass
class Document:
    """Plain data from a YAML file plus the 1-based position of each path within it."""

    file: str
    data: Any
    positions: dict[Loc, tuple[int, int]] = field(default_factory=dict)

    def position(self, loc: Iterable[str | int]) -> tuple[int, int]:
        """Position of the deepest known path prefix of ``loc`` (the file start if none)."""
        path = tuple(loc)
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.positions.get((), (1, 1))

    def problem(
        self, loc: Iterable[str | int], message: str, *, code: str | None = None
    ) -> Problem:
        line, column = self.position(loc)
        return Problem(self.file, line, column, message, code)


@dataclass
class _Builder:
    """Plain data from a node tree, the position of every path, and every duplicate key.

    A duplicate key is what let a second ``service:`` block silently turn ``dry_run: true``
    off, so each one is kept as a problem (all of them, at any depth) rather than letting the
    last one win. Keys that come in through a merge (``<<: *defaults``) are not duplicates: an
    explicit key overriding a merged one is what merging is for.
    """

    file: str
    positions: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    duplicates: dict[tuple[int, int], Problem] = field(default_factory=dict)

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.positions[loc] = _mark(node.start_mark)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, loc)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        return _scalar(node)

    def _mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        merged: dict[Any, Any] = {}
        seen: dict[Any, yaml.Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                # `<<: *defaults` - the explicit keys of this mapping win over merged ones.
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for source in sources:
                    built = self.build(source, loc)
                    if isinstance(built, dict):
                        merged = {**built, **merged}
                continue
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            child = (*loc, key)
            if key in seen:
                self._duplicate(loc, key, seen[key], key_node, value_node)
            seen[key] = key_node
            result[key] = self.build(value_node, child)
            # Point at the key itself: that is what a user looks for.
            self.positions[child] = _mark(key_node.start_mark)
        self.positions[loc] = _mark(node.start_mark)
        return {**merged, **result}

    def _duplicate(
        self, loc: Loc, key: str, first: yaml.Node, second: yaml.Node, value: yaml.Node
    ) -> None:
        line, column = _mark(second.start_mark)
        first_line, first_column = _mark(first.start_mark)
        inside = f" in '{_describe(loc)}'" if loc else ""
        fix = "merge the two blocks" if isinstance(value, yaml.MappingNode) else "keep one"
        message = (
            f"duplicate key '{key}'{inside} (first at {self.file}:{first_line}:{first_column}); "
            f"the second would silently replace the first - {fix}"
        )
        # An anchored mapping is built again at each alias: report its duplicates once.
        self.duplicates.setdefault((line, column), Problem(self.file, line, column, message))


def _mark(mark: yaml.Mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


def _scalar(node: yaml.Node) -> Any:
    try:
        return _SCALARS.construct_object(node)
    except (ValueError, TypeError, AttributeError, LookupError) as err:  # `!!int x`, `!!bool x`
        kind = node.tag.rsplit(":", 1)[-1]
        shown = node.value if len(node.value) <= 40 else f"{node.value[:40]}..."
        raise yaml.constructor.ConstructorError(
            None, None, f"{shown!r} is not a valid {kind}", node.start_mark
        ) from err
    finally:
        _SCALARS.constructed_objects.pop(node, None)


def _text_position(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of a character index, counting line breaks as PyYAML does."""
    before = _YAML_BREAKS.split(text[:index])
    return len(before), len(before[-1]) + 1


def load_text(text: str, *, file: str) -> Document:
    """Parse YAML text; syntax errors become a :class:`YamlFileError` with a position."""
    builder = _Builder(file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = builder.build(node, ()) if node is not None else None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = err.problem or "invalid YAML"
        if err.context:
            what = f"{what} ({err.context})"
        raise YamlFileError([Problem(file, line, column, f"YAML syntax error: {what}")]) from err
    except yaml.reader.ReaderError as err:  # str(err) has a second line with the index
        line, column = _text_position(text, err.position)
        what = str(err).splitlines()[0]
        raise YamlFileError([Problem(file, line, column, f"YAML error: {what}")]) from err
    except yaml.YAMLError as err:
        raise YamlFileError([Problem(file, 1, 1, f"YAML error: {err}")]) from err
    except RecursionError as err:  # thousands of levels, or an alias inside its own anchor
        message = "YAML error: nested too deeply (or an alias refers to itself)"
        raise YamlFileError([Problem(file, 1, 1, message)]) from err
    if builder.duplicates:
        raise YamlFileError(sorted(builder.duplicates.values(), key=lambda p: (p.line, p.column)))
    return Document(file=file, data=data, positions=builder.positions)


def load_file(path: Path) -> Document:
    """Read and parse a YAML file; an unreadable file is a problem at line 1."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise YamlFileError([Problem(str(path), 1, 1, "file not found")]) from err
    except (OSError, UnicodeDecodeError) as err:
        raise YamlFileError([Problem(str(path), 1, 1, f"cannot read file: {err}")]) from err
    return load_text(text, file=str(path))


def _describe(loc: Loc) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"

"""Explain a TOML syntax error in words: which key, what is wrong, how to write it.

tomllib reports where it stopped reading and a parser's reason ("Illegal character '\\n'",
"Invalid value"). A person made one of a few mistakes, each explained here from the text
itself:

- a string, array or inline table that is opened and never closed: the message names the
  line it was opened on (tomllib stops later, often at the end of the file);
- a value that is a bare word, typographic quotes, ``True`` or nothing at all after ``=``:
  the message says what the field needs (``release needs a date such as 2025-01-17``),
  read from the record's model;
- a key set twice, or a ``[table]`` written twice: both lines are named;
- a key without ``=``, a table header without ``]``, a backslash that starts no escape,
  something after a value, a stray byte order mark or carriage return.

Tabs, a byte order mark at the start and CRLF line endings are valid and never reach here.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Literal

from pydantic import BaseModel

_BARE_KEY = r"[A-Za-z0-9_-]+"
_KEY_PART = rf"(?:\"[^\"\n]*\"|'[^'\n]*'|{_BARE_KEY})"
STATEMENT = re.compile(rf"^\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=\s*(.*)$")
HEADER = re.compile(r"^\s*\[\s*([^\]\[]+?)\s*\]")
DECLARED_TWICE = re.compile(r"^Cannot declare \((.*)\) twice$")
UNCLOSED_STRING_MESSAGES = ("Illegal character '\\n'", "Unterminated string", 'Expected "\'"')
VALUE_MESSAGES = (
    "Invalid value",
    "Invalid date or datetime",
    "Expected newline or end of document after a statement",
)
TYPOGRAPHIC_QUOTES = "\u201c\u201d\u201e\u2018\u2019\u201a\u00ab\u00bb"
WRONG_CASE_BOOLEANS = {"true", "false", "yes", "no", "on", "off"}


@dataclass(frozen=True)
class Explained:
    """A TOML mistake in words: the 1-based row of the text it is on, the dotted key it
    concerns (None when no key can be named), what is wrong and how to write it."""

    row: int
    key: str | None
    why: str
    hint: str


def explain(
    text: str, message: str, row: int, model: type[BaseModel] | None, first_line: int = 1
) -> Explained | None:
    """Explain tomllib's ``message`` about 1-based ``row`` of ``text`` (whose first row is
    line ``first_line`` of its file, for the line numbers quoted); None when it is none of
    the mistakes this module knows."""
    rows = text.split("\n")
    if not 1 <= row <= len(rows):
        return None
    line = row + first_line - 1
    if message in UNCLOSED_STRING_MESSAGES or message.startswith('Expected "\'"'):
        found = unclosed_string(rows)
        if found is not None:
            start, quote = found
            return Explained(
                start,
                key_at(rows, start),
                f"the string opened on line {start + first_line - 1} is not closed",
                _close_string_hint(quote),
            )
    if message in ("Unclosed array", "Unclosed inline table"):
        return _unclosed_bracket(rows, row, message == "Unclosed array", first_line)
    if message == "Cannot overwrite a value":
        return _set_twice(rows, row, first_line)
    declared = DECLARED_TWICE.match(message)
    if declared:
        return _table_twice(rows, row, declared.group(1), first_line)
    if message == "Expected '=' after a key in a key/value pair":
        return _missing_equals(rows, row)
    if message == "Expected ']' at the end of a table declaration":
        return Explained(
            row,
            None,
            f"the table header on line {line} has no closing ]",
            "write a table header as [name] on a line of its own",
        )
    if message == "Unescaped '\\' in a string":
        return Explained(
            row,
            key_at(rows, row),
            'a backslash in a "..." string must start an escape such as \\n or \\"',
            "write \\\\ for a backslash itself, or put the text in single quotes: 'C:\\path'",
        )
    if message == "Invalid statement" and rows[row - 1].lstrip().startswith("\ufeff"):
        return Explained(
            row,
            None,
            f"an invisible byte order mark (U+FEFF) starts line {line}",
            "delete it: only the very start of a file may carry one",
        )
    if "\r" in rows[row - 1]:
        return Explained(
            row,
            key_at(rows, row),
            f"line {line} holds a carriage return (CR) without a line feed",
            "save the file with LF (or CRLF) line endings",
        )
    if message in VALUE_MESSAGES:
        return _bad_value(rows, row, message, model)
    if message == "Invalid statement":
        return Explained(
            row,
            None,
            f"line {line} is neither key = value nor a [table] header",
            'write key = value, e.g. title = "Pilot", or a header such as [author]',
        )
    return None


def unclosed_string(rows: list[str]) -> tuple[int, str] | None:
    """The 1-based row and quote (``"``, ``'``, ``\"\"\"``, ``'''``) of the first string
    that is opened and not closed, skipping comments; None if every string closes."""
    open_at: tuple[int, str] | None = None
    for number, raw in enumerate(rows, start=1):
        i = 0
        while i < len(raw):
            if open_at is not None:  # inside a multi-line string
                quote = open_at[1]
                end = raw.find(quote, i)
                while quote == '"""' and end > 0 and _escaped(raw, end):
                    end = raw.find(quote, end + 1)
                if end < 0:
                    break
                open_at, i = None, end + 3
                continue
            char = raw[i]
            if char == "#":
                break
            if char not in "\"'":
                i += 1
                continue
            if raw.startswith(char * 3, i):
                open_at, i = (number, char * 3), i + 3
                continue
            end = i + 1
            while end < len(raw) and not (
                raw[end] == char and not (char == '"' and _escaped(raw, end))
            ):
                end += 1
            if end >= len(raw):
                return number, char
            i = end + 1
    return open_at


def _escaped(raw: str, index: int) -> bool:
    """True when the character at ``index`` follows an odd number of backslashes."""
    count = 0
    while index - count - 1 >= 0 and raw[index - count - 1] == "\\":
        count += 1
    return count % 2 == 1


def _close_string_hint(quote: str) -> str:
    if len(quote) == 3:
        return f"end it with {quote}"
    if quote == '"':
        return 'end it with " on the same line; for text over several lines use """ ... """'
    return "end it with ' on the same line; for text over several lines use ''' ... '''"


def statement(raw: str) -> tuple[str, str] | None:
    """The dotted key (quotes removed) and the raw value of a ``key = value`` line."""
    match = STATEMENT.match(raw)
    if not match:
        return None
    parts = re.findall(_KEY_PART, match.group(1))
    return ".".join(part.strip("\"'") for part in parts), match.group(2)


def table_at(rows: list[str], row: int) -> str:
    """The TOML table (``[name]``) in force at 1-based ``row``."""
    for raw in reversed(rows[: row - 1]):
        header = HEADER.match(raw)
        if header:
            return _dotted(header.group(1))
    return ""


def key_at(rows: list[str], row: int) -> str | None:
    """The full dotted key (table included) set on 1-based ``row``; None if none is."""
    found = statement(rows[row - 1])
    if found is None:
        return None
    table = table_at(rows, row)
    return f"{table}.{found[0]}" if table else found[0]


def _dotted(name: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in name.split("."))


def _unclosed_bracket(rows: list[str], row: int, array: bool, first_line: int) -> Explained:
    opener, what = ("[", "array") if array else ("{", "inline table")
    start = row
    for number in range(row, 0, -1):
        found = statement(rows[number - 1])
        if found is not None and found[1].lstrip().startswith(opener):
            start = number
            break
    if array:
        hint = "end it with ], and put a comma between its items"
    else:
        hint = "end it with } on the same line: an inline table cannot run over several lines"
    return Explained(
        start,
        key_at(rows, start),
        f"the {what} opened on line {start + first_line - 1} is not closed",
        hint,
    )


def _set_twice(rows: list[str], row: int, first_line: int) -> Explained:
    key = key_at(rows, row)
    header = HEADER.match(rows[row - 1])
    if key is None and header:
        name = _dotted(header.group(1))
        return Explained(
            row,
            name,
            f"the table [{name}] clashes with a value of the same name set earlier",
            f"keep either {name} = ... or the [{name}] table",
        )
    for number in range(1, row):
        if key is not None and key_at(rows, number) == key:
            return Explained(
                row,
                key,
                f"{key} is set twice, on line {number + first_line - 1} "
                f"and again on line {row + first_line - 1}",
                "keep one of them",
            )
    return Explained(
        row,
        key,
        f"{key or 'this key'} sets a value that an earlier line already set",
        "a key, and a table, can be set only once in a file",
    )


def _table_twice(rows: list[str], row: int, declared: str, first_line: int) -> Explained:
    name = ".".join(re.findall(r"'((?:[^'\\]|\\.)*)'", declared)) or declared
    first = next(
        (
            number
            for number in range(1, row)
            if (header := HEADER.match(rows[number - 1])) and _dotted(header.group(1)) == name
        ),
        None,
    )
    where = (
        f"twice, on line {first + first_line - 1} and again on line {row + first_line - 1}"
        if first is not None
        else f"a second time on line {row + first_line - 1}"
    )
    return Explained(
        row,
        name,
        f"the table [{name}] is written {where}",
        f"merge the two into one [{name}] table",
    )


def _missing_equals(rows: list[str], row: int) -> Explained:
    raw = rows[row - 1].strip()
    match = re.match(rf"^({_BARE_KEY})\s+({_BARE_KEY})\s*=", raw)
    if match:
        joined = f"{match.group(1)}_{match.group(2)}"
        return Explained(
            row,
            None,
            f"a key cannot contain a space: {match.group(1)} {match.group(2)}",
            f'write {joined}, or put the key in quotes: "{match.group(1)} {match.group(2)}"',
        )
    key = re.match(rf"^{_BARE_KEY}", raw)
    name = key.group() if key else raw
    table = table_at(rows, row)
    return Explained(
        row,
        (f"{table}.{name}" if table else name) if key else None,
        f"{name} has no '=' between the key and its value",
        f'write {name} = followed by the value, e.g. title = "Pilot"',
    )


def _bad_value(
    rows: list[str], row: int, message: str, model: type[BaseModel] | None
) -> Explained | None:
    found = statement(rows[row - 1])
    if found is None:
        return None
    key = key_at(rows, row) or found[0]
    value = _without_comment(found[1]).strip()
    needs = needs_phrase(model, tuple(key.split(".")))
    short = key.rsplit(".", 1)[-1]
    if not value:
        return Explained(row, key, f"{short} has no value after '='", f"{short} needs {needs}")
    if value[0] in TYPOGRAPHIC_QUOTES:
        return Explained(
            row,
            key,
            f"{short} is in typographic quotes {value[0]}...{value[-1]}",
            f'use straight double quotes: {short} = "..."',
        )
    if message == VALUE_MESSAGES[2]:
        return Explained(
            row,
            key,
            f"something follows the value of {short} on the same line",
            "put each key = value on a line of its own, and all of a text inside its quotes",
        )
    if value.lower() in WRONG_CASE_BOOLEANS and needs == "true or false":
        return Explained(
            row,
            key,
            f"{short} needs true or false, in lower case, not {value}",
            "write true or false",
        )
    return Explained(
        row,
        key,
        f"{short} needs {needs}, not {value}",
        _bare_word_hint(short, value, needs),
    )


def _bare_word_hint(key: str, value: str, needs: str) -> str:
    if needs.startswith("text"):
        return f'put text in double quotes: {key} = "{value}"'
    if needs.startswith("a date"):
        return "write the date as YYYY-MM-DD, without quotes"
    return "only text goes in quotes; numbers, dates, true and false are written bare"


def _without_comment(value: str) -> str:
    """``value`` up to a ``#`` that starts a comment (one outside quotes)."""
    quote = ""
    for i, char in enumerate(value):
        if quote:
            if char == quote and not (quote == '"' and _escaped(value, i)):
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "#":
            return value[:i]
    return value


def needs_phrase(model: type[BaseModel] | None, loc: tuple[str, ...]) -> str:
    """What the field at ``loc`` of ``model`` takes, in words with an example."""
    annotation = _annotation(model, loc)
    if annotation is None:
        return "a value: text in double quotes, a number, true or false, or a date"
    kinds = set(_kinds(annotation))
    choices = [arg for arg in kinds if isinstance(arg, str)]
    if any(isinstance(kind, type) and issubclass(kind, BaseModel) for kind in kinds):
        return f"a table: write [{'.'.join(loc)}] on a line of its own, with its keys below"
    if datetime in kinds:
        return "a date such as 2025-01-17, or a date and time such as 2025-01-17T21:00:00"
    if date in kinds:
        return "a date such as 2025-01-17"
    if time in kinds:
        return "a time such as 21:00:00"
    if bool in kinds:
        return "true or false"
    if int in kinds:
        return "a whole number such as 3"
    if choices:
        return "one of " + ", ".join(f'"{choice}"' for choice in sorted(choices))
    return 'text in double quotes, such as "..."'


def _annotation(model: type[BaseModel] | None, loc: tuple[str, ...]) -> Any:
    owner: type[BaseModel] | None = model
    for part in loc:
        if owner is None:
            return None
        info = owner.model_fields.get(part)
        if info is None:
            return None
        if part == loc[-1]:
            return info.annotation
        owner = next(
            (
                k
                for k in _kinds(info.annotation)
                if isinstance(k, type) and issubclass(k, BaseModel)
            ),
            None,
        )
    return None


def _kinds(annotation: Any) -> list[Any]:
    """The plain types (and Literal choices) inside an annotation such as ``date | None``."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return list(typing.get_args(annotation))
    if origin is typing.Annotated:
        return _kinds(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [kind for arg in typing.get_args(annotation) for kind in _kinds(arg)]
    return [annotation]

"""Cutting a stream into documents, as kubectl's apimachinery decoder.go does.

Why apart: where a document starts and ends (and on which line) is the same question for
the fast path, the slow path and `line_of`, and has nothing to do with decoding values.

Contract:
- A text whose first non-space character is `{` (`_JSON_START`) is a stream of JSON
  values: `_json_spans` gives [(start, end, line, value)], read as sigs.k8s.io/json
  PreserveInts does, or raises UserError.
- Otherwise `_spans` gives [(start, end, line0, first line)] of each document exactly where
  YAMLReader cuts it (a line starting `---`, only a comment may follow), empty documents
  included, and `_chunk` gives a document's text as YAMLReader hands it on (lines end "\n").
"""

from __future__ import annotations

import json
import math
import re

from ..errors import UserError
from .kubeyaml_scalars import _INT64, _json_value


_SEPARATOR = re.compile(r"\n---([^\n]*)")  # decoder.go YAMLReader.Read: a line starting ---
_FIRST_SEPARATOR = re.compile(r"---([^\n]*)")
_CONTENT = re.compile(r"[ \t]*[^ \t\r\n#]")  # a line neither blank nor a comment
_BLANK_OR_COMMENT = " \t\r\n#"
_NEXT_CONTENT = re.compile(r"\n[ \t]*[^ \t\r\n#]")
_JSON_START = re.compile(r"\s*\{")  # decoder.go GuessJSONStream, hasJSONPrefix
_SPACE = re.compile(r"\s*")


def _spans(text, filename):
    """[(start, end, line0, first line)] of each document, as kubectl's YAMLReader cuts them.

    `line0` counts the lines before the document; the first line is its content's (for an
    empty document: its `---` line).  Before the first `---`, only content makes a document.
    """
    first = _FIRST_SEPARATOR.match(text)
    seps = [(0, first.end())] if first else []
    seps += [(m.start() + 1, m.end()) for m in _SEPARATOR.finditer(text)]
    seps.append((len(text), len(text)))
    spans, start, line = [], 0, 1
    count = text.count
    for sep_start, sep_end in seps:
        sep_line = line + count("\n", start, sep_start)
        if start < sep_start and text[start] not in _BLANK_OR_COMMENT:
            spans.append((start, sep_start, line - 1, line))  # most documents: content at once
        else:
            m = _CONTENT.match(text, start, sep_start)
            content = start if m else (m := _NEXT_CONTENT.search(text, start, sep_start)) and m.start() + 1
            if content is not None:
                spans.append((start, sep_start, line - 1, line + count("\n", start, content)))
            elif start:  # after a `---`: an empty document
                spans.append((start, sep_start, line - 1, line - 1))
        if sep_end - sep_start > 3 and (rest := text[sep_start + 3:sep_end].strip()) and rest[0] != "#":
            raise UserError(f"invalid document separator: kubectl allows only a comment after ---, "
                            f"not {rest!r}", file=filename, line=sep_line, col=4)
        start, line = sep_end + 1, sep_line + 1
    return spans


def _chunk(text, start, end):
    """A document's text as YAMLReader hands it on: every line ends in a bare "\n"."""
    chunk = text[start:end].replace("\r\n", "\n") if "\r" in text else text[start:end]
    return chunk if not chunk or chunk[-1] == "\n" else chunk + "\n"


def _json_spans(text, filename):
    """[(start, end, line, value)] of a JSON stream, read as sigs.k8s.io/json PreserveInts does."""

    def number(s):
        if not math.isfinite(f := float(s)):  # also NaN, Infinity: not JSON
            raise ValueError(f"number {s if len(s) <= 30 else s[:27] + '...'} is not a valid float64")
        return _json_value(f)  # kubectl sends 2.0 as 2: encoding/json writes it so

    def pairs(items):
        if len(out := dict(items)) < len(items):
            seen = set()
            raise ValueError(f"duplicate key {next(k for k, _ in items if k in seen or seen.add(k))!r}")
        return out

    decoder = json.JSONDecoder(object_pairs_hook=pairs, parse_float=number, parse_constant=number,
                               parse_int=lambda s: number(s) if len(s) > 20 or not -_INT64 <= int(s) < _INT64 else int(s))
    spans, pos = [], 0
    while (pos := _SPACE.match(text, pos).end()) < len(text):
        line = text.count("\n", 0, pos) + 1
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise UserError(f"invalid JSON: {e.msg}", file=filename, line=e.lineno, col=e.colno) from None
        except ValueError as e:
            raise UserError(f"invalid JSON: {e}", file=filename, line=line) from None
        except RecursionError:
            raise UserError("document is nested too deeply", file=filename, line=line) from None
        if _SURROGATE_ESCAPE.search(text, pos, end):
            value = _without_lone_surrogates(value)
        spans.append((pos, end, line, value))
        pos = end
    return spans


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_lone_surrogates(value):
    """encoding/json reads a \\uD800 escape that is not half of a pair as U+FFFD."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    return value

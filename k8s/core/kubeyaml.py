"""Decode Kubernetes manifests exactly as kubectl does, and fast.

kubectl's pipeline, reproduced here:

1. k8s.io/apimachinery pkg/util/yaml/decoder.go: a stream whose first non-space character
   is `{` is a stream of JSON values; otherwise `YAMLReader.Read` cuts the text at every
   line starting with `---` (only a comment may follow it) and hands each piece on with
   every line ending in "\n".
2. sigs.k8s.io/yaml yaml.go `Unmarshal` -> go.yaml.in/yaml/v2 (go-yaml v2.4) decodes the
   first YAML document of a piece into interface{}: YAML 1.1-ish scalars (resolve.go),
   merge keys and aliases (decode.go).
3. `convertToJSONableObject` makes keys strings, encoding/json writes numbers ES6-style
   (NaN/Inf fail) and apimachinery reads the JSON back with sigs.k8s.io/json PreserveInts:
   a number without '.' that fits int64 is an int.

The slow path composes nodes with libyaml (pyyaml's C parser; go-yaml v2 is a port of
libyaml, where 0.2.5 differs `_Decoder` follows go-yaml) and applies those rules: it is
the definition of correct.  The fast path hands a piece to yaml-rs (YAML 1.2) only when
`is_fast` finds nothing the two could read differently.  Duplicate keys are an error
(kubectl's strict field validation); `<<` merges in place, as go-yaml v2 does.

Where the pieces live (each imports only those above it):
- kubeyaml_scalars: go-yaml v2 scalar resolution and the JSON number/key conversion;
- kubeyaml_decoder: the slow reference decoder (libyaml nodes -> JSON values);
- kubeyaml_stream: cutting a stream into documents (YAML `---` or a JSON stream);
- kubeyaml_guard: `is_fast`, the fast path's guard;
- this module: the public entry points, choosing fast or slow per document.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import yaml_rs

from ..errors import UserError
from .kubeyaml_guard import is_fast
from .kubeyaml_stream import _chunk, _json_spans, _JSON_START, _spans

__all__ = ["Document", "load_all", "load_each", "load_all_substituting", "line_of", "is_fast", "document_text"]


@dataclass(slots=True)
class Document:
    """One document of a file.

    Parameters:
        index: 0-based position in the file (empty documents count).
        line: 1-based line where its content starts (for an empty one: its `---` line).
        data: the decoded value, None for an empty document.
        span: (start, end) of its text in a YAML stream, as kubectl cuts it (None in a JSON one).
    """

    index: int
    line: int
    data: object
    span: tuple | None = field(default=None, compare=False)


_SLOW = object()


def _check(text, filename):
    if "\x00" in text:
        raise UserError("binary file (it contains NUL bytes), not YAML or JSON", file=filename)


def load_all(text: str, filename: str) -> list[Document]:
    """Every document of `text`, empty ones included with data None.

    Parameters:
        text: the file's content.
        filename: for error messages.
    Raises UserError(file, line, col) where kubectl would fail.
    """
    _check(text, filename)
    if _JSON_START.match(text):
        try:
            return [Document(i, line, v) for i, (_, _, line, v) in enumerate(_json_spans(text, filename))]
        except UserError as json_error:  # kubectl reads `{a: 1,}` as YAML when it is no JSON
            try:
                return _load_yaml(text, filename)
            except UserError:
                raise json_error from None
    return _load_yaml(text, filename)


def load_each(texts: list[str], filenames: list[str]) -> list:
    """`load_all` of each text: its documents, or the UserError it raises."""
    results, yaml_texts = [None] * len(texts), []
    for i, (text, filename) in enumerate(zip(texts, filenames)):
        if "\x00" in text or _JSON_START.match(text):
            results[i] = _attempt(load_all, text, filename)  # refused, or JSON: as load_all does
        else:
            yaml_texts.append(i)
    for i, docs in zip(yaml_texts, _yaml_each([texts[i] for i in yaml_texts], [filenames[i] for i in yaml_texts])):
        results[i] = docs
    return results


def _load_yaml(text, filename):
    [docs] = _yaml_each([text], [filename])
    if isinstance(docs, UserError):
        raise docs
    return docs


def _yaml_each(texts, filenames):
    """The documents of each YAML text, or its UserError. A step at a time over all the texts
    (guard every text, then cut every one, then parse every one), not text after text: each
    step's code stays in the CPU's caches, which takes a tenth off the render of a large tree."""
    fast = [is_fast(text) for text in texts]
    cuts = [_attempt(_spans, text, filename) for text, filename in zip(texts, filenames)]
    wholes = [_whole(text, len(cut)) if f and type(cut) is list else None
              for text, f, cut in zip(texts, fast, cuts)]
    return [_attempt(_documents, text, filename, f, cut, whole) if type(cut) is list else cut
            for text, filename, f, cut, whole in zip(texts, filenames, fast, cuts, wholes)]


def _attempt(function, *args):
    try:
        return function(*args)
    except UserError as err:
        return err


def _documents(text, filename, fast, spans, whole):
    """The documents of a YAML `text` cut at `spans`: from `whole` (one yaml-rs call's, or
    None), else one by one, by yaml-rs when `fast` and it reads the document, else slowly."""
    if whole is not None:
        return [Document(index, span[3], data, span[:2]) for index, (span, data) in enumerate(zip(spans, whole))]
    docs = []
    for index, (start, end, line0, line) in enumerate(spans):
        chunk = _chunk(text, start, end)
        try:
            data = yaml_rs.loads(chunk, parse_datetime=False) if fast else _SLOW
        except Exception:  # yaml-rs refused it: libyaml decides, and reports
            data = _SLOW
        docs.append(Document(index, line, _decode(chunk, filename, line0) if data is _SLOW else data, (start, end)))
    return docs


def _decode(*args):
    """The slow reference decoder (kubeyaml_decoder), loaded on first use: PyYAML under it
    costs 12 ms of every start, and most renders never need it."""
    from .kubeyaml_decoder import _decode as decode

    return decode(*args)


def document_text(text, span):
    """The text of the document at `span` of `text`, as kubectl reads it (lines end "\n")."""
    return _chunk(text, *span)


def _whole(text, count):
    """Every document from one yaml-rs call (a call per document costs half as much again),
    or None unless it surely cut the text where kubectl does: as many documents as spans."""
    if count < 2:
        return None
    try:
        data = yaml_rs.loads(text.replace("\r\n", "\n") if "\r" in text else text, parse_datetime=False)
    except Exception:
        return None
    return data if isinstance(data, list) and len(data) == count else None


def load_all_substituting(text: str, filename: str, expand) -> list[Document]:
    """Like `load_all`, for a template whose scalars still hold variables.

    Parameters:
        expand: function(str) -> str, called on the text of every scalar (keys too) after
            YAML unquoting; a plain scalar is then resolved by kubectl's rules on the expanded
            text, so an expansion never changes the YAML structure.  Quoted and block scalars
            stay strings.
    """
    _check(text, filename)
    return [Document(index, line, _decode(_chunk(text, start, end), filename, line0, expand))
            for index, (start, end, line0, line) in enumerate(_spans(text, filename))]


def line_of(text: str, filename: str, doc_index: int, path: list) -> int | None:
    """1-based line of the node at JSON `path` (keys and list indexes) in document `doc_index`.

    A mapping entry's line is its key's.  If the path ends early: the line of the deepest
    node that exists; None if the document does not exist or does not parse.
    """
    lines = _line_index(text, filename, doc_index)
    if lines is None:
        return None
    for end in range(len(path), -1, -1):
        line = lines.get(tuple(path[:end]))
        if line is not None:
            return line
    return None


@functools.lru_cache(maxsize=64)  # the errors of one document ask again and again
def _line_index(text, filename, doc_index):
    """{JSON path (a tuple): 1-based line} of every node of document `doc_index`, or None:
    one parse for all the lines asked for, however many errors a document has."""
    import yaml

    from .kubeyaml_decoder import _compose, _Decoder

    try:
        _check(text, filename)
        if _JSON_START.match(text):
            start, end, line, _ = _json_spans(text, filename)[doc_index]
            line0 = line - 1
        else:
            start, end, line0, line = _cached_spans(text, filename)[doc_index]
        node, chunk = _compose(_chunk(text, start, end), filename, line0)
    except (UserError, IndexError):
        return None
    decoder, lines, todo = _Decoder(filename, chunk, line0), {(): line}, [((), node)]
    mapping, sequence = yaml.MappingNode, yaml.SequenceNode
    while todo:  # iterative: a deeply nested document must not exhaust the stack
        path, node = todo.pop()
        if isinstance(node, mapping):
            try:
                entries = [(key, k, v) for key, k, v in decoder.pairs(node) if isinstance(key, str)]
            except UserError:
                continue
            for key, key_node, value_node in entries:
                lines[path + (key,)] = line0 + key_node.start_mark.line + 1
                todo.append((path + (key,), value_node))
        elif isinstance(node, sequence):
            for i, item in enumerate(node.value):
                lines[path + (i,)] = line0 + item.start_mark.line + 1
                todo.append((path + (i,), item))
    return lines


@functools.lru_cache(maxsize=16)
def _cached_spans(text, filename):
    return _spans(text, filename)

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
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
import struct
from dataclasses import dataclass

import yaml
import yaml_rs

from ..errors import UserError

__all__ = ["Document", "load_all", "load_all_substituting", "line_of", "is_fast"]


@dataclass(slots=True)
class Document:
    """One document of a file.

    Parameters:
        index: 0-based position in the file (empty documents count).
        line: 1-based line where its content starts (for an empty one: its `---` line).
        data: the decoded value, None for an empty document.
    """

    index: int
    line: int
    data: object


# --- go-yaml v2 resolve.go ----------------------------------------------------------------

_T = "tag:yaml.org,2002:"
_STR, _BOOL, _INT, _FLOAT, _NULL, _TIMESTAMP, _BINARY, _MERGE = (
    _T + t for t in ("str", "bool", "int", "float", "null", "timestamp", "binary", "merge"))
_RESOLVABLE = {"", _STR, _BOOL, _INT, _FLOAT, _NULL, _TIMESTAMP}  # resolvableTag()
_INT64 = 1 << 63
# resolveTable: what the first character says a plain scalar may be
_HINT = {**dict.fromkeys("0123456789", "D"), "+": "S", "-": "S", ".": ".",
         **dict.fromkeys("yYnNtTfFoO~", "M")}
_WORDS = {"": (_NULL, None)}  # resolveMap
for _tag, _value, _words in [
        (_BOOL, True, "y Y yes Yes YES true True TRUE on On ON"),
        (_BOOL, False, "n N no No NO false False FALSE off Off OFF"),
        (_NULL, None, "~ null Null NULL"),
        (_FLOAT, math.nan, ".nan .NaN .NAN"),
        (_FLOAT, math.inf, ".inf .Inf .INF +.inf +.Inf +.INF"),
        (_FLOAT, -math.inf, "-.inf -.Inf -.INF")]:
    _WORDS.update(dict.fromkeys(_words.split(), (_tag, _value)))
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")  # yamlStyleFloat
# strconv.ParseUint(s, 0, 64) (Go atoi.go): 0b/0o/0x prefixes; a bare leading 0 means octal
_GO_UINT = re.compile(r"0[bB]([01]+)|0[oO]([0-7]+)|0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9][0-9]*)")
# strconv.ParseFloat on a '.'-led scalar (atof.go readFloat, underscoreOK)
_DOT_FLOAT = re.compile(r"\.[0-9_]+(?:[eE][-+]?[0-9][0-9_]*)?")
_BAD_UNDERSCORE = re.compile(r"[^0-9]_|_[^0-9]|_$")
# parseTimestamp's layouts: 2006-1-2T15:4:5.999999999Z07:00, "2006-1-2 15:4:5.999999999", 2006-1-2
_TIMESTAMP_RE = re.compile(r"(\d{4})-(\d\d?)-(\d\d?)(?:[Tt](\d\d?):(\d\d?):(\d\d?)(?:[.,]\d+)?"
                        r"(?:Z|[-+]\d\d:\d\d)| (\d\d?):(\d\d?):(\d\d?)(?:[.,]\d+)?)?")
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _is_timestamp(s):
    if not (m := _TIMESTAMP_RE.fullmatch(s)):
        return False
    y, mo, d, *hms = (int(g or 0) for g in m.groups())
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    return (1 <= mo <= 12 and 1 <= d <= _MONTH_DAYS[mo - 1] - (mo == 2 and not leap)
            and all(v < (24 if i % 3 == 0 else 60) for i, v in enumerate(hms)))


def _go_int(plain):
    """strconv.ParseInt(plain, 0, 64), else ParseUint(plain, 0, 64) (a uint64 is >= 2**63)."""
    sign = plain[:1] if plain[:1] in ("+", "-") else ""
    if not (m := _GO_UINT.fullmatch(plain[len(sign):])):
        return None
    b, o, x, octal, dec = m.groups()
    try:
        u = int(b, 2) if b else int(o, 8) if o else int(x, 16) if x else int(octal or dec, 8 if octal else 10)
    except ValueError:  # beyond Python's 4300 digits: far beyond 64 bits too
        return None
    if sign == "-":
        return -u if u <= _INT64 else None
    return u if u < _INT64 or (not sign and u < 1 << 64) else None


def _float(s):
    f = float(s.replace("_", ""))
    return None if math.isinf(f) else f  # Go's ParseFloat fails on overflow


def _resolve(value, tag=""):
    """resolve(tag, in): (resolved tag, Go value) of a scalar; a timestamp stays text."""
    hint = _HINT.get(value[:1]) if value else "N"
    if hint and tag != _STR:
        if value in _WORDS:
            return _WORDS[value]
        if hint == "." and _DOT_FLOAT.fullmatch(value) and not _BAD_UNDERSCORE.search(value):
            if (f := _float(value)) is not None:
                return _FLOAT, f
        elif hint in "DS":
            if tag in ("", _TIMESTAMP) and _is_timestamp(value):
                return _TIMESTAMP, value  # decode.go scalar() keeps the string
            plain = value.replace("_", "")
            if (i := _go_int(plain)) is not None:
                return _INT, i
            if _YAML_FLOAT.fullmatch(plain) and (f := _float(plain)) is not None:
                return _FLOAT, f
            # the later "0b" retries in resolve.go never succeed where ParseInt(s, 0) failed
    return _STR, value


# --- sigs.k8s.io/yaml yaml.go, encoding/json, sigs.k8s.io/json ------------------------------

def _json_value(v):
    """A Go scalar after json.Marshal and a PreserveInts read; ValueError where Marshal fails."""
    if type(v) is float:
        if not math.isfinite(v):
            word = ".nan" if math.isnan(v) else "-.inf" if v < 0 else ".inf"
            raise ValueError(f"{word} cannot be represented in JSON (kubectl: json: unsupported value)")
        # encode.go floatEncoder writes an integral |v| < 1e21 without '.' or exponent
        if v.is_integer() and abs(v) < 1e21 and -_INT64 <= v < _INT64:
            return int(v)
    elif type(v) is int and v >= _INT64:
        return float(v)  # a uint64 does not fit int64, so it is read back as a float
    return v


def _float32_g(f):
    """strconv.FormatFloat(f, 'g', -1, 32), as convertToJSONableObject writes a float key."""
    if math.isnan(f):
        return ".nan"
    try:
        f32 = struct.unpack("<f", struct.pack("<f", f))[0]
    except OverflowError:
        f32 = math.copysign(math.inf, f)
    if math.isinf(f32) or f32 == 0:
        return {math.inf: ".inf", -math.inf: "-.inf"}.get(f32, "-0" if math.copysign(1, f32) < 0 else "0")
    for p in range(1, 10):  # the shortest digits that read back as the same float32
        digits, exp = f"{abs(f32):.{p - 1}e}".split("e")
        if struct.unpack("<f", struct.pack("<f", float(f"{digits}e{exp}")))[0] == abs(f32):
            break
    digits, exp, sign = digits.replace(".", "").rstrip("0") or "0", int(exp), "-" if f32 < 0 else ""
    if exp < -4 or exp >= 6:  # ftoa.go: %e when shortest and exp < -4 || exp >= 6
        mantissa = digits[0] + ("." + digits[1:] if digits[1:] else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp < 0:
        return f"{sign}0.{'0' * (-exp - 1)}{digits}"
    return sign + digits[:exp + 1].ljust(exp + 1, "0") + ("." + digits[exp + 1:] if digits[exp + 1:] else "")


def _json_key(v):
    """convertToJSONableObject's string for a key; ValueError where it fails."""
    if type(v) is str:
        return v
    if type(v) is bool:
        return "true" if v else "false"
    if type(v) is int and v < _INT64:
        return str(v)
    if type(v) is float:
        return _float32_g(v)
    raise ValueError(f"unsupported map key {'null' if v is None else f'{v} (a uint64)'}")


# --- the slow, reference path ---------------------------------------------------------------

class _Loader(yaml.CSafeLoader):
    """libyaml composing nodes; a tag libyaml leaves implicit stays '' for `_Decoder`."""

    def resolve(self, kind, value, implicit):
        return ""


_MAX_DEPTH = 5000  # libyaml's recursive composer crashes near 20000 levels, go-yaml stops at 10000
_DEEP = re.compile(rf"\n[ -]{{{_MAX_DEPTH}}}")  # led by a literal "\n": a fast scan
_DEEP_FIRST = re.compile(rf"[ -]{{{_MAX_DEPTH}}}")


def _too_deep(text):
    """Whether a line is indented (or "- " nested) `_MAX_DEPTH` deep."""
    return bool(_DEEP.search(text) or _DEEP_FIRST.match(text))

_BRACKET = re.compile(r"[\[\]{}]")
_BANG = re.compile(r"(?:&\S+[ \t]+)?![ \t\r\n]")  # a plain scalar tagged with the bare `!`


class _Decoder:
    """decode.go's unmarshal into interface{} plus the JSON round trip, over libyaml nodes.

    Parameters:
        filename, line0: for errors (`line0` = lines before this document's text).
        text: the document's text as parsed.
        expand: optional function applied to every scalar's text before resolving.
    """

    def __init__(self, filename, text, line0, expand=None):
        self.filename, self.text, self.line0, self.expand = filename, text, line0, expand
        self.seen, self.stack = set(), set()
        self.count = self.aliased = self.alias_depth = 0

    def error(self, node, message):
        m = node.start_mark
        return UserError(message, file=self.filename, line=self.line0 + m.line + 1, col=m.column + 1)

    def _enter(self, node):
        """Count a node as decode.go does (an alias is a node met again: pyyaml shares it)."""
        if id(node) in self.stack:
            raise self.error(node, "anchor value contains itself")
        alias = id(node) in self.seen
        self.seen.add(id(node))
        self.stack.add(id(node))
        self.alias_depth += alias
        self.count += 1
        self.aliased += self.alias_depth > 0
        n = self.count  # allowedAliasRatio: 99% up to 400,000 decodes, down to 10% at 4,000,000
        ratio = 0.99 if n <= 400_000 else 0.10 if n >= 4_000_000 else 0.99 - 0.89 * (n - 400_000) / 3_600_000
        if self.aliased > 100 and n > 1000 and self.aliased / n > ratio:
            raise self.error(node, "document contains excessive aliasing")
        return alias

    def _leave(self, node, alias):
        self.stack.discard(id(node))
        self.alias_depth -= alias

    def decode(self, node):
        """The JSON value of `node`."""
        alias = self._enter(node)
        try:
            if isinstance(node, yaml.ScalarNode):
                try:
                    return _json_value(self.scalar(node))
                except ValueError as e:
                    raise self.error(node, str(e)) from None
            self._check_flow(node)
            if isinstance(node, yaml.SequenceNode):
                return [self.decode(child) for child in node.value]
            return {key: self.decode(value) for key, _, value in self.pairs(node)}
        finally:
            self._leave(node, alias)

    def _check_flow(self, node):
        """In [ ] and { }, go-yaml v2 (scannerc.go) ends a plain scalar at '?' and reads a
        leading ':' as an indicator; libyaml 0.2.5 reads both as text."""
        if not node.flow_style:
            return
        children = node.value if isinstance(node, yaml.SequenceNode) else [n for kv in node.value for n in kv]
        for child in children:
            if (isinstance(child, yaml.ScalarNode) and not child.style
                    and (child.value[:1] == ":" or "?" in child.value[1:])):
                raise self.error(child, "kubectl cannot read a plain scalar with '?' or a leading ':' "
                                 "inside [ ] or { } (quote it)")

    def scalar(self, node):
        """The Go value of a scalar (decode.go scalar(), resolve.go resolve())."""
        value = node.value if self.expand is None else self.expand(node.value)
        tag = node.tag
        if tag == _BINARY:
            try:
                data = base64.b64decode(re.sub("[\r\n]", "", value), validate=True)
            except binascii.Error:
                raise self.error(node, "!!binary value contains invalid base64 data") from None
            # json.Marshal turns every byte of invalid UTF-8 into U+FFFD
            return re.sub("[\udc80-\udcff]", "\ufffd", data.decode("utf-8", "surrogateescape"))
        if node.style == '"' and "\\/" in self.text:  # libyaml 0.2.5 takes \/, go-yaml v2 does not
            if "/" in re.findall(r"\\(.)", self.text[node.start_mark.index:node.end_mark.index], re.S):
                raise self.error(node, "found unknown escape character \\/ in a quoted scalar")
        if not tag:
            if node.style or _BANG.match(self.text, node.start_mark.index):
                return value  # quoted and block scalars are strings, and so is `! x`
            return _resolve(value)[1]
        if tag not in _RESOLVABLE:
            return value  # a custom tag, !!map on a scalar ...: the text
        rtag, out = _resolve(value, tag)
        if tag in (rtag, _STR):
            return out
        if tag == _FLOAT and rtag == _INT and out < _INT64:
            return float(out)
        short = [t.replace(_T, "!!") for t in (rtag, tag)]
        raise self.error(node, f"cannot decode {short[0]} `{value}` as a {short[1]}")

    def key(self, node):
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, "invalid map key: a mapping or a sequence cannot be a key")
        alias = self._enter(node)
        try:
            return _json_key(self.scalar(node))
        except ValueError as e:
            raise self.error(node, str(e)) from None
        finally:
            self._leave(node, alias)

    def pairs(self, node):
        """(JSON key, key node, value node) of a mapping, in the order go-yaml sets them.

        decode.go mapping() merges `<<`'s mapping(s) in place: a merged key overrides the
        keys before it and is overridden by those after; of a merged list, the first map
        wins.  A key given twice in one mapping is an error.
        """
        explicit = set()
        for key_node, value_node in node.value:
            if (isinstance(key_node, yaml.ScalarNode) and key_node.value == "<<"
                    and (key_node.tag == _MERGE or not key_node.tag and not key_node.style)):
                sources = [value_node]
                if isinstance(value_node, yaml.SequenceNode):
                    sources = value_node.value[::-1]
                if not all(isinstance(n, yaml.MappingNode) for n in sources):
                    raise self.error(value_node, "map merge requires map or sequence of maps as the value")
                for source in sources:
                    alias = self._enter(source)
                    try:
                        self._check_flow(source)
                        yield from self.pairs(source)
                    finally:
                        self._leave(source, alias)
                continue
            key = self.key(key_node)
            if key in explicit:
                raise self.error(key_node, f"duplicate key {key!r} in a mapping")
            explicit.add(key)
            yield key, key_node, value_node


def _compose(text, filename, line0):
    """(root node of the first YAML document of `text` or None, the text parsed)."""
    depth = 0
    if _too_deep(text) or text.count("[") + text.count("{") >= _MAX_DEPTH and any(
            (depth := depth + (1 if m.group() in "[{" else -1)) >= _MAX_DEPTH
            for m in _BRACKET.finditer(text)):
        raise UserError("document is nested too deeply", file=filename, line=line0 + 1)
    while True:
        loader = _Loader(text)
        try:
            return (loader.get_node() if loader.check_node() else None), text
        except yaml.reader.ReaderError as e:  # a character YAML does not allow
            line, char = text.count("\n", 0, e.position), e.character
            raise UserError(f"invalid YAML: character #x{char if isinstance(char, int) else ord(char):04x} "
                            "is not allowed", file=filename, line=line0 + line + 1,
                            col=e.position - text.rfind("\n", 0, e.position)) from None
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            if e.problem == "found unknown escape character" and text[mark.index:mark.index + 2] == "\\'":
                text = text[:mark.index] + text[mark.index + 1:]  # go-yaml v2 reads \' in "..." as '
                continue
            message = f"{e.problem} ({e.context})" if e.context else e.problem
            raise UserError(f"invalid YAML: {message}", file=filename,
                            line=line0 + mark.line + 1, col=mark.column + 1) from None
        finally:
            loader.dispose()


def _decode(text, filename, line0, expand=None):
    node, text = _compose(text, filename, line0)
    try:
        return None if node is None else _Decoder(filename, text, line0, expand).decode(node)
    except RecursionError:
        raise UserError("document is nested too deeply", file=filename, line=line0 + 1) from None


# --- documents ------------------------------------------------------------------------------

_SEPARATOR = re.compile(r"\n---([^\n]*)")  # decoder.go YAMLReader.Read: a line starting ---
_FIRST_SEPARATOR = re.compile(r"---([^\n]*)")
_CONTENT = re.compile(r"[ \t]*[^ \t\r\n#]")  # a line neither blank nor a comment
_NEXT_CONTENT = re.compile(r"\n[ \t]*[^ \t\r\n#]")
_JSON_START = re.compile(r"\s*\{")  # decoder.go GuessJSONStream, hasJSONPrefix
_SPACE = re.compile(r"\s*")


def _spans(text, filename):
    """[(start, end, line0, first line)] of each document, as kubectl's YAMLReader cuts them.

    `line0` counts the lines before the document; the first line is its content's (for an
    empty document: its `---` line).  Before the first `---`, only content makes a document.
    """
    first = _FIRST_SEPARATOR.match(text)
    seps = [(0, first.end(), first.group(1))] if first else []
    seps += [(m.start() + 1, m.end(), m.group(1)) for m in _SEPARATOR.finditer(text)]
    spans, start, line = [], 0, 1
    for sep_start, sep_end, rest in [*seps, (len(text), len(text), None)]:
        sep_line = line + text.count("\n", start, sep_start)
        m = _CONTENT.match(text, start, sep_start)
        content = start if m else (m := _NEXT_CONTENT.search(text, start, sep_start)) and m.start() + 1
        if content is not None:
            spans.append((start, sep_start, line - 1, line + text.count("\n", start, content)))
        elif start:  # after a `---`: an empty document
            spans.append((start, sep_start, line - 1, line - 1))
        if rest and (rest := rest.strip()) and rest[0] != "#":
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
        return f

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
        return [Document(i, line, v) for i, (_, _, line, v) in enumerate(_json_spans(text, filename))]
    fast, spans, docs = is_fast(text), _spans(text, filename), []
    whole = _whole(text, len(spans)) if fast else None
    if whole is not None:
        return [Document(index, span[3], data) for index, (span, data) in enumerate(zip(spans, whole))]
    for index, (start, end, line0, line) in enumerate(spans):
        chunk = _chunk(text, start, end)
        try:
            data = yaml_rs.loads(chunk, parse_datetime=False) if fast else _SLOW
        except Exception:  # yaml-rs refused it: libyaml decides, and reports
            data = _SLOW
        docs.append(Document(index, line, _decode(chunk, filename, line0) if data is _SLOW else data))
    return docs


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
    while todo:  # iterative: a deeply nested document must not exhaust the stack
        path, node = todo.pop()
        if isinstance(node, yaml.MappingNode):
            try:
                entries = [(key, k, v) for key, k, v in decoder.pairs(node) if isinstance(key, str)]
            except UserError:
                continue
            for key, key_node, value_node in entries:
                lines[path + (key,)] = line0 + key_node.start_mark.line + 1
                todo.append((path + (key,), value_node))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[path + (i,)] = line0 + item.start_mark.line + 1
                todo.append((path + (i,), item))
    return lines


@functools.lru_cache(maxsize=16)
def _cached_spans(text, filename):
    return _spans(text, filename)


# --- the fast path's guard ------------------------------------------------------------------
# A plain scalar starts at the text's start, after "\n" + indentation (+ "- "), ": ", "[",
# "{" or ","; `_TOKEN` tells whether it may read differently in yaml-rs (YAML 1.2) or be a
# non-string key.  It may over-match (the slow path then runs), never under-match.  Every
# pattern starts with a literal, which Python's re finds ten times faster than a class.
# A space is only ' ': a text with a tab never gets that far.
_END = r"(?= *+(?:[\r\n,\]}#:]|\Z))"  # the token is the whole plain scalar (or a key)
_NUMBER = (r"0[0-9xXoObB_]"  # 0644 0x1F 0o17 0b101 09
           # 1_000 1e3 1.5e3 1.0 2., number keys (8080:, 1.5:), digits enough for a float
           # to come out integral (1234567.00000001), beyond int64
           rf"|[0-9]++(?:[_eE]|\.[0-9]*[eE_]|\.0*{_END}|(?:\.[0-9]*)? *:(?=[\s,\]}}]|\Z)|\.[0-9]{{8}})"
           r"|[0-9]{7,}\.|[0-9]{19}")
_DOT = r"\.[0-9_iInN.]|_[0-9_.]"  # .5 .inf .nan ... _1 ._5 (yaml-rs drops '_' in numbers)
# one branch per first character: Python's re tests it before entering a branch
_TOKEN = "".join([
    rf"(?:{_NUMBER}|-(?:{_DOT}|{_NUMBER})|\+[._0-9]|{_DOT}",  # +5 +.5
    rf"|[yY](?:[eE][sS])?{_END}|[nN](?:[oO]?{_END}|[uU][lL][lL] *:)|[oO](?:[nN]|[fF][fF]){_END}",
    r"|[tT][rR][uU][eE] *:|[fF][aA][lL][sS][eE] *:|~ *:",  # YAML 1.1 booleans, non-string keys
    # tags, anchors, aliases, merges, complex or empty keys, a leading ':' in a flow, reserved
    # indicators, directives; `|` and `>` unless they open a block scalar (yaml-rs reads `|`
    # in a flow as text; _empty_block_scalar checks the block scalars themselves)
    r"|[!&*?:%@`]|[|>](?![-+]? *+(?:#[^\r\n]*+)?\r?\n)|<<)",
])
_GATE = r" *+(?=[-+._0-9yYnNoOtTfF~!&*<?:|>%@`])"  # a cheap first test: can a token start here?
_LINE = r" *+(?:- ++)*+"  # "- " only follows indentation (or another "- ")
# A flow collection must close on its line, at most two deep, hold plain text (no '?'),
# quoted strings and ': ', have `key: value` entries if a mapping, and not be a key: yaml-rs
# reads multi-line ones, `[a:]`, `[a ::]`, `{1}` (an int key) ... its own way.
_Q = r"""|"[^"\\\n]*+(?:\\.[^"\\\n]*+)*+"|'[^'\n]*+(?:''[^'\n]*+)*+'"""
_KEY = r"""(?:[^\[\]{}"'\n\r:#,?]++""" + _Q + ")++"
_VALUE = r"""[^\[\]{}"'\n\r:#,?]++|:(?= )""" + _Q


def _flow(nest):
    """Patterns for what follows a `[` and a `{`; `nest` may occur in values."""
    value = f"(?:{_VALUE}{'|' + nest if nest else ''})*+"
    return rf"{value}(?:,{value})*+\]", rf"(?: *+{_KEY}: {value}(?:, *+{_KEY}: {value})*+,?)? *+}}"


_FLOW = _flow("|".join(re.escape(o) + rest for o, rest in zip("[{", _flow(""))))
# (a character the text must hold, a pattern): `in` costs far less than a scan
_UNSAFE = [(c, re.compile(p)) for c, p in [
    ("\n", rf"\n{_LINE}{_GATE}(?:{_TOKEN}|\.\.\.)"),  # ... ends a document
    (":", rf": {_GATE}{_TOKEN}"),
    ("[", rf"\[(?:{_GATE}{_TOKEN}|(?!{_FLOW[0]}(?! *:)))"),
    ("{", rf"\{{(?:{_GATE}{_TOKEN}|(?!{_FLOW[1]}(?! *:)))"),
    (",", rf",{_GATE}{_TOKEN}"),
    ("\r", r"\r(?!\n)"),  # a lone CR
    ("'", r"':[^ \r\n]"),  # 'a':b; "a":b is _closing_quote_colon's
    ("\\", r"\\/")]]  # go-yaml v2 rejects the escape \/
_START = re.compile(rf"\.\.\.|{_LINE}{_GATE}{_TOKEN}")
_CONTROLS = bytes(c for c in range(32) if c not in b"\r\n") + b"\x7f"


def is_fast(text) -> bool:
    """Whether `load_all` may read `text` with yaml-rs: nothing YAML 1.2 reads differently."""
    # Tabs and control characters (libyaml rejects some yaml-rs takes); beyond ASCII also a
    # BOM and NEL/LS/PS (line breaks in YAML 1.1 only): isprintable() is False for those.
    if text.isascii():
        raw = text.encode()
        if len(raw.translate(None, _CONTROLS)) != len(raw):
            return False
    elif not text.replace("\r", "").replace("\n", "").isprintable():
        return False
    if len(text) >= _MAX_DEPTH and _too_deep(text):
        return False  # yaml-rs overflows its stack near 20000 levels
    return not (_START.match(text) or any(c in text and p.search(text) for c, p in _UNSAFE)
                or ('":' in text and _closing_quote_colon(text))
                or _empty_block_scalar(text))


# What opens a block scalar after ": " or "- ": one pattern per indicator, as a literal
# first character lets re skip ahead ten times faster than the class [|>].
_BLOCK_HEADERS = [(c, re.compile(re.escape(c) + r"[-+]? *+(?:#[^\r\n]*+)?\r?\n")) for c in "|>"]
_LEAD = re.compile(r" *+(?:- +)*")


def _empty_block_scalar(text):
    """Whether a block scalar might be empty: yaml-rs reads an empty `|` as "\n", go-yaml as "".

    A block scalar is surely not empty when the line after its header is not blank and is
    indented deeper than the node that holds it (a `key:` or a `- `) starts.
    """
    for match in (m for c, p in _BLOCK_HEADERS if c in text for m in p.finditer(text)):
        start = text.rfind("\n", 0, match.start()) + 1
        before = text[start:match.start()].rstrip(" ")  # any number of spaces, or indentation
        if before and before[-1] not in ":-":
            continue  # inside a scalar, not a block scalar's header
        holder = _LEAD.match(text, start).end() - start
        end = text.find("\n", match.end())
        following = text[match.end():end if end >= 0 else len(text)].rstrip("\r")
        if not following.strip(" ") or len(following) - len(following.lstrip(" ")) <= holder:
            return True
    return False


_QUOTE_COLON = re.compile(r'":[^ \r\n]')
_ESCAPED = re.compile(r"\\.")


def _closing_quote_colon(text):
    """Whether a double-quoted scalar ends right before `:x` (`"a":b`), which yaml-rs reads
    as a key and go-yaml rejects. The opening quote of `[":8080"]` is no such thing.

    Each line is judged on its own, so a line with an odd number of double quotes (a
    scalar spanning lines, or a stray quote) counts as unsafe.
    """
    for match in _QUOTE_COLON.finditer(text):
        start = text.rfind("\n", 0, match.start()) + 1
        end = text.find("\n", match.start())
        line = text[start:end if end >= 0 else len(text)]
        if "\\" in line:
            line = _ESCAPED.sub("", line)
        if line.count('"') % 2 or not _opens_scalar(text[start:match.start()]):
            return True
    return False


@functools.lru_cache(maxsize=4096)  # the same lines recur across documents and files
def _opens_scalar(prefix):
    """Whether a `"` right after `prefix` (the start of its line) opens a quoted scalar."""
    quote, start, i = None, True, 0  # start: a scalar may begin here
    while i < len(prefix):
        c = prefix[i]
        if quote == '"' and c == "\\":
            i += 1
        elif quote and c == quote:
            if quote == "'" and prefix[i + 1:i + 2] == "'":
                i += 1
            else:
                quote, start = None, False
        elif quote:
            pass
        elif c in "\"'" and start:
            quote = c
        elif c == "#" and (i == 0 or prefix[i - 1] in " \t"):
            return False  # a comment: treat as unsafe rather than reason about it
        elif c in "[{,":
            start = True
        elif c in "-?:" and prefix[i + 1:i + 2] == " ":
            start = True
        elif c not in " \t":
            start = False
        i += 1
    return quote is None and start

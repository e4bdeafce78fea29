"""Decode Kubernetes manifests exactly as kubectl does, and fast.

kubectl's pipeline, reproduced here:

1. k8s.io/apimachinery pkg/util/yaml/decoder.go: a stream whose first non-space
   character is `{` is a stream of JSON values; otherwise `YAMLReader.Read` cuts the
   text at every line starting with `---` (anything but a comment after it is an error)
   and each piece is one document.
2. sigs.k8s.io/yaml yaml.go `Unmarshal` -> go.yaml.in/yaml/v2 (go-yaml v2.4) decodes the
   first YAML document of a piece into interface{}: YAML 1.1-ish scalars (resolve.go),
   merge keys and aliases (decode.go).
3. `convertToJSONableObject` turns keys into strings, `json.Marshal` writes the numbers
   (encoding/json: ES6 style, NaN/Inf fail) and apimachinery reads the JSON back with
   sigs.k8s.io/json PreserveInts: a number without '.' that fits int64 is an int.

The slow path composes nodes with libyaml (pyyaml's C parser; go-yaml v2 is a port of
libyaml) and applies those rules in `_Decoder`: it is the definition of correct.  The fast
path hands a piece to yaml-rs (YAML 1.2 core schema) only when `_UNSAFE` finds no token
on which the two could disagree.  Duplicate keys are an error (kubectl's server-side
strict field validation); merged keys follow go-yaml's order (`<<` sets keys in place).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import struct
from dataclasses import dataclass

import yaml
import yaml_rs

from k8s.errors import UserError

__all__ = ["Document", "load_all", "load_all_substituting", "line_of", "is_fast"]


@dataclass
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


# --- go-yaml v2 resolve.go ------------------------------------------------------------

_T = "tag:yaml.org,2002:"
STR, BOOL, INT, FLOAT, NULL, TIMESTAMP, BINARY, MERGE = (
    _T + t for t in ("str", "bool", "int", "float", "null", "timestamp", "binary", "merge"))
_RESOLVABLE = {"", STR, BOOL, INT, FLOAT, NULL, TIMESTAMP}  # resolvableTag()
_INT64 = 1 << 63
# resolveTable: the first character says what a plain scalar may be.
_HINT = {**dict.fromkeys("0123456789", "D"), "+": "S", "-": "S", ".": ".",
         **dict.fromkeys("yYnNtTfFoO~", "M")}
_WORDS = {"": (NULL, None)}  # resolveMap
for _tag, _value, _words in [
        (BOOL, True, "y Y yes Yes YES true True TRUE on On ON"),
        (BOOL, False, "n N no No NO false False FALSE off Off OFF"),
        (NULL, None, "~ null Null NULL"),
        (FLOAT, math.nan, ".nan .NaN .NAN"),
        (FLOAT, math.inf, ".inf .Inf .INF +.inf +.Inf +.INF"),
        (FLOAT, -math.inf, "-.inf -.Inf -.INF")]:
    _WORDS.update(dict.fromkeys(_words.split(), (_tag, _value)))
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")  # yamlStyleFloat
# strconv.ParseUint(s, 0, 64) (Go atoi.go): 0b/0o/0x prefixes; a bare leading 0 means octal.
_GO_UINT = re.compile(r"0[bB]([01]+)|0[oO]([0-7]+)|0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9][0-9]*)")
# strconv.ParseFloat on a '.'-led scalar (atof.go readFloat); '_' only between digits.
_DOT_FLOAT = re.compile(r"\.[0-9_]+(?:[eE][-+]?[0-9][0-9_]*)?")
_BAD_UNDERSCORE = re.compile(r"[^0-9]_|_[^0-9]|_$")
# parseTimestamp's layouts 2006-1-2T15:4:5.999999999Z07:00, "2006-1-2 15:4:5.9…", 2006-1-2.
_TIMESTAMP = re.compile(r"(\d{4})-(\d\d?)-(\d\d?)(?:[Tt](\d\d?):(\d\d?):(\d\d?)(?:[.,]\d+)?"
                        r"(?:Z|[-+]\d\d:\d\d)| (\d\d?):(\d\d?):(\d\d?)(?:[.,]\d+)?)?")
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _is_timestamp(s):
    m = _TIMESTAMP.fullmatch(s)
    if not m:
        return False
    y, mo, d, *hms = (int(g) if g else 0 for g in m.groups())
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    return (1 <= mo <= 12 and 1 <= d <= _MONTH_DAYS[mo - 1] - (mo == 2 and not leap)
            and all(v < 24 if i % 3 == 0 else v < 60 for i, v in enumerate(hms)))


def _go_int(plain):
    """strconv.ParseInt(plain, 0, 64), else ParseUint(plain, 0, 64) (a uint64 is >= 2**63)."""
    sign = plain[:1] if plain[:1] in ("+", "-") else ""
    m = _GO_UINT.fullmatch(plain[len(sign):])
    if not m:
        return None
    b, o, x, octal, dec = m.groups()
    u = int(b, 2) if b else int(o, 8) if o else int(x, 16) if x else int(octal or dec, 8 if octal else 10)
    if sign == "-":
        return -u if u <= _INT64 else None
    return u if u < _INT64 or (not sign and u < 1 << 64) else None


def _float(s):
    f = float(s.replace("_", ""))
    return None if math.isinf(f) else f  # Go's ParseFloat fails on overflow


def _resolve(value, tag=""):
    """resolve(tag, in) for a scalar: (resolved tag, Go value); timestamps stay text."""
    hint = _HINT.get(value[:1]) if value else "N"
    if hint and tag != STR:
        if value in _WORDS:
            return _WORDS[value]
        if hint == ".":
            if _DOT_FLOAT.fullmatch(value) and not _BAD_UNDERSCORE.search(value):
                f = _float(value)
                if f is not None:
                    return FLOAT, f
        elif hint in "DS":
            if tag in ("", TIMESTAMP) and _is_timestamp(value):
                return TIMESTAMP, value  # decode.go scalar(): kept as the original string
            plain = value.replace("_", "")
            i = _go_int(plain)
            if i is not None:
                return INT, i
            f = _float(plain) if _YAML_FLOAT.fullmatch(plain) else None
            if f is not None:
                return FLOAT, f
            # resolve.go's later "0b" retries can never succeed where ParseInt(s, 0) failed.
    return STR, value


def _short(tag):
    return "!!" + tag[len(_T):] if tag.startswith(_T) else tag


# --- sigs.k8s.io/yaml yaml.go + encoding/json + sigs.k8s.io/json ----------------------

def _json_value(v):
    """A Go scalar after json.Marshal and a PreserveInts read; ValueError where Marshal fails."""
    if type(v) is float:
        if not math.isfinite(v):
            word = ".nan" if math.isnan(v) else "-.inf" if v < 0 else ".inf"
            raise ValueError(f"{word} cannot be represented in JSON (kubectl: json: unsupported value)")
        # encoding/json writes 'f' form (no '.', no exponent) for integral |v| < 1e21
        if v.is_integer() and abs(v) < 1e21 and -_INT64 <= v < _INT64:
            return int(v)
    elif type(v) is int and v >= _INT64:
        return float(v)  # a uint64: "18446744073709551615" does not fit int64
    return v


def _float32_g(f):
    """strconv.FormatFloat(f, 'g', -1, 32), as convertToJSONableObject writes float keys."""
    if math.isnan(f):
        return ".nan"
    try:
        f32 = struct.unpack("<f", struct.pack("<f", f))[0]
    except OverflowError:
        f32 = math.copysign(math.inf, f)
    if math.isinf(f32):
        return ".inf" if f32 > 0 else "-.inf"
    if f32 == 0:
        return "-0" if math.copysign(1, f32) < 0 else "0"
    for p in range(1, 10):  # shortest digits that read back as the same float32
        digits, exp = f"{abs(f32):.{p - 1}e}".split("e")
        if struct.unpack("<f", struct.pack("<f", float(f"{digits}e{exp}")))[0] == abs(f32):
            break
    digits, exp = digits.replace(".", "").rstrip("0") or "0", int(exp)
    sign = "-" if f32 < 0 else ""
    if exp < -4 or exp >= 6:  # ftoa.go: %e when shortest and exp < -4 || exp >= 6
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp < 0:
        return f"{sign}0.{'0' * (-exp - 1)}{digits}"
    whole = digits[:exp + 1].ljust(exp + 1, "0")
    return sign + whole + ("." + digits[exp + 1:] if len(digits) > exp + 1 else "")


def _json_key(v):
    """convertToJSONableObject's key to string, or raise ValueError as it fails."""
    if type(v) is str:
        return v
    if type(v) is bool:
        return "true" if v else "false"
    if type(v) is int:
        if v >= _INT64:
            raise ValueError(f"unsupported map key {v} (a uint64)")
        return str(v)
    if type(v) is float:
        return _float32_g(v)
    raise ValueError("unsupported map key null")


# --- the slow, reference decoder -------------------------------------------------------

class _Loader(yaml.CSafeLoader):
    """libyaml composing nodes; every tag libyaml leaves implicit stays '' for `_Decoder`."""

    def resolve(self, kind, value, implicit):
        return ""


_MAX_DEPTH = 5000
_DEEP = re.compile(rf"(?:\A|\n)[ -]{{{_MAX_DEPTH}}}")
_BRACKET = re.compile(r"[\[\]{}]")
_BANG = re.compile(r"(?:&\S+[ \t]+)?![ \t\r\n]")  # a plain scalar tagged with the bare `!`


def _allowed_alias_ratio(count):  # decode.go allowedAliasRatio
    if count <= 400_000:
        return 0.99
    return 0.10 if count >= 4_000_000 else 0.99 - 0.89 * (count - 400_000) / 3_600_000


class _Decoder:
    """decode.go's unmarshal into interface{} plus the JSON round trip, over libyaml nodes.

    Parameters:
        filename, line0: for errors (`line0` = lines before this document's text).
        text: the document's text (to spot a bare `!` tag).
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
        """Count a node as decode.go does; pyyaml shares a node between anchor and aliases."""
        key = id(node)
        if key in self.stack:
            raise self.error(node, "anchor value contains itself")
        alias = key in self.seen
        self.seen.add(key)
        self.stack.add(key)
        self.alias_depth += alias
        self.count += 1
        self.aliased += self.alias_depth > 0
        if (self.aliased > 100 and self.count > 1000
                and self.aliased / self.count > _allowed_alias_ratio(self.count)):
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
            if node.flow_style:
                self._check_flow(node)
            if isinstance(node, yaml.SequenceNode):
                return [self.decode(child) for child in node.value]
            return {key: self.decode(value) for key, _, value in self.pairs(node)}
        finally:
            self._leave(node, alias)

    def _check_flow(self, node):
        """go-yaml v2 (scannerc.go) ends a plain scalar at '?' inside [ ] and { }, and reads a
        ':' starting one as a value indicator; libyaml 0.2.5 reads both as text."""
        children = node.value if isinstance(node, yaml.SequenceNode) else [n for kv in node.value for n in kv]
        for child in children:
            if (isinstance(child, yaml.ScalarNode) and not child.style
                    and (child.value[:1] == ":" or "?" in child.value[1:])):
                raise self.error(child, "in [ ] or { }, kubectl cannot read a plain scalar with '?' "
                                 "or starting with ':' (quote it)")

    def scalar(self, node):
        """The Go value of a scalar (decode.go scalar(), resolve.go resolve())."""
        value = node.value if self.expand is None else self.expand(node.value)
        tag = node.tag
        if tag == BINARY:
            try:
                data = base64.b64decode(re.sub("[\r\n]", "", value), validate=True)
            except binascii.Error:
                raise self.error(node, "!!binary value contains invalid base64 data") from None
            # json.Marshal turns every invalid UTF-8 byte into U+FFFD
            return re.sub("[\udc80-\udcff]", "\ufffd", data.decode("utf-8", "surrogateescape"))
        if node.style == '"' and "\\/" in self.text:
            for m in re.finditer(r"\\(.)", self.text[node.start_mark.index:node.end_mark.index], re.S):
                if m.group(1) == "/":  # libyaml 0.2.5 takes it, go-yaml v2 (scannerc.go) does not
                    raise self.error(node, "found unknown escape character \\/ in a quoted scalar")
        if not tag:
            if node.style or _BANG.match(self.text, node.start_mark.index):
                return value  # quoted and block scalars are strings; so is `! x`
            return _resolve(value)[1]
        if tag not in _RESOLVABLE:
            return value  # custom tags, !!map on a scalar, ...: the text
        rtag, out = _resolve(value, tag)
        if tag in (rtag, STR):
            return out
        if tag == FLOAT and rtag == INT and out < _INT64:
            return float(out)
        raise self.error(node, f"cannot decode {_short(rtag)} `{value}` as a {_short(tag)}")

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
        """(JSON key, key node, value node) of a mapping in the order go-yaml assigns them.

        decode.go mapping(): `<<` merges its mapping(s) in place, so a merged key overrides
        the keys before it and is overridden by those after; a merged sequence goes last
        first.  A key given twice in one mapping is an error.
        """
        explicit = set()
        for key_node, value_node in node.value:
            if (isinstance(key_node, yaml.ScalarNode) and key_node.value == "<<"
                    and (key_node.tag == MERGE or not key_node.tag and not key_node.style)):
                if isinstance(value_node, yaml.MappingNode):
                    sources = [value_node]
                elif isinstance(value_node, yaml.SequenceNode) and all(
                        isinstance(n, yaml.MappingNode) for n in value_node.value):
                    sources = value_node.value[::-1]
                else:
                    raise self.error(value_node, "map merge requires map or sequence of maps as the value")
                for source in sources:
                    alias = self._enter(source)
                    try:
                        yield from self.pairs(source)
                    finally:
                        self._leave(source, alias)
                continue
            key = self.key(key_node)
            if key in explicit:
                raise self.error(key_node, f"duplicate key {key!r} in a mapping")
            explicit.add(key)
            yield key, key_node, value_node


def _too_deep(text):
    """Whether `text` may nest deeper than libyaml's recursive composer survives (~20000)."""
    if _DEEP.search(text):
        return True
    if text.count("[") + text.count("{") < _MAX_DEPTH:
        return False
    depth = 0
    for m in _BRACKET.finditer(text):
        depth += 1 if m.group() in "[{" else -1
        if depth >= _MAX_DEPTH:
            return True
    return False


def _compose(text, filename, line0):
    """(root node of the first YAML document in `text` or None, the text parsed), as
    yaml.Unmarshal reads it."""
    if _too_deep(text):
        raise UserError("document is nested too deeply", file=filename, line=line0 + 1)
    while True:
        loader = _Loader(text)
        try:
            return (loader.get_node() if loader.check_node() else None), text
        except yaml.reader.ReaderError as e:  # a character YAML does not allow
            line, char = text.count("\n", 0, e.position), e.character
            char = char if isinstance(char, int) else ord(char)
            raise UserError(f"invalid YAML: character #x{char:04x} is not allowed", file=filename,
                            line=line0 + line + 1, col=e.position - text.rfind("\n", 0, e.position)) from None
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            if e.problem == "found unknown escape character" and text[mark.index:mark.index + 2] == "\\'":
                text = text[:mark.index] + text[mark.index + 1:]  # go-yaml v2 (scannerc.go) reads \' as '
                continue
            message = f"{e.problem} ({e.context})" if e.context else e.problem
            raise UserError(f"invalid YAML: {message}", file=filename,
                            line=line0 + mark.line + 1, col=mark.column + 1) from None
        finally:
            loader.dispose()


def _decode(text, filename, line0, expand=None):
    node, text = _compose(text, filename, line0)
    if node is None:
        return None
    try:
        return _Decoder(filename, text, line0, expand).decode(node)
    except RecursionError:
        raise UserError("document is nested too deeply", file=filename, line=line0 + 1) from None


# --- documents -----------------------------------------------------------------------

_SEPARATOR = re.compile(r"\n---([^\n]*)")  # decoder.go YAMLReader.Read: a line starting ---
_FIRST_SEPARATOR = re.compile(r"---([^\n]*)")
_CONTENT = re.compile(r"[ \t]*[^ \t\r\n#]")  # a line that is neither blank nor a comment
_NEXT_CONTENT = re.compile(r"\n[ \t]*[^ \t\r\n#]")
_JSON_START = re.compile(r"\s*\{")  # decoder.go GuessJSONStream / hasJSONPrefix
_SPACE = re.compile(r"\s*")


def _spans(text, filename):
    """[(start, end, line0, first line)] of each document, cut as kubectl's YAMLReader cuts.

    `line0` counts the lines before the document; the first line is that of its content
    (for an empty document: of its `---`).  Before the first `---`, only content counts.
    """
    first = _FIRST_SEPARATOR.match(text)
    seps = ([(0, first.end(), first.group(1))] if first else []) + [
        (m.start() + 1, m.end(), m.group(1)) for m in _SEPARATOR.finditer(text)]
    spans, start, line = [], 0, 1
    for sep_start, sep_end, rest in [*seps, (len(text), len(text), None)]:
        sep_line = line + text.count("\n", start, sep_start)
        m = _CONTENT.match(text, start, sep_start)
        content = start if m else (m := _NEXT_CONTENT.search(text, start, sep_start)) and m.start() + 1
        if content is not None:
            spans.append((start, sep_start, line - 1, line + text.count("\n", start, content)))
        elif start:  # after a `---`: an empty document; before the first one: nothing
            spans.append((start, sep_start, line - 1, line - 1))
        if rest and (rest := rest.strip()) and rest[0] != "#":
            raise UserError(f"invalid document separator: kubectl allows only a comment after ---, "
                            f"not {rest!r}", file=filename, line=sep_line, col=4)
        start, line = sep_end + 1, sep_line + 1
    return spans


def _json_spans(text, filename):
    """[(start, end, line, value)] of a JSON stream, read as sigs.k8s.io/json PreserveInts does."""

    def number(s):
        f = float(s)
        if math.isinf(f):
            raise ValueError(f"number {s} overflows a float64")
        return f

    def pairs(items):
        out = {}
        for k, v in items:
            if k in out:
                raise ValueError(f"duplicate key {k!r} in an object")
            out[k] = v
        return out

    def constant(s):
        raise ValueError(f"{s} is not a JSON number")

    decoder = json.JSONDecoder(object_pairs_hook=pairs, parse_float=number, parse_constant=constant,
                               parse_int=lambda s: int(s) if -_INT64 <= int(s) < _INT64 else number(s))
    spans, pos = [], 0
    while (pos := _SPACE.match(text, pos).end()) < len(text):
        line = text.count("\n", 0, pos) + 1
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise UserError(f"invalid JSON: {e.msg}", file=filename, line=e.lineno, col=e.colno) from None
        except ValueError as e:
            raise UserError(f"invalid JSON: {e}", file=filename, line=line) from None
        spans.append((pos, end, line, value))
        pos = end
    return spans


_SLOW = object()


def _chunk(text, start, end):
    """A document's text as YAMLReader hands it on: lines end in a bare "\n", the last one too."""
    chunk = text[start:end]
    if "\r" in chunk:
        chunk = chunk.replace("\r\n", "\n")
    return chunk if chunk.endswith("\n") or not chunk else chunk + "\n"


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
    fast = is_fast(text)
    docs = []
    for index, (start, end, line0, line) in enumerate(_spans(text, filename)):
        chunk, data = _chunk(text, start, end), _SLOW
        if fast:
            try:
                data = yaml_rs.loads(chunk, parse_datetime=False)
            except Exception:  # yaml-rs refused it: libyaml decides, and reports
                pass
        if data is _SLOW:
            data = _decode(chunk, filename, line0)
        docs.append(Document(index, line, data))
    return docs


def load_all_substituting(text: str, filename: str, expand) -> list[Document]:
    """Like `load_all` for a template whose scalars still hold variables.

    Parameters:
        expand: function(str) -> str, called on the text of every scalar (keys too) after
            YAML unquoting; a plain scalar is then resolved by kubectl's rules on the
            expanded text, so the result can never change the YAML structure.  Quoted and
            block scalars stay strings.
    """
    _check(text, filename)
    return [Document(index, line, _decode(_chunk(text, start, end), filename, line0, expand))
            for index, (start, end, line0, line) in enumerate(_spans(text, filename))]


def line_of(text: str, filename: str, doc_index: int, path: list) -> int | None:
    """1-based line of the node at JSON `path` (keys and list indexes) in document `doc_index`.

    A mapping entry's line is its key's.  If the path ends early, the line of the deepest
    node that exists; None if the document does not exist or cannot be parsed.
    """
    try:
        _check(text, filename)
        if _JSON_START.match(text):
            start, end, line, _ = _json_spans(text, filename)[doc_index]
            line0 = line - 1
        else:
            start, end, line0, line = _spans(text, filename)[doc_index]
        node, chunk = _compose(_chunk(text, start, end), filename, line0)
    except (UserError, IndexError):
        return None
    decoder = _Decoder(filename, chunk, line0)
    for step in path:
        found = None
        if isinstance(node, yaml.MappingNode) and isinstance(step, str):
            try:
                for key, key_node, value_node in decoder.pairs(node):
                    if key == step:
                        found = key_node, value_node
            except UserError:
                pass
        elif isinstance(node, yaml.SequenceNode) and type(step) is int and 0 <= step < len(node.value):
            found = node.value[step], node.value[step]
        if found is None:
            break
        line, node = line0 + found[0].start_mark.line + 1, found[1]
    return line


# --- the fast path's guard -------------------------------------------------------------
# A plain scalar starts at the text's start, after "\n" + indentation (+ "- "), ": ", "[",
# "{" or ","; `_TOKEN` tells whether it may read differently in yaml-rs (YAML 1.2) or be a
# non-string key.  It may over-match (then the slow path runs), never under-match.  Each
# pattern starts with a literal: Python's re finds those ten times faster than a class.
# Only ' ' is matched as a space: a text with a tab never gets here.
_END = r"(?= *+(?:[\r\n,\]}#:]|\Z))"  # the token is the whole plain scalar (or a key)
_NUMBER = (r"0[0-9xXoObB_]"  # 0644 0x1F 0o17 0b101 09
           # 1_000 1e3 1.5e3 1.0 2., number keys (8080:, 1.5:), too many digits for the
           # float to keep a fraction (1234567.00000001)
           rf"|[0-9]++(?:[_eE]|\.[0-9]*[eE_]|\.0*{_END}|(?:\.[0-9]*)?[ \t]*:(?=[\s,\]}}]|\Z)"
           r"|\.[0-9]{8})|[0-9]{7,}\.|[0-9]{19}")  # and beyond int64
_DOT = r"\.[0-9_iInN.]|_[0-9_.]"  # .5 .inf .nan ... _1 ._5 (yaml-rs drops '_' in numbers)
# One branch per first character: Python's re tests that before entering a branch.
_TOKEN = "".join([
    rf"(?:{_NUMBER}|-(?:{_DOT}|{_NUMBER})|\+[._0-9]|{_DOT}",  # +5 +.5
    rf"|[yY](?:[eE][sS])?{_END}|[nN](?:[oO]?{_END}|[uU][lL][lL][ \t]*:)|[oO](?:[nN]|[fF][fF]){_END}",
    r"|[tT][rR][uU][eE][ \t]*:|[fF][aA][lL][sS][eE][ \t]*:|~[ \t]*:",  # booleans, non-string keys
    # tags, anchors, aliases, merges, complex/empty keys, ':'-led scalars in a flow, reserved
    # indicators, directives; block scalars (yaml-rs ends an empty one with "\n", reads | as text
    # in a flow)
    r"|[!&*?:|>%@`]|<<)",
])
_GATE = r" *+(?=[-+._0-9yYnNoOtTfF~!&*<?:|>%@`])"  # cheap first test: can a token start here?
_LINE = r" *+(?:- ++)*+"  # "- " only follows indentation (or another "- ")
# A flow collection must close on its line, at most two deep, hold plain text, quoted strings
# and ': ', its mappings `key: value` entries, and not be a key: yaml-rs reads multi-line ones,
# `[a:]`, `[a ::]`, `{1}` (an int key) ... its own way.
_Q = r"""|"[^"\\\n]*+(?:\\.[^"\\\n]*+)*+"|'[^'\n]*+(?:''[^'\n]*+)*+'"""
_KEY = r"""(?:[^\[\]{}"'\n\r:#,?]++""" + _Q + ")++"
_VALUE = r"""[^\[\]{}"'\n\r:#,?]++|:(?= )""" + _Q


def _flow(nest):
    """Patterns for what follows a `[` and a `{`; `nest` may occur in values."""
    value = f"(?:{_VALUE}{'|' + nest if nest else ''})*+"
    return (rf"{value}(?:,{value})*+\]",
            rf"(?: *+{_KEY}: {value}(?:, *+{_KEY}: {value})*+,?)? *+}}")


_FLOW = _flow("|".join(re.escape(o) + rest for o, rest in zip("[{", _flow(""))))
# (a character the text must hold, a pattern): `in` costs far less than a scan
_UNSAFE = [(c, re.compile(p)) for c, p in [
    ("\n", rf"\n(?:(?=[ -]{{1000}})|{_LINE}{_GATE}(?:{_TOKEN}|\.\.\.))"),  # ... ends a document; so deep
    (":", rf": {_GATE}{_TOKEN}"),
    ("[", rf"\[(?:{_GATE}{_TOKEN}|(?!{_FLOW[0]}(?![ \t]*:)))"),
    ("{", rf"\{{(?:{_GATE}{_TOKEN}|(?!{_FLOW[1]}(?![ \t]*:)))"),
    (",", rf",{_GATE}{_TOKEN}"),
    ("\r", r"\r(?!\n)"),  # a lone CR
    ('"', r'":[^ \t\r\n]'), ("'", r"':[^ \t\r\n]"),  # "a":b
    ("\\", r"\\/")]]  # go-yaml v2 rejects the escape \/
_START = re.compile(rf"\.\.\.|(?=[ -]{{1000}})|{_LINE}{_GATE}{_TOKEN}")
_CONTROLS = bytes(c for c in range(32) if c not in b"\r\n") + b"\x7f"


def is_fast(text) -> bool:
    """Whether `load_all` may read `text` with yaml-rs: no token that YAML 1.2 reads differently."""
    # Tabs and control characters (libyaml rejects what yaml-rs takes); beyond ASCII also a
    # BOM and NEL/LS/PS (line breaks in YAML 1.1 only): isprintable() is False for those.
    if text.isascii():
        raw = text.encode()
        if len(raw.translate(None, _CONTROLS)) != len(raw):
            return False
    elif not text.replace("\r", "").replace("\n", "").isprintable():
        return False
    return not (_START.match(text) or any(c in text and p.search(text) for c, p in _UNSAFE))

"""The slow, reference decoder: libyaml nodes turned into kubectl's JSON values.

Why apart: this is the definition of correct that the fast path is checked against, and
the one place that composes with libyaml (pyyaml's C parser; go-yaml v2 is a port of
libyaml, and where libyaml 0.2.5 differs `_Decoder` follows go-yaml).

Contract:
- `_decode(text, filename, line0, expand)` is the JSON value of the first YAML document of
  `text`, as go-yaml v2 decode.go + sigs.k8s.io/yaml give it, or raises UserError (file,
  line, col) where kubectl fails; `line0` counts the lines before the document.
- `_compose` gives the root node (and the text actually parsed); `_Decoder.pairs` walks a
  mapping with `<<` merged in place, which `kubeyaml.line_of` reuses for line numbers.
- A value the JSON conversion refuses (NaN, an infinity, a mapping with a null key) is
  refused only if it is still in the object once the document is decoded (`settled`).
- Nesting is bounded by `_MAX_DEPTH` (the fast path's guard sends deep texts here).
"""

from __future__ import annotations

import base64
import binascii
import re

import yaml

from ..errors import UserError
from .kubeyaml_scalars import (_BINARY, _FLOAT, _INT, _INT64, _MERGE, _RESOLVABLE, _STR, _T,
                               _json_key, _json_value, _resolve)


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
# a tag (after any anchor) as go-yaml v2 scans it: '!' and URI characters, `,[]` among them
_TAG_TOKEN = re.compile(r"(?:&[^ \t\r\n]+[ \t]+)?(![-0-9A-Za-z_;/?:@&=+$,.!~*'()\[\]%]*)")
_TAG_AND_FLOW = re.compile(r"![-0-9A-Za-z_;/?:@&=+$.!~*'()%]*[,\[\]]")
_BANG = re.compile(r"(?:&\S+[ \t]+)?![ \t\r\n]")  # a plain scalar tagged with the bare `!`


class _Unrepresentable:
    """A value the JSON conversion refuses (NaN, an infinity, a mapping with a null key),
    with the error to give if it is still in the object once the document is decoded."""

    __slots__ = ("error",)

    def __init__(self, error):
        self.error = error


class _Decoder:
    """decode.go's unmarshal into interface{} plus the JSON round trip, over libyaml nodes.

    Parameters:
        filename, line0: for errors (`line0` = lines before this document's text).
        text: the document's text as parsed.
        expand: optional function applied to every scalar's text before resolving.
    """

    def __init__(self, filename, text, line0, expand=None):
        self.filename, self.text, self.line0, self.expand = filename, text, line0, expand
        self.seen, self.stack, self.unrepresentable = set(), set(), []
        self.count = self.aliased = self.alias_depth = 0
        self.tags_in_flow = _TAG_AND_FLOW.search(text) is not None

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
        self.count += 1 + alias  # decode.go unmarshals an alias node, then the node it names
        self.aliased += self.alias_depth > 0
        n = self.count  # allowedAliasRatio: 99% up to 400,000 decodes, down to 10% at 4,000,000
        ratio = 0.99 if n <= 400_000 else 0.10 if n >= 4_000_000 else 0.99 - 0.89 * (n - 400_000) / 3_600_000
        if self.aliased > 100 and n > 1000 and self.aliased / n > ratio:
            raise self.error(node, "document contains excessive aliasing")
        return alias

    def settled(self, value):
        """`value`, the decoded document; the error of the first unrepresentable value still
        in it. kubectl converts to JSON the object go-yaml made, so one that a later key or
        a merge replaced (go-yaml v2 sets keys in order) never reaches the conversion."""
        if self.unrepresentable:
            left, todo = set(), [value]
            while todo:
                item = todo.pop()
                if isinstance(item, dict):
                    todo.extend(item.values())
                elif isinstance(item, list):
                    todo.extend(item)
                elif isinstance(item, _Unrepresentable):
                    left.add(id(item))
            for bad in self.unrepresentable:
                if id(bad) in left:
                    raise bad.error
        return value

    def _leave(self, node, alias):
        self.stack.discard(id(node))
        self.alias_depth -= alias

    def decode(self, node):
        """The JSON value of `node`."""
        alias = self._enter(node)
        if self.tags_in_flow and node.tag and not alias:
            self._check_tag(node)
        try:
            if isinstance(node, yaml.ScalarNode):
                try:
                    value = self.scalar(node)
                except ValueError as e:
                    raise self.error(node, str(e)) from None
                try:
                    return _json_value(value)
                except ValueError as e:  # NaN or an infinity: refused only if it stays in the object
                    bad = _Unrepresentable(self.error(node, str(e)))
                    self.unrepresentable.append(bad)
                    return bad
            self._check_flow(node)
            if isinstance(node, yaml.SequenceNode):
                return [self.decode(child) for child in node.value]
            entries = [(key, self.decode(value)) for key, _, value in self.pairs(node)]
            bad = next((key for key, _ in entries if type(key) is _Unrepresentable), None)
            if bad is not None:  # a key JSON has no form for: the mapping, if it stays
                self.unrepresentable.append(bad)
                return bad
            return dict(entries)  # a later key replaces an earlier one, as go-yaml sets them
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

    def _check_tag(self, node):
        """go-yaml v2 reads `,`, `[` and `]` right after a tag as part of it (URI characters):
        `[!!str, a]` is ['a'] to kubectl, ['', 'a'] to libyaml. Such a tag is refused."""
        written = _TAG_TOKEN.match(self.text, node.start_mark.index)
        if written and any(c in written.group(1) for c in ",[]"):
            raise self.error(node, f"kubectl reads {written.group(1)!r} as one tag, flow characters "
                                   "included: put a space after the tag")

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
            value = self.scalar(node)
        except ValueError as e:
            raise self.error(node, str(e)) from None
        finally:
            self._leave(node, alias)
        try:
            return _json_key(value)
        except ValueError as e:  # null, a NaN ...: refused with its mapping, if that stays
            return _Unrepresentable(self.error(node, str(e)))

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
                # a sequence of maps merges when written in place; an alias of one does not (a
                # node defined before its key is an alias: libyaml gives both the same node)
                if isinstance(value_node, yaml.SequenceNode) and value_node.start_mark.index > key_node.start_mark.index:
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
            if e.problem == "second occurrence" and e.context_mark is not None and (
                    renamed := _rename_first_anchor(text, e.context_mark.index, mark.index)):
                text = renamed
                continue
            if e.problem == "found unexpected ':'" and e.context == "while scanning a plain scalar":
                # go-yaml v2.4 reads `[a:]` as ["a:"]: a plain scalar in a flow ends after a ':'
                # that a flow indicator follows. Such a scalar is a string: quoted, it reads alike.
                start, end = e.context_mark.index, mark.index + 1
                text = text[:start] + "'" + text[start:end].replace("'", "''") + "'" + text[end:]
                continue
            message = f"{e.problem} ({e.context})" if e.context else e.problem
            raise UserError(f"invalid YAML: {message}", file=filename,
                            line=line0 + mark.line + 1, col=mark.column + 1) from None
        finally:
            loader.dispose()


_ANCHOR = re.compile(r"&([0-9A-Za-z_-]+)")  # go-yaml and libyaml: an anchor's name is "alpha"


def _rename_first_anchor(text, first, second):
    """go-yaml v2 lets an anchor be defined again (an alias names the latest): the first
    definition at `first`, and its aliases before `second`, get a name of their own."""
    found = _ANCHOR.search(text, first, second)  # the node's properties: a tag may come first
    if not found:
        return None
    name, at = found.group(1), found.start()
    own = next(f"{name}-{n}" for n in range(1, len(text) + 2) if f"{name}-{n}" not in text)
    between = re.sub(r"\*" + re.escape(name) + r"(?![0-9A-Za-z_-])", "*" + own,
                     text[found.end():second])
    return text[:at] + "&" + own + between + text[second:]


def _decode(text, filename, line0, expand=None):
    node, text = _compose(text, filename, line0)
    try:
        if node is None:
            return None
        decoder = _Decoder(filename, text, line0, expand)
        return decoder.settled(decoder.decode(node))
    except RecursionError:
        raise UserError("document is nested too deeply", file=filename, line=line0 + 1) from None

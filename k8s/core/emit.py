"""Emit: objects -> YAML or JSON text that kubectl reads back as the same objects.

One YAML writer for every output (`template`, `build/`, diff, PersistentVolumes,
kubeadm files), written by hand: pyyaml's representer took 1.9 s of the 2.4 s
`make render` spent on 10,000 documents. Block style, keys in the order given,
the same bytes run to run. Each string is written the cheapest way that reads
back, under kubectl's YAML 1.1 rules, as that same string:
- plain when it starts with a letter, `_` or `/`, holds only letters, digits,
  spaces and `-_./:@+=%~`, and is no YAML 1.1 word (`yes`, `no`, `on`, `off`,
  `y`, `n`, `true`, `false`, `null`, in any case), with no `: ` inside and no
  space or `:` at its end; or a Kubernetes quantity like `100m` or `128Mi`. A
  number, a date, `~`, `1_000`, `0644` never start with a letter, so all of
  them are quoted;
- a literal block (`|`, `|-`, `|+`) when it has several lines, nothing a block
  cannot hold (control characters, YAML 1.1 line breaks such as U+2028), no
  whitespace at a line's end and no space or tab starting its first line;
- else double-quoted, escaping only what must be: `"`, `\\`, control
  characters, U+0085, U+2028, U+2029, U+FEFF and what is no character.
A document's own text (`Kept`) is written as it is. tests/core/test_emit.py
writes arbitrary objects and reads them back with kubeyaml.
"""

import re

# A string that needs no quotes: see above. The words are YAML 1.1's booleans and null.
_PLAIN = re.compile(r"[A-Za-z_/](?:[-A-Za-z0-9_./:@+=%~ ]*[-A-Za-z0-9_./@+=%~])?")
_WORDS = re.compile(r"(?i:y|n|yes|no|on|off|true|false|null)")
# Kubernetes quantities (100m, 128Mi, 1.5G) read as strings plain: no YAML 1.1 number ends so.
_QUANTITY = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:m|[KMGTPE]i|[kMGTPE])")
# What a double-quoted string escapes, and what keeps a string out of a literal block.
_ESCAPE = re.compile("[\\x00-\\x1f\"\\\\\\x7f-\\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]")
_NOT_IN_BLOCK = re.compile("[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]"
                           "|[ \\t]\\n|[ \\t]$")
_NAMED = {"\n": "\\n", "\t": "\\t", '"': '\\"', "\\": "\\\\"}


class Kept(str):
    """A document's own text (after substitution), which decodes to its object as it is now:
    written as it is, comments and layout included."""


def _escape(match):
    c = match.group()
    return _NAMED.get(c) or (f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}")


_STRINGS = {}  # single-line string -> its YAML text: names, keys and labels repeat in every object


def _quoted(value):
    return '"' + _ESCAPE.sub(_escape, value) + '"'


def _string(value):
    """The YAML text of a string on one line (plain or double-quoted), remembered."""
    if (_PLAIN.fullmatch(value) and not _WORDS.fullmatch(value) and ": " not in value) \
            or _QUANTITY.fullmatch(value):
        text = value
    else:
        text = _quoted(value)
    if len(_STRINGS) > 100_000:
        _STRINGS.clear()
    _STRINGS[value] = text
    return text


def _scalar(value):
    """The YAML text of a scalar on one line."""
    kind = type(value)
    if kind is str:
        return _STRINGS.get(value) or _string(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return repr(value)
    if value is None:
        return "null"
    if kind is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"cannot write {value!r}: JSON and so Kubernetes have no such number")
        text = repr(value)
        # "1e+20" is a string to a YAML 1.1 reader without a dot; "2.0" stays a float
        return text if "." in text else text.replace("e", ".0e", 1)
    if isinstance(value, str):  # a str subclass
        return _scalar(str(value))
    if isinstance(value, bool):
        return _scalar(bool(value))
    if isinstance(value, (int, float)):
        return _scalar(int(value) if isinstance(value, int) else float(value))
    if isinstance(value, (dict, list, tuple)) and not value:
        return "{}" if isinstance(value, dict) else "[]"
    raise TypeError(f"cannot write {kind.__name__} as YAML")


def _block(value, pad):
    """The lines of `value` as a literal block indented by `pad`, with its header, or None
    when a literal block cannot hold it exactly."""
    if _NOT_IN_BLOCK.search(value):
        return None
    body = value.rstrip("\n")
    first = body.lstrip("\n")
    if not first or first[0] in " \t":
        return None  # a leading space would be taken for the block's indentation
    trailing = len(value) - len(body)
    header = "|-" if trailing == 0 else "|" if trailing == 1 else "|+"
    lines = [f"{pad}{line}" if line else "" for line in body.split("\n")]
    return header, lines + [""] * (trailing - 1 if trailing > 1 else 0)


def _after(head, value, pad, out):
    """`head` ("key:" or "-", indented) followed by the scalar or empty collection `value`."""
    if type(value) is str and "\n" in value:
        block = _block(value, pad + "  ")
        if block:
            out.append(f"{head} {block[0]}")
            out.extend(block[1])
            return
        out.append(f"{head} {_quoted(value)}")
        return
    out.append(f"{head} {_scalar(value)}")


_KEYS = {}  # string key -> "key:", for the keys that fit on a line (all but absurd ones)


def _key(key, pad):
    """The text of `key` with its colon: "key:", or an explicit "? key" for a key that
    is too long to be a simple one (YAML allows 1024 characters)."""
    text = _scalar(key)
    if len(text) >= 1000:
        return f"? {text}\n{pad}:"
    text += ":"
    if type(key) is str:  # not 1 and True, which are one dictionary key
        if len(_KEYS) > 100_000:
            _KEYS.clear()
        _KEYS[key] = text
    return text


def _mapping(value, pad, first, out, sort_keys):
    """The entries of a non-empty mapping at indentation `pad`; the first line starts with
    `first` instead (a list item's "- ")."""
    strings, keys, append = _STRINGS, _KEYS, out.append
    items = sorted(value.items(), key=lambda kv: str(kv[0])) if sort_keys else value.items()
    lead = first
    for key, item in items:
        head = lead + ((keys.get(key) if type(key) is str else None) or _key(key, pad))
        lead = pad
        kind = type(item)
        if kind is str:
            text = strings.get(item)
            if text is not None:
                append(f"{head} {text}")
            elif "\n" in item:
                _after(head, item, pad, out)
            else:
                append(f"{head} {_string(item)}")
        elif kind is dict:
            if item:
                append(head)
                _mapping(item, pad + "  ", pad + "  ", out, sort_keys)
            else:
                append(head + " {}")
        elif kind is list:
            if item:
                append(head)
                _sequence(item, pad, out, sort_keys)  # a list in a mapping is not indented further
            else:
                append(head + " []")
        elif kind is int:
            append(f"{head} {item!r}")
        else:
            _nested_or_scalar(head, item, pad, pad + "  ", out, sort_keys, in_mapping=True)


def _sequence(value, pad, out, sort_keys):
    """The items of a non-empty list, each "- " at indentation `pad`."""
    strings = _STRINGS
    dash = f"{pad}- "
    for item in value:
        kind = type(item)
        if kind is dict and item:
            _mapping(item, pad + "  ", dash, out, sort_keys)
        elif kind is str and (text := strings.get(item)) is not None:
            out.append(dash + text)
        else:
            _nested_or_scalar(f"{pad}-", item, pad, pad + "  ", out, sort_keys, in_mapping=False)


def _nested_or_scalar(head, item, pad, inner, out, sort_keys, in_mapping):
    """What the fast cases above leave: other mappings and sequences (subclasses, tuples, a
    list in a list) and every other scalar."""
    if isinstance(item, dict) and item:
        if in_mapping:
            out.append(head)
            _mapping(item, inner, inner, out, sort_keys)
        else:
            _mapping(item, inner, head + " ", out, sort_keys)
    elif isinstance(item, (list, tuple)) and item:
        if in_mapping:
            out.append(head)
            _sequence(item, pad, out, sort_keys)
        else:  # "- - a": the inner list's items one level in
            start = len(out)
            _sequence(item, inner, out, sort_keys)
            out[start] = f"{head} {out[start][len(inner):]}"
    else:
        _after(head, item, pad, out)


def to_yaml(documents, sort_keys=False):
    """Multi-document YAML, each document after `---`; keys in their order unless `sort_keys`.
    A `Kept` document is its own text."""
    out = []
    for document in documents:
        out.append("---")
        if isinstance(document, Kept):
            out.append(document[:-1] if document.endswith("\n") else document)
        elif isinstance(document, dict) and document:
            _mapping(document, "", "", out, sort_keys)
        elif isinstance(document, (list, tuple)) and document:
            _sequence(document, "", out, sort_keys)
        else:
            out[-1] = f"--- {_quoted(document) if isinstance(document, str) else _scalar(document)}"
    out.append("")
    return "\n".join(out)


def to_json(documents):
    """A v1 List holding `documents`, as kubectl prints several objects (indent 2)."""
    import orjson

    return orjson.dumps({"apiVersion": "v1", "kind": "List", "items": list(documents)},
                        option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"


_LIST_HEAD = '{\n  "apiVersion": "v1",\n  "kind": "List",\n  "items": [\n'
_LIST_TAIL = "\n  ]\n}\n"


def join_json(first, second):
    """One `to_json` List of the items of two: `to_json(a + b)` from `to_json(a)` and
    `to_json(b)`, as the same bytes."""
    if not second.startswith(_LIST_HEAD):
        return first  # no items
    if not first.startswith(_LIST_HEAD):
        return second
    return first[:-len(_LIST_TAIL)] + ",\n" + second[len(_LIST_HEAD):]

"""Emit: objects -> YAML or JSON text that kubectl reads back unchanged.

A string that kubectl would decode as something else (`"on"`, `"0644"`,
`"1e3"`, `"2024-01-01"` is safe but quoted anyway) is written double-quoted.

Two YAML writers: `to_yaml` (pyyaml) for any object, the usual choice;
`to_plain_yaml`, written by hand and far faster, for many documents made only
of mappings, lists, strings, numbers, booleans and None, where pyyaml's time
would show (the PersistentVolumes of `render.py persistent`). `to_json` writes
`-o json`.
"""

import json
import re

import yaml

# Plain scalars that go-yaml could resolve to a bool, null or number: quote them.
_AMBIGUOUS = re.compile(
    r"[-+.\d~]|(?i:y|n|yes|no|on|off|true|false|null)$|<<$|=$")


class _Dumper(yaml.CSafeDumper if hasattr(yaml, "CSafeDumper") else yaml.SafeDumper):
    pass


def _represent_str(dumper, value):
    style = '"' if value == "" or _AMBIGUOUS.match(value) else None
    if "\n" in value and style is None:
        style = "|"
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def to_yaml(documents, sort_keys=False):
    """Multi-document YAML, keys in their original order unless `sort_keys`."""
    return yaml.dump_all(documents, Dumper=_Dumper, sort_keys=sort_keys, default_flow_style=False,
                         allow_unicode=True, explicit_start=True, width=1 << 16)


def to_json(documents):
    """A v1 List holding `documents`, as kubectl prints several objects."""
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(documents)},
                      indent=2, ensure_ascii=False) + "\n"


# --- plain YAML, fast ------------------------------------------------------------
# pyyaml's dumper takes a third of a millisecond per PersistentVolume, ten times the
# rendering itself (`render.py persistent`). Such objects hold only mappings, lists,
# strings and numbers, so they are written directly, in the layout `to_yaml` gives
# them: a string goes plain only when it cannot read as anything but that string,
# else double-quoted.

_PLAIN = re.compile(r"[A-Za-z_/][-A-Za-z0-9_./]*")
_WORDS = re.compile(r"(?i:y|n|yes|no|on|off|true|false|null)")
_ESCAPE = re.compile(r'[^ !#-\[\]-~]')  # what needs escaping: '"', '\\' and all but printable ASCII


def _escape(match):
    c = match.group()
    if c in '"\\':
        return "\\" + c
    return {"\n": "\\n", "\t": "\\t"}.get(c) or \
        (f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}")


_STRINGS = {}  # string -> its YAML text: names and keys repeat in every object


def _scalar(value):
    if type(value) is str:
        text = _STRINGS.get(value)
        if text is None:
            if _PLAIN.fullmatch(value) and not _WORDS.fullmatch(value):
                text = value
            else:
                text = '"' + _ESCAPE.sub(_escape, value) + '"'  # YAML double quotes, every escape explicit
            if len(_STRINGS) > 100_000:
                _STRINGS.clear()
            _STRINGS[value] = text
        return text
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _lines(value, indent, out):
    pad = " " * indent
    if type(value) is dict:
        for key, item in value.items():
            kind = type(item)
            if kind is dict and item:
                out.append(f"{pad}{_scalar(key)}:")
                _lines(item, indent + 2, out)
            elif kind is list and item:
                out.append(f"{pad}{_scalar(key)}:")
                _lines(item, indent, out)  # a list in a mapping is not indented further
            else:
                out.append(f"{pad}{_scalar(key)}: {_inline(item)}")
    else:
        for item in value:
            if type(item) in (dict, list) and item:
                start = len(out)
                _lines(item, indent + 2, out)
                out[start] = f"{pad}- {out[start][indent + 2:]}"
            else:
                out.append(f"{pad}- {_inline(item)}")


def _inline(value):
    if type(value) is dict:
        return "{}"
    if type(value) is list:
        return "[]"
    return _scalar(value)


def to_plain_yaml(documents):
    """Multi-document YAML of `documents` (mappings of mappings, lists and scalars)."""
    out = []
    for document in documents:
        out.append("---")
        _lines(document, 0, out)
    out.append("")
    return "\n".join(out)

"""Emit: objects -> YAML or JSON text that kubectl reads back unchanged.

A string that kubectl would decode as something else (`"on"`, `"0644"`,
`"1e3"`, `"2024-01-01"` is safe but quoted anyway) is written double-quoted.
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

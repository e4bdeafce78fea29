"""vendor/lock.yaml, the pins of `make vendor`: its entries, reading it, writing its text.

The lock lists every vendored file: component, URL, file (relative to the
vendor folder), sha256 and size. `read_lock` checks the shape of every entry
and reports all bad ones at once, one line each; `format_lock` writes the
entries sorted and quoted, so the file diffs cleanly. The lock is the pin:
k8s.core.vendor checks vendored files against it before rendering,
k8s.core.vendor_download rewrites it after downloading.

Only standard-library modules are imported at module level; YAML
(k8s.core.kubeyaml) is imported where it is read.
"""

import os
import re
from collections import namedtuple

from ..errors import UserError, raise_all
from .files import absent, read_bytes

LOCK_FILE = "lock.yaml"
# the name of a vendored file, and of its folder: shared with k8s.core.vendor's file_name()
FILE_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_LOCK_KEYS = ("component", "url", "file", "sha256", "size")
LOCK_HEADER = """\
# Written by `make vendor` (render.py vendor); do not edit by hand.
# Upstream manifests imported by component.yaml `imports:`, pinned by sha256:
# render, validate, diff and install read the files under vendor/ offline and
# refuse a file that differs from its entry here.
"""


class Entry(namedtuple("Entry", "component url file sha256 size")):
    """One vendored file in vendor/lock.yaml; `file` is relative to the vendor folder."""

    __slots__ = ()


def lock_path(vendor_root):
    return os.path.join(vendor_root, LOCK_FILE)


def read_lock(vendor_root):
    """{(component, url): Entry} from vendor/lock.yaml; {} when there is none."""
    from . import kubeyaml

    path = lock_path(vendor_root)
    if absent(path):
        return {}
    text = decode(read_bytes(path, "lock"), path)
    docs = [d for d in kubeyaml.load_all(text, path) if d.data is not None]
    if not docs:
        return {}
    data = docs[0].data
    if len(docs) > 1 or not isinstance(data, dict) or set(data) != {"imports"} \
            or not isinstance(data["imports"], list):
        raise UserError("expected one mapping with the list `imports:`; run make vendor to rewrite it",
                        file=path, line=docs[0].line)
    entries, errors = {}, []
    for i, item in enumerate(data["imports"]):
        problem = _entry_problem(item)
        line = kubeyaml.line_of(text, path, docs[0].index, ["imports", i]) or docs[0].line
        if problem:
            errors.append(UserError(f"entry {i + 1}: {problem}; run make vendor to rewrite it",
                                    file=path, line=line))
            continue
        entry = Entry(**{key: item[key] for key in _LOCK_KEYS})
        if (entry.component, entry.url) in entries:
            errors.append(UserError(f"entry {i + 1}: {entry.url} of {entry.component} is listed twice",
                                    file=path, line=line))
        entries[entry.component, entry.url] = entry
    raise_all(errors)
    return entries


def _entry_problem(item):
    if not isinstance(item, dict):
        return "expected a mapping"
    if set(item) != set(_LOCK_KEYS):
        return f"expected the keys {', '.join(_LOCK_KEYS)}"
    if not all(isinstance(item[k], str) and item[k] for k in ("component", "url", "file")):
        return "component, url and file must be strings"
    if not isinstance(item["sha256"], str) or not _SHA256.fullmatch(item["sha256"]):
        return "sha256 must be 64 lower-case hex digits"
    if not isinstance(item["size"], int) or isinstance(item["size"], bool) or item["size"] < 0:
        return "size must be a number of bytes"
    parts = item["file"].split("/")
    if len(parts) != 2 or not all(FILE_NAME_PATTERN.fullmatch(p) for p in parts):
        return "file must be <component>/<file name>"
    return None


def format_lock(entries):
    """The text of vendor/lock.yaml: entries sorted by component and URL, strings quoted."""
    import json

    lines = [LOCK_HEADER.rstrip("\n")]
    ordered = sorted(entries, key=lambda e: (e.component, e.url))
    lines.append("imports:" if ordered else "imports: []")
    for e in ordered:
        lines += [f"- component: {json.dumps(e.component)}",
                  f"  url: {json.dumps(e.url)}",
                  f"  file: {json.dumps(e.file)}",
                  f"  sha256: \"{e.sha256}\"",
                  f"  size: {e.size}"]
    return "\n".join(lines) + "\n"


def decode(raw, path):
    """The text of a file's bytes, decoded as every file of the pipeline is (k8s.core.files)."""
    from .files import decode_text

    return decode_text(raw, path)

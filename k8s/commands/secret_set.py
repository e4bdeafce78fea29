"""`secrets set NAME KEY=@FILE|KEY=-`: change keys of an encrypted secret file, no editor, no plaintext on disk.

Each value is read from a file the user names or from stdin (never from the
command line, where process listings and shell history show it), and written
with `sops set`, through a pipe, under the file's own data key: the other
values keep their ciphertext, so `git diff` shows only the keys that changed.
A key the Secret has under `stringData` stays there, one under `data` stays
base64 there; a new key goes to `stringData` when it is UTF-8 text, else to
`data`. Every value is read and checked before the file is touched.
"""

import base64
import json
import os
import sys

from ..secrets.files import SECRETS_DIR, secret_files, secret_name
from ..secrets.objects import KEY_NAME
from ..secrets.workspace import Workspace

MAX_VALUE = 1024 * 1024  # bytes: a Secret holds at most 1 MiB in all


def cmd_set(args):
    """Set the keys of `args.pairs` in secrets/`args.name`.yml."""
    from ..errors import UserError

    ws = Workspace(args)
    name = secret_name(args.name, getattr(args, "secrets_dir", None) or SECRETS_DIR)
    sources = _sources(args.pairs)  # a mistyped argument before a missing file
    [path] = secret_files(ws.directory, [name])
    values = _read_values(sources)
    for value in values.values():
        ws.scrub.add(value)
    loaded = ws.load(path)
    if len(loaded.objects) != 1 or loaded.objects[0].kind != "Secret":
        raise UserError("holds more than one Secret: change it with `render.py secrets edit`", file=path)
    secret = loaded.objects[0].data
    changes = [(key, *_placed(key, value, secret)) for key, value in values.items()]
    try:
        for key, field, encoded in changes:
            ws.sops.set(path, f"[{json.dumps(field)}][{json.dumps(key)}]", json.dumps(encoded))
        ws.load(path)  # still a Secret that applies
    except UserError as err:
        raise ws.scrub.error(err) from None
    for key, field, _ in changes:
        print(f"{path}: {field}.{key} set")
    print(f"apply it with `make {ws.directory}/{name}`")
    return 0


def _sources(pairs):
    """{key: "@FILE" or "-"} of KEY=@FILE / KEY=- arguments; a literal value is refused."""
    from ..errors import UsageError

    sources = {}
    for pair in pairs:
        key, sep, source = pair.partition("=")
        if not sep or not KEY_NAME.match(key):
            raise UsageError(f"{key!r}: expected KEY=@FILE or KEY=- (key: letters, digits, '-', '_' or '.')")
        if key in sources:
            raise UsageError(f"key {key!r} given twice")
        if source != "-" and not source.startswith("@"):
            raise UsageError(f"key {key!r}: give the value as {key}=@FILE or {key}=- (stdin), never on the "
                             "command line, where process listings and shell history keep it")
        sources[key] = source
    if list(sources.values()).count("-") > 1:
        raise UsageError("only one value can come from stdin (KEY=-)")
    return sources


def _read_values(sources):
    """{key: bytes} of the checked `sources`, each at most MAX_VALUE bytes."""
    from ..errors import UserError

    values = {}
    for key, source in sources.items():
        where = "stdin" if source == "-" else source[1:]
        values[key] = sys.stdin.buffer.read(MAX_VALUE + 1) if source == "-" else _read_file(where)
        if len(values[key]) > MAX_VALUE:
            raise UserError(f"key {key!r}: the value from {where} is over {MAX_VALUE // 1024} KiB, "
                            "more than a Secret can hold")
    return values


def _read_file(path):
    from ..core.files import read_bytes

    return read_bytes(path, "secret value", name=path)


def _placed(key, value, secret):
    """(field, value as stored there) for `key` in `secret`'s plaintext."""
    string_data = secret.get("stringData") or {}
    if key not in string_data and (key in (secret.get("data") or {}) or not _text(value)):
        return "data", base64.b64encode(value).decode("ascii")
    if not _text(value):
        from ..errors import UserError

        raise UserError(f"key {key!r} is under stringData, but the new value is not UTF-8 text")
    return "stringData", value.decode("utf-8")


def _text(value):
    try:
        value.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False

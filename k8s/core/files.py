"""Manifest files as text: a missing, special, binary or non-UTF-8 file is one UserError naming it."""

import os

from ..errors import UserError


def read_text(path):
    """File contents as text; an unreadable, binary or non-UTF-8 file is a UserError."""
    if not os.path.isfile(path):  # a FIFO or a device would block or never end
        what = "does not exist" if not os.path.lexists(path) else (
            "is a dangling symlink" if os.path.islink(path) and not os.path.exists(path)
            else "is not a regular file")
        raise UserError(what, file=path)
    try:
        with open(path, "rb") as f:
            return decode_text(f.read(), path)
    except OSError as err:
        raise UserError(f"cannot read: {err.strerror}", file=path) from None


def decode_text(raw, path):
    """`raw` bytes as text; binary or non-UTF-8 content is a UserError naming `path`."""
    if b"\0" in raw:
        raise UserError("binary file, expected YAML text", file=path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise UserError(f"not UTF-8 text (byte 0x{raw[err.start]:02x})", file=path, line=line)

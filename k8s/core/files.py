"""Every file the toolkit reads, read one way: a regular file, under a size limit per kind.

A FIFO would block the read forever, a device like /dev/zero never ends, a huge
file fills the memory: each is one UserError naming the file (and the limit),
before more than the limit is read. Missing files, dangling symlinks and
symlink loops are one UserError too. Text is UTF-8 without NUL bytes.

The limits (bytes) are per kind of file, in `LIMITS`; each is far above what a
real file of that kind holds and far below what would hurt:
    vars          1 MiB  Makefile.vars, VARS_FILE (the shipped one is ~20 KiB)
    manifest      8 MiB  manifests/*.yaml(.j2), vendored files (the largest upstream
                         install.yaml, cert-manager's, is ~1 MiB)
    settings      1 MiB  component.yaml (components.py still reads it as a manifest: 8 MiB)
    secret value  1 MiB  `secrets create --from-file` (the API server stores at most
                         1 MiB in one Secret)
    secret file   8 MiB  secrets/*.yml, sops-encrypted (1 MiB of values in base64
                         plus sops' encoding and MAC)
    key           1 MiB  key files (age keys.txt, ssh keys just made)
    kubeconfig    8 MiB  the admin kubeconfig `make kubeconfig` reads (certificates
                         inline make it a few KiB a context)
    sops config   1 MiB  secrets/.sops.yaml (a few hundred bytes)
    lock          1 MiB  vendor/lock.yaml (a few hundred bytes an import)
    record        1 MiB  what the toolkit keeps for itself: build/.written (one line a
                         file), the server clock record in ~/.cache (a number)
    schema       64 MiB  the Kubernetes JSON schemas validate.py reads (~2 MiB)
"""

import errno
import os
import stat

from ..errors import UserError

MIB = 1 << 20
LIMITS = {
    "vars": 1 * MIB,
    "manifest": 8 * MIB,
    "settings": 1 * MIB,
    "secret value": 1 * MIB,
    "secret file": 8 * MIB,
    "key": 1 * MIB,
    "kubeconfig": 8 * MIB,
    "sops config": 1 * MIB,
    "lock": 1 * MIB,
    "record": 1 * MIB,
    "schema": 64 * MIB,
}
_NAMES = {"vars": "a vars file", "manifest": "a manifest", "settings": "a component.yaml",
          "secret value": "a secret value file", "secret file": "a secret file", "key": "a key file", "kubeconfig": "a kubeconfig",
          "sops config": "a .sops.yaml", "lock": "a vendor lock", "record": "the toolkit's own record",
          "schema": "a schema file"}


def size_text(n):
    """1048576 -> "1 MiB", 1536 -> "1.5 KiB", 12 -> "12 bytes"."""
    for unit, size in (("MiB", MIB), ("KiB", 1024)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


def read_bytes(path, kind="manifest", name=None, missing="does not exist"):
    """The contents of the regular file `path`, at most `LIMITS[kind]` bytes.

    Parameters:
        path: the file; a symlink to a regular file is followed.
        kind: a key of LIMITS, the kind of file (its limit and how errors name it).
        name: how errors name the file (default `path`), e.g. "VARS_FILE=/dev/zero".
        missing: the message when there is no such file.

    Raises UserError for a missing file, a dangling symlink, a symlink loop, anything
    that is not a regular file (FIFO, device, directory, socket), a file over the
    limit and a read error. A FIFO is opened without blocking and never read.
    """
    name = name or path
    limit = LIMITS[kind]
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise _open_error(err, path, name, missing) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(info, name)
        if info.st_size > limit:
            raise _too_large(name, kind, info.st_size)
        chunks, total = [], 0
        want = info.st_size + 1  # all of it in one read (not a MiB buffer each time) and one more byte
        while total <= limit:  # the file may grow while it is read: never more than the limit + 1
            asked = min(limit + 1 - total, want) or 1
            chunk = os.read(fd, asked)
            want = MIB
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if len(chunk) < asked:
                break  # a regular file's short read is its end
        if total > limit:
            raise _too_large(name, kind, None)
        return b"".join(chunks)
    except OSError as err:
        raise UserError(f"cannot read: {err.strerror}", file=name) from None
    finally:
        os.close(fd)


def read_text(path, kind="manifest", name=None, missing="does not exist"):
    """File contents as text (`read_bytes`); binary or non-UTF-8 content is a UserError."""
    return decode_text(read_bytes(path, kind, name, missing), name or path)


def absent(path):
    """True when nothing at all is at `path` (not even a dangling symlink); a path through a
    file (ENOTDIR) is not absent: read_bytes names it."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False


def check_entry(path, kind="secret file"):
    """None if `path` is a regular file `read_bytes` would accept, else its UserError
    (without reading it): for listing a folder whose every entry must be a file."""
    try:
        info = os.stat(path)
    except OSError as err:
        return _open_error(err, path, path, "does not exist")
    if not stat.S_ISREG(info.st_mode):
        return _not_regular(info, path)
    if info.st_size > LIMITS[kind]:
        return _too_large(path, kind, info.st_size)
    return None


def decode_text(raw, path):
    """`raw` bytes as text; binary or non-UTF-8 content is a UserError naming `path`."""
    if b"\0" in raw:
        raise UserError("binary file, expected YAML text", file=path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise UserError(f"not UTF-8 text (byte 0x{raw[err.start]:02x})", file=path, line=line)


def _open_error(err, path, name, missing):
    if err.errno == errno.ELOOP:
        return UserError("is a symlink loop", file=name)
    if err.errno == errno.ENOENT:
        if os.path.islink(path):
            return UserError("is a dangling symlink", file=name)
        return UserError(missing, file=name)
    if err.errno == errno.EISDIR:  # not on Linux (a directory opens read-only), but elsewhere
        return UserError("not a regular file", file=name)
    return UserError(f"cannot read: {err.strerror}", file=name)


def _not_regular(info, name):
    """"not a regular file", with what it is when that helps: a directory, a FIFO, a socket."""
    what = {stat.S_IFDIR: " (a directory)", stat.S_IFIFO: " (a FIFO)",
            stat.S_IFSOCK: " (a socket)"}.get(stat.S_IFMT(info.st_mode), "")
    return UserError(f"not a regular file{what}", file=name)


def _too_large(name, kind, size):
    have = f": it has {size} bytes" if size is not None else ""
    return UserError(f"larger than the {size_text(LIMITS[kind])} limit for {_NAMES[kind]}{have}", file=name)

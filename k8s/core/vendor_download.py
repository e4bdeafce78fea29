"""`make vendor` (render.py vendor): download the imports of components and pin them in the lock.

`make vendor` again checks every file against the lock and downloads nothing
while files, lock and URLs agree. A new or changed URL (a VERSION_* bump) is
downloaded and the lock updated; a file that is missing or differs from the
lock is downloaded again and must match the sha256 in the lock (the lock is
the pin: changed upstream bytes at a pinned URL are an error);
`--update` downloads every file again and records whatever upstream serves
now. Files are written to a temporary file in the same folder and renamed
into place only when every download succeeded; files of URLs no longer
imported are removed. Only https URLs are fetched (http only from localhost).

This is the only part of vendoring that uses the network; where files go is
k8s.core.vendor, the lock's format k8s.core.vendor_lock.

Only a few cheap standard-library modules are imported at module level (the
CLI reads DEFAULT_TIMEOUT to register the command); hashing, networking and
YAML are imported where they are used.
"""

import os
import sys

from ..errors import UserError, raise_all
from .files import absent, read_bytes
from .vendor import local_path, planned, short
from .vendor_lock import Entry, decode, format_lock, lock_path, read_lock

DEFAULT_TIMEOUT = 60.0
MAX_SIZE = 64 * 1024 * 1024  # the largest manifest accepted; cert-manager.yaml is ~1 MB
USER_AGENT = "k8s-toolkit-vendor"
_TEMP_PREFIX = ".vendor-"
_TEMP_SUFFIX = ".part"


class Result:
    """What a vendor run did: `files` [(action, Entry)], `removed` files, `lock_written`."""

    def __init__(self, files, removed, lock_written):
        self.files, self.removed, self.lock_written = files, removed, lock_written

    def count(self, action):
        """How many files had `action`: ok, downloaded, restored, updated or unchanged."""
        return sum(1 for a, _ in self.files if a == action)


def vendor(components, vendor_root, update=False, timeout=DEFAULT_TIMEOUT, out=None, complete=True):
    """Download the imports of `components` into `vendor_root` and write the lock.

    Parameters:
        components: Component objects whose `imports` to vendor.
        vendor_root: the vendor folder.
        update: download every file again and accept what upstream serves now.
        timeout: seconds for connecting and for each read.
        out: where progress lines go (default stdout).
        complete: `components` are all the components, so lock entries of
            others are stale and dropped (False when only some were named).

    Returns a Result. Nothing is written unless every download succeeded.
    """
    out = out or sys.stdout
    old = read_lock(vendor_root)
    plan, errors = [], []
    for component in components:
        try:
            plan += [(component.name, url, rel) for url, rel in planned(component)]
        except UserError as err:
            errors.extend(getattr(err, "errors", [err]))
    raise_all(errors)
    names = {c.name for c in components}
    new = {key: e for key, e in old.items() if not complete and key[0] not in names}
    files, staged = [], []
    try:
        for component in sorted({name for name, _, _ in plan}):
            folder = os.path.join(vendor_root, component)
            if os.path.lexists(folder) and not os.path.isdir(folder):
                raise UserError("is not a folder: remove it, make vendor makes the folder", file=folder)
            _remove_leftovers(folder)
        for component, url, rel in plan:
            entry = old.get((component, url))
            if entry and entry.file != rel:
                entry = None
            path = local_path(vendor_root, rel)
            if os.path.isdir(path):
                errors.append(UserError(f"is a directory, not the file of {url}: remove it", file=path))
                continue
            if not update and entry and _matches(path, entry):
                new[component, url] = entry
                files.append(("ok", entry))
                _say(out, vendor_root, "ok", entry)
                continue
            try:
                tmp, digest, size = _download(url, os.path.dirname(path), timeout)
            except UserError as err:
                errors.append(err)
                continue
            staged.append((tmp, path))
            fresh = Entry(component, url, rel, digest, size)
            if entry and not update and digest != entry.sha256:
                errors.append(UserError(
                    f"{url}: upstream sha256 {short(digest)} does not match {lock_path(vendor_root)} "
                    f"({short(entry.sha256)}): the file at this pinned URL changed; check it, then "
                    "run make vendor UPDATE=1 (render.py vendor --update)"))
                continue
            if entry is None:
                action = "downloaded"
            elif not update:
                action = "restored"
            else:
                action = "unchanged" if entry.sha256 == digest else "updated"
            new[component, url] = fresh
            files.append((action, fresh))
            _say(out, vendor_root, action, fresh)
        raise_all(errors)
        for tmp, path in staged:
            try:
                os.replace(tmp, path)
            except OSError as err:
                raise UserError(f"cannot write: {err.strerror}", file=path) from None
        staged = []
    finally:
        for tmp, _ in staged:
            _unlink(tmp)
    removed = _remove_stale(vendor_root, old, new, names, complete)
    for rel in removed:
        print(f"removed    {os.path.join(vendor_root, *rel.split('/'))} (no longer imported)", file=out)
    lock_written = _write_lock(vendor_root, new, bool(old) or bool(new))
    lock_file = lock_path(vendor_root)
    result = Result(files, removed, lock_written)
    counts = ", ".join(f"{n} {a}" for a in ("ok", "downloaded", "restored", "updated", "unchanged")
                       if (n := result.count(a)))
    state = "written" if lock_written else "unchanged"
    print(f"{lock_file} {state}: {len(new)} file{'s' if len(new) != 1 else ''}"
          f"{f' ({counts})' if counts else ''}", file=out)
    return result


def _matches(path, entry):
    import hashlib

    try:
        raw = read_bytes(path, "manifest")
    except UserError:  # missing, or not a file: downloaded again over it
        return False
    return len(raw) == entry.size and hashlib.sha256(raw).hexdigest() == entry.sha256


def _download(url, directory, timeout):
    """Fetch `url` into a temporary file in `directory`: (temporary path, sha256, size)."""
    import hashlib
    import http.client
    import tempfile
    import urllib.error
    import urllib.request

    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX, dir=directory)
    except OSError as err:
        raise UserError(f"cannot write into it: {err.strerror}", file=directory) from None
    digest, size = hashlib.sha256(), 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with os.fdopen(fd, "wb") as f:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                while chunk := response.read(1 << 16):
                    size += len(chunk)
                    if size > MAX_SIZE:
                        raise UserError(f"{url}: larger than {MAX_SIZE >> 20} MiB, not a manifest")
                    digest.update(chunk)
                    f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; vendored files are ordinary sources
        with open(tmp, "rb") as f:
            _check_manifest(f.read(), url)
    except urllib.error.HTTPError as err:
        _unlink(tmp)
        raise UserError(f"{url}: HTTP {err.code} {err.reason}")
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        _unlink(tmp)
        reason = getattr(err, "reason", None) or err
        raise UserError(f"{url}: cannot download: {reason}")
    except BaseException:
        _unlink(tmp)
        raise
    return tmp, digest.hexdigest(), size


def _check_manifest(raw, url):
    """A downloaded file must be YAML text with at least one Kubernetes object."""
    from . import kubeyaml

    docs = kubeyaml.load_all(decode(raw, url), url)
    if not any(isinstance(d.data, dict) and d.data.get("kind") for d in docs):
        raise UserError(f"{url}: no Kubernetes objects in the downloaded file")


def _remove_stale(vendor_root, old, new, names, complete):
    """Delete the files of old lock entries that no entry refers to any more."""
    kept = {e.file for e in new.values()}
    removed = []
    for entry in sorted(old.values(), key=lambda e: e.file):
        if (complete or entry.component in names) and entry.file not in kept \
                and entry.file not in removed:
            path = local_path(vendor_root, entry.file)
            if os.path.isfile(path):
                _unlink(path)
                removed.append(entry.file)
            try:
                os.rmdir(os.path.dirname(path))  # only when it is empty now
            except OSError:
                pass
    return removed


def _write_lock(vendor_root, entries, wanted):
    """Write the lock atomically when its text changes; True when written."""
    import tempfile

    path = lock_path(vendor_root)
    text = format_lock(entries.values())
    if absent(path) and not wanted:
        return False
    try:
        if read_bytes(path, "lock").decode("utf-8", "replace") == text:
            return False
    except UserError:  # not a file the toolkit wrote: replaced by one it did
        pass
    try:
        os.makedirs(vendor_root, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX, dir=vendor_root)
    except OSError as err:
        raise UserError(f"cannot write: {err.strerror}", file=path) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as err:
        _unlink(tmp)
        if isinstance(err, OSError):
            raise UserError(f"cannot write: {err.strerror}", file=path) from None
        raise
    return True


def _remove_leftovers(folder):
    """Temporary files of an interrupted run."""
    if os.path.isdir(folder):
        for name in os.listdir(folder):
            if name.startswith(_TEMP_PREFIX) and name.endswith(_TEMP_SUFFIX):
                _unlink(os.path.join(folder, name))


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _say(out, vendor_root, action, entry):
    print(f"{action:<10} {entry.url} -> {local_path(vendor_root, entry.file)} "
          f"({_size(entry.size)}, sha256 {entry.sha256[:12]})", file=out, flush=True)


def _size(n):
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024

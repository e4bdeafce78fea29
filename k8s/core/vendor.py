"""Pinned upstream imports: `imports:` in component.yaml, `make vendor`, vendor/lock.yaml.

A component may take upstream release manifests as they are published:

    # manifests/cert-manager/component.yaml
    imports:
    - https://github.com/cert-manager/cert-manager/releases/download/${VERSION_CERT_MANAGER}/cert-manager.yaml

The URLs take variables like every value of component.yaml. `make vendor`
(`render.py vendor [COMPONENT...] [--update]`) downloads each one into
`vendor/<component>/<file name of the URL>` (next to `manifests/`) and
records it in `vendor/lock.yaml`: component, URL, file, sha256 and size. The
vendor folder is meant to be committed: from then on render, validate, diff
and install read only `vendor/` and work offline.

`make vendor` again checks every file against the lock and downloads nothing
while files, lock and URLs agree. A new or changed URL (a VERSION_* bump) is
downloaded and the lock updated; a file that is missing or differs from the
lock is downloaded again and must match the sha256 in the lock (the lock is
the pin: changed upstream bytes at a pinned URL are an error);
`--update` downloads every file again and records whatever upstream serves
now. Files are written to a temporary file in the same folder and renamed
into place only when every download succeeded; files of URLs no longer
imported are removed. Only https URLs are fetched (http only from localhost).

Vendored files are upstream text: no variable substitution happens in them
(they may contain `$` legitimately). Their objects go through the same
pipeline as the component's own (validation, with their CRDs validating
their custom resources, ordering, labels for prune, diff masking,
IMAGE_MIRROR). Before rendering, `documents()` checks each file against the
lock; a missing file, a file whose sha256 differs, or a URL that is not in
the lock is a one-line error that ends in "run make vendor".

Only a few cheap standard-library modules are imported at module level, so
that the CLI can register the `vendor` command without slowing `render.py
--help`; hashing, networking and YAML are imported where they are used.
"""

import os
import re
import sys
from collections import namedtuple

from ..errors import UserError, raise_all

VENDOR_DIR = "vendor"
LOCK_FILE = "lock.yaml"
SETTINGS_FILE = "component.yaml"
DEFAULT_TIMEOUT = 60.0
MAX_SIZE = 64 * 1024 * 1024  # the largest manifest accepted; cert-manager.yaml is ~1 MB
USER_AGENT = "k8s-toolkit-vendor"
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
_TEMP_PREFIX = ".vendor-"
_TEMP_SUFFIX = ".part"
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
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


# --- where things are ------------------------------------------------------

def vendor_dir(manifests="manifests"):
    """The vendor folder that goes with a manifests folder: its sibling `vendor/`."""
    return os.path.join(os.path.dirname(os.path.normpath(manifests)), VENDOR_DIR)


def lock_path(vendor_root):
    return os.path.join(vendor_root, LOCK_FILE)


def imports_of(component):
    """The import URLs of a component (already expanded, as component.yaml values are)."""
    return list(getattr(component, "imports", None) or [])


def file_name(url):
    """The file name an import lands in: the last segment of the URL's path."""
    from urllib.parse import unquote, urlsplit

    try:
        parts = urlsplit(url)
    except ValueError as err:
        raise UserError(f"import {url!r} is not a valid URL: {err}") from None
    name = unquote(parts.path.rpartition("/")[2])
    if not _FILE_NAME.fullmatch(name):
        raise UserError(f"import {url!r} has no usable file name at the end of its path "
                        "(expected something like .../install.yaml)")
    return name


def planned(component):
    """[(url, file relative to the vendor folder)] of a component; bad URLs are UserErrors."""
    from urllib.parse import urlsplit

    settings = os.path.join(component.path, SETTINGS_FILE)
    seen, plan, errors = {}, [], []
    for url in imports_of(component):
        if not isinstance(url, str) or not url:
            errors.append(UserError(f"imports: expected URLs, got {url!r}", file=settings))
            continue
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018  (raises on a port that is not a number)
        except ValueError as err:
            errors.append(UserError(f"import {url!r} is not a valid URL: {err}", file=settings))
            continue
        if parts.scheme not in ("https", "http") or not parts.hostname:
            errors.append(UserError(f"import {url!r} is not an https:// URL", file=settings))
            continue
        if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
            errors.append(UserError(f"import {url} uses http://: only https:// URLs are vendored "
                                    "(http:// only from localhost)", file=settings))
            continue
        try:
            rel = f"{component.name}/{file_name(url)}"
        except UserError as err:
            errors.append(UserError(err.message, file=settings))
            continue
        if url in seen:
            errors.append(UserError(f"import {url} is listed twice", file=settings))
        elif rel in seen.values():
            other = next(u for u, r in seen.items() if r == rel)
            errors.append(UserError(f"imports {other} and {url} would both be vendored as "
                                    f"{VENDOR_DIR}/{rel}", file=settings))
        else:
            seen[url] = rel
            plan.append((url, rel))
    raise_all(errors)
    return plan


def _local(vendor_root, rel):
    return os.path.join(vendor_root, *rel.split("/"))


def short(digest):
    """The first 12 hex digits of a sha256, for messages."""
    return f"{digest[:12]}…"


# --- the lock file ----------------------------------------------------------

def read_lock(vendor_root):
    """{(component, url): Entry} from vendor/lock.yaml; {} when there is none."""
    from . import kubeyaml

    path = lock_path(vendor_root)
    try:
        with open(path, "rb") as f:
            text = _text(f.read(), path)
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise UserError(f"cannot read: {err.strerror}", file=path) from None
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
    if len(parts) != 2 or not all(_FILE_NAME.fullmatch(p) for p in parts):
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


# --- rendering: the vendored texts ------------------------------------------

def not_vendored(component, vendor_root):
    """True when a component has imports that were never vendored: none of its
    files exists and the lock has no entry for it. `make render` skips such a
    component with a note; naming it explicitly makes `documents()` fail."""
    urls = imports_of(component)
    if not urls:
        return False
    try:
        plan = planned(component)
        lock = read_lock(vendor_root)
    except UserError:
        return False  # reported by documents()
    if any(os.path.exists(_local(vendor_root, rel)) for _, rel in plan):
        return False
    return not any(name == component.name for name, _ in lock)


def note(component):
    """The one line `make render` prints for a component that is not vendored yet."""
    return f"{component.name}: not vendored yet (make vendor)"


def documents(component, vendor_root):
    """[(path, text)] of a component's vendored files, each checked against the lock.

    Feed each text to the parser as it is (`kubeyaml.load_all(text, path)`):
    vendored files are never substituted. A missing file, a file whose sha256
    differs from the lock, or a URL the lock does not have is a UserError (all
    of them at once, one line each).
    """
    import hashlib

    plan = planned(component)
    if not plan:
        return []
    lock = read_lock(vendor_root)
    lock_file = lock_path(vendor_root)
    texts, errors = [], []
    for url, rel in plan:
        path = _local(vendor_root, rel)
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            errors.append(UserError(f"missing, not vendored yet ({url}); run make vendor", file=path))
            continue
        except OSError as err:
            errors.append(UserError(f"cannot read: {err.strerror}", file=path))
            continue
        digest = hashlib.sha256(raw).hexdigest()
        entry = lock.get((component.name, url))
        if entry is None:
            errors.append(UserError(f"no entry for {url} ({path} has sha256 {short(digest)}); "
                                    "run make vendor", file=lock_file))
        elif entry.file != rel:
            errors.append(UserError(f"the entry for {url} names {entry.file}, not {rel}; run make vendor",
                                    file=lock_file))
        elif entry.sha256 != digest or entry.size != len(raw):
            errors.append(UserError(f"sha256 {short(digest)} does not match {lock_file} "
                                    f"({short(entry.sha256)}) for {url}; run make vendor", file=path))
        else:
            try:
                texts.append((path, _text(raw, path)))
            except UserError as err:
                errors.append(err)
    raise_all(errors)
    return texts


def _text(raw, path):
    from .files import decode_text

    return decode_text(raw, path)


# --- make vendor --------------------------------------------------------------

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
            path = _local(vendor_root, rel)
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
        with open(path, "rb") as f:
            raw = f.read()
    except (FileNotFoundError, IsADirectoryError):
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

    docs = kubeyaml.load_all(_text(raw, url), url)
    if not any(isinstance(d.data, dict) and d.data.get("kind") for d in docs):
        raise UserError(f"{url}: no Kubernetes objects in the downloaded file")


def _remove_stale(vendor_root, old, new, names, complete):
    """Delete the files of old lock entries that no entry refers to any more."""
    kept = {e.file for e in new.values()}
    removed = []
    for entry in sorted(old.values(), key=lambda e: e.file):
        if (complete or entry.component in names) and entry.file not in kept \
                and entry.file not in removed:
            path = _local(vendor_root, entry.file)
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
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return False
    except FileNotFoundError:
        if not wanted:
            return False
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
    print(f"{action:<10} {entry.url} -> {_local(vendor_root, entry.file)} "
          f"({_size(entry.size)}, sha256 {entry.sha256[:12]})", file=out, flush=True)


def _size(n):
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024

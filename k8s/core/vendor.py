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

The lock file is k8s.core.vendor_lock; `make vendor` itself, the only part
that uses the network, is k8s.core.vendor_download. This module knows where
things are (the vendor folder, the file each URL lands in) and gives the
renderer the vendored texts.

Vendored files are upstream text: no variable substitution happens in them
(they may contain `$` legitimately). Their objects go through the same
pipeline as the component's own (validation, with their CRDs validating
their custom resources, ordering, labels for prune, diff masking,
IMAGE_MIRROR). Before rendering, `documents()` checks each file against the
lock; a missing file, a file whose sha256 differs, or a URL that is not in
the lock is a one-line error that ends in "run make vendor".

Only a few cheap standard-library modules are imported at module level, so
that the CLI can register the `vendor` command without slowing `render.py
--help`; hashing, URL parsing and YAML are imported where they are used.
"""

import os

from ..errors import UserError, raise_all
from .files import read_bytes
from .vendor_lock import FILE_NAME_PATTERN, decode, lock_path, read_lock

VENDOR_DIR = "vendor"
SETTINGS_FILE = "component.yaml"
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


# --- where things are ------------------------------------------------------

def vendor_dir(manifests="manifests"):
    """The vendor folder that goes with a manifests folder: its sibling `vendor/`."""
    return os.path.join(os.path.dirname(os.path.normpath(manifests)), VENDOR_DIR)


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
    if not FILE_NAME_PATTERN.fullmatch(name):
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


def local_path(vendor_root, rel):
    """The path of a file named relative to the vendor folder (`component/file`)."""
    return os.path.join(vendor_root, *rel.split("/"))


def short(digest):
    """The first 12 hex digits of a sha256, for messages."""
    return f"{digest[:12]}…"


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
    if any(os.path.exists(local_path(vendor_root, rel)) for _, rel in plan):
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
        path = local_path(vendor_root, rel)
        try:
            raw = read_bytes(path, "manifest", missing=f"missing, not vendored yet ({url}); run make vendor")
        except UserError as err:
            errors.append(err)
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
                texts.append((path, decode(raw, path)))
            except UserError as err:
                errors.append(err)
    raise_all(errors)
    return texts


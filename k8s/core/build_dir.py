"""The output folder (build/): exactly what the last full render wrote, nothing the user put there touched.

The toolkit records every file it writes into a folder in `.written` there
(LIST_FILE: one path per line, relative to the folder). A write with
`prune=True` (`render.py template --out DIR` of all components, what `make
render` runs) removes afterwards every file the toolkit wrote before and did
not write this time: a Kubernetes 1.24 render's pod-security.yaml does not
survive a 1.37 render, so `kubectl apply -f build/` applies the last render
only. Without a list (a folder from before it existed, or a new one) the
candidates are the names the toolkit is known to write, `known`: the caller's
`<component>.yaml|json` and RETIRED, the kubeadm fragments older versions wrote
at the top of build/. A file of any other name is never removed, nor is
anything that is not a regular file, nor anything outside the folder,
whatever the list says.

A write without `prune` (one component, or the kubeadm folder alone) removes
nothing but `remove`, and adds its files to the list.

Only the standard library is imported.
"""

import os
import posixpath

from ..errors import UserError
from .files import absent, read_bytes

LIST_FILE = ".written"
# What older versions wrote at the top of build/; the kubeadm files now live in build/kubeadm/.
RETIRED = ("kubeadm-encryption.yaml", "kubeadm-audit.yaml", "kubeadm-admission.yaml",
           "audit-policy.yaml", "admission-config.yaml")
_HEADER = ("# files render.py wrote into this folder; a render of every component removes those of them\n"
           "# it does not write again. Edit nothing here: render again.\n")


def component_names(manifests):
    """The file names a render may write for the component folders under `manifests`."""
    try:
        folders = sorted(e.name for e in os.scandir(manifests) if e.is_dir())
    except OSError:
        return set()
    return {f"{name}.{ext}" for name in folders for ext in ("yaml", "json")}


def write(folder, files, known=(), prune=False, remove=()):
    """Write {relative path: text} into `folder` and record them; returns (written paths, removed paths).

    Parameters:
        folder: the output folder, made if need be.
        files: {path relative to folder ("web.yaml", "kubeadm/NOTES.txt"): text}, written in order.
        known: names the toolkit writes, the candidates for removal when the folder has no list.
        prune: remove every recorded (or, without a list, known or RETIRED) file not in `files`.
        remove: relative paths to remove anyway when they are regular files (retired names).

    What the system refuses (a file where the folder should be, no permission) is one line.
    """
    written, removed = [], []
    try:
        os.makedirs(folder, exist_ok=True)
        listed = _read_list(folder)
        for name, text in files.items():
            path = os.path.join(folder, *name.split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            written.append(path)
        if prune:
            stale = (set(RETIRED) | (set(listed) if listed is not None else set(known))) - set(files)
        else:
            stale = set(remove) - set(files)
        for name in sorted(stale):
            if _remove(folder, name):
                removed.append(os.path.join(folder, *name.split("/")))
        if prune:
            record = set(files)
        else:  # keep what the next full render must clean up; without a list, the known names present
            before = listed if listed is not None else [n for n in known if _is_file(folder, n)]
            record = (set(before) - stale) | set(files)
        _write_list(folder, record)
    except OSError as err:
        if not os.path.isdir(folder) and os.path.lexists(folder):
            raise UserError("not a folder: the output goes into a folder (give a new or existing "
                            "folder)", file=folder) from None
        raise UserError(f"cannot write: {err.strerror}", file=err.filename or folder) from None
    return written, removed


def _safe(name):
    """A path the list may name: relative, normalised, inside the folder, not the list itself."""
    return (bool(name) and not name.startswith("/") and posixpath.normpath(name) == name
            and not name.startswith("../") and name not in ("..", ".", LIST_FILE))


def _is_file(folder, name):
    path = os.path.join(folder, *name.split("/"))
    return _safe(name) and os.path.isfile(path) and not os.path.islink(path)


def _remove(folder, name):
    if not _is_file(folder, name):
        return False
    path = os.path.join(folder, *name.split("/"))
    os.remove(path)
    parent = os.path.dirname(path)
    if os.path.abspath(parent) != os.path.abspath(folder) and not os.listdir(parent):
        os.rmdir(parent)  # a sub-folder the toolkit made and has emptied
    return True


def _read_list(folder):
    """The recorded paths, or None when the folder has no list."""
    path = os.path.join(folder, LIST_FILE)
    if absent(path):
        return None
    try:
        lines = [line.strip() for line in read_bytes(path, "record").decode("utf-8").splitlines()]
    except UnicodeDecodeError:
        raise UserError("not a list of file names; remove it, and the files it named, by hand",
                        file=path) from None
    return [line for line in lines if line and not line.startswith("#") and _safe(line)]


def _write_list(folder, names):
    path = os.path.join(folder, LIST_FILE)
    with open(path + ".new", "w", encoding="utf-8") as f:
        f.write(_HEADER + "".join(f"{name}\n" for name in sorted(names)))
    os.replace(path + ".new", path)

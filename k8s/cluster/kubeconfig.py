"""Kubeconfig: read the file a Cluster connects with, and name what is wrong with it.

A missing or unreadable file is named by its path; a context whose cluster or
user entry is missing says which; a failing exec credential plugin shows the
plugin's own error (its exit code and last stderr line), not the anonymous
"forbidden" the API server would answer without credentials.
"""

import base64
import binascii
import os
import re

from ..core.files import read_text
from ..errors import UserError


def current_context(path):
    from kubernetes import config

    try:
        return config.list_kube_config_contexts(path)[1]["name"]
    except Exception:  # the load above already reported a broken file
        return "?"


def load(path, context, configuration):
    """Load `context` of the kubeconfig at `path` into `configuration`; one line on failure.
    A credential plugin (exec) that fails is only logged by the client, which then goes on
    without credentials: its error (exit code, last line of its stderr) is raised here."""
    import logging

    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    logged = []

    class Keep(logging.Handler):
        def emit(self, record):
            if "kubernetes" in record.pathname and "config" in record.pathname:
                logged.append(record.getMessage())

    keep = Keep(logging.ERROR)
    root = logging.getLogger()
    root.addHandler(keep)
    try:
        config.load_kube_config(config_file=path, context=context,
                                client_configuration=configuration, persist_config=False)
    except (ConfigException, OSError, TypeError, ValueError, KeyError, AttributeError) as err:
        text = str(err).strip()
        if "Expected object with name" in text:
            text = f"no context {context!r} (set ADMIN_CTX/USER_CTX or --context)"
        raise UserError(f"kubeconfig {path}: {text.splitlines()[0] if text else repr(err)}") from None
    finally:
        root.removeHandler(keep)
    user, command = _exec_user(path, context)
    has_credentials = (configuration.api_key or {}).get("BearerToken") or configuration.cert_file
    if command and not has_credentials:
        said = next((m for m in reversed(logged) if m.startswith("exec:") or "Errno" in m), None) or \
            (logged[-1] if logged else "no credentials in its output")
        found = re.match(r"exec: process returned (-?\d+)\.?\s*(.*)", said, re.DOTALL)
        if found:
            lines = [line.strip() for line in found.group(2).splitlines() if line.strip()]
            said = f"exit code {found.group(1)}" + (f": {lines[-1]}" if lines else "")
        raise UserError(f"kubeconfig {path}: the credential plugin of user {user!r} ({command}) failed: "
                        f"{' '.join(said.split())}")


def _exec_user(path, context):
    """(user name, exec command) of the context's user, or (None, None)."""
    try:
        data = _read(path) or {}
        name = context or data.get("current-context")
        entry = next(c for c in data.get("contexts") or () if isinstance(c, dict) and c.get("name") == name)
        user = (entry.get("context") or {}).get("user")
        found = next(u for u in data.get("users") or () if isinstance(u, dict) and u.get("name") == user)
        command = ((found.get("user") or {}).get("exec") or {}).get("command")
    except (UserError, ValueError, StopIteration, AttributeError):
        return None, None
    return (user, command) if command else (None, None)


def check(path, context=None):
    """A kubeconfig that is missing, not a readable YAML mapping, or whose context names a
    cluster or user it does not have, or a certificate file that is not there or inline
    data that is not base64: one line saying so, before the client trips over it with a
    message about its own internals."""
    data = _read(path)
    if data is not None and not isinstance(data, dict):
        raise UserError(f"kubeconfig {path}: not a kubeconfig (expected a mapping with clusters, "
                        "contexts and users)")
    data = data or {}
    name = context or data.get("current-context")
    entries = {kind: {e.get("name"): e for e in data.get(kind) or () if isinstance(e, dict)}
               for kind in ("contexts", "clusters", "users") if isinstance(data.get(kind) or [], list)}
    if not name or "contexts" not in entries or name not in entries["contexts"]:
        return  # the client's own message (or the one made of it in Cluster) says what is missing
    chosen = entries["contexts"][name].get("context")
    if not isinstance(chosen, dict):
        return
    for kind, field in (("clusters", "cluster"), ("users", "user")):
        wanted = chosen.get(field)
        if wanted and kind in entries and wanted not in entries[kind]:
            raise UserError(f"kubeconfig {path}: context {name!r} names {field} {wanted!r}, which is not "
                            f"among its {kind}" + (f" ({', '.join(sorted(map(str, entries[kind])))})"
                                                   if entries[kind] else ""))
        if wanted and kind in entries:
            _check_credentials(path, field, wanted, entries[kind][wanted].get(field))


def _read(path):
    """The kubeconfig's YAML, read as every file is (a regular file, at most 8 MiB)."""
    import yaml

    text = read_text(path, "kubeconfig", f"kubeconfig {path}", missing="no such file")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise UserError(f"kubeconfig {path}{where}: invalid YAML: {getattr(err, 'problem', err)}") from None


# The fields naming a file the client reads, and those holding its content inline.
_FILES = ("certificate-authority", "client-certificate", "client-key")


def _check_credentials(path, field, name, entry):
    """The chosen cluster's or user's certificate files exist and their inline data is base64."""
    if not isinstance(entry, dict):
        return
    for key in _FILES:
        value = entry.get(key)
        if isinstance(value, str) and value and not entry.get(f"{key}-data"):
            # relative paths are relative to the kubeconfig, as kubectl reads them
            full = os.path.join(os.path.dirname(os.path.abspath(path)), os.path.expanduser(value))
            if not os.path.isfile(full):
                raise UserError(f"kubeconfig {path}: {key} of {field} {name!r}: {value}: "
                                + ("not a regular file" if os.path.exists(full) else "no such file"))
        data = entry.get(f"{key}-data")
        if data is not None and not _is_base64(data):
            raise UserError(f"kubeconfig {path}: {key}-data of {field} {name!r} is not base64")


def _is_base64(value):
    try:
        base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True

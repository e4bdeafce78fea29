"""Components: one folder under `manifests/` each.

A component's manifests are its `*.yaml` files (envsubst-style variables) and
`*.yaml.j2` files (Jinja2), rendered in name order. An optional
`component.yaml` says how the component fits in the cluster:

    depends: [namespace, flannel]   # components applied before this one
    namespace: kube-system          # default namespace for namespaced objects
    context: admin                  # kubeconfig context: admin or user
    minVersion: "1.25"              # skipped on older Kubernetes
    maxVersion: "1.24"              # skipped on newer Kubernetes
    install: true                   # part of `make install`
    requiresSecret: data-sync-ssh   # `make install` skips it until this Secret exists
    imports: [https://.../install.yaml]  # upstream manifests, vendored by `make vendor` (k8s/vendor.py)

Values may use variables (`namespace: $K8S_NAMESPACE`).
"""

import os
import re
from dataclasses import dataclass, field

from . import kubeyaml, substitute
from .object_names import component_name_error
from ..errors import UserError, raise_all

MANIFEST_SUFFIXES = (".yaml", ".yml", ".yaml.j2")
SETTINGS_FILE = "component.yaml"
CONTEXTS = ("admin", "user")
_DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
_VERSION = re.compile(r"v?[0-9]+\.[0-9]+(?:\.[0-9]+)?")
_KIND_NAMES = {list: "list", str: "string", bool: "boolean (true or false)"}

# setting name -> (type, default); namespace's default is applied in load().
SETTINGS = {
    "depends": (list, []),
    "namespace": (str, None),
    "context": (str, "admin"),
    "minVersion": (str, None),
    "maxVersion": (str, None),
    "install": (bool, True),
    "requiresSecret": (str, None),
    "description": (str, ""),
    "imports": (list, []),
}


@dataclass
class Component:
    """One folder of manifests and its settings."""

    name: str
    path: str
    files: list = field(default_factory=list)
    depends: list = field(default_factory=list)
    namespace: str = "default"
    context: str = "admin"
    min_version: str | None = None
    max_version: str | None = None
    install: bool = True
    requires_secret: str | None = None
    description: str = ""
    imports: list = field(default_factory=list)

    def supports(self, kube_version):
        """True when this component applies to Kubernetes `kube_version` ("1.31")."""
        v = version_tuple(kube_version)
        if self.min_version and v < version_tuple(self.min_version):
            return False
        if self.max_version and v > version_tuple(self.max_version):
            return False
        return True


def version_tuple(version):
    """"1.31" or "v1.31.2" -> (1, 31); a malformed version is a UserError."""
    text = str(version).lstrip("v")
    parts = text.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        raise UserError(f"invalid Kubernetes version {version!r}, expected MAJOR.MINOR like 1.31")


def discover(root, variables):
    """Every component under `root`, sorted by name.

    Parameters:
        root: the manifests folder.
        variables: name -> value, for variables inside component.yaml.
    """
    if not os.path.isdir(root):
        raise UserError(f"manifests folder {root} " + ("is not a folder" if os.path.exists(root) else "does not exist"))
    components, errors = [], []
    for name in _listdir(root):
        path = os.path.join(root, name)
        if name.startswith(".") or not os.path.isdir(path):
            if os.path.islink(path) and not os.path.exists(path):
                errors.append(UserError("dangling symlink", file=path))
            continue
        # Its name labels every object it renders: one that no label value can hold is refused.
        problem = component_name_error(name, path)
        if problem:
            errors.append(problem)
            continue
        try:
            components.append(load(name, path, variables))
        except UserError as err:
            errors.append(err)
    raise_all(errors)
    known = {c.name for c in components}
    for c in components:
        for dep in c.depends:
            if dep not in known:
                errors.append(UserError(f"depends on unknown component {dep!r}",
                                        file=os.path.join(c.path, SETTINGS_FILE)))
    raise_all(errors)
    return components


def load(name, path, variables):
    """Read one component folder (its settings and the list of its manifest files)."""
    # Every manifest-named entry is listed: read_text reports one that is not a readable file.
    files = [f for f in _listdir(path) if f.endswith(MANIFEST_SUFFIXES) and f != SETTINGS_FILE]
    component = Component(name=name, path=path, files=[os.path.join(path, f) for f in files],
                          namespace=variables.get("K8S_NAMESPACE", "default"))
    settings_path = os.path.join(path, SETTINGS_FILE)
    if os.path.lexists(settings_path):
        _apply_settings(component, settings_path, variables)
    return component


def _listdir(path):
    """The entries of folder `path`, sorted; an unreadable folder is a UserError."""
    try:
        return sorted(os.listdir(path))
    except OSError as err:
        raise UserError(f"cannot list folder: {err.strerror}", file=path) from None


def _apply_settings(component, settings_path, variables):
    from .files import read_text

    text = read_text(settings_path, "settings")
    substitute.expand(text, variables, settings_path)  # every undefined name, with its position
    # Scalar by scalar, as manifests with values that are not inert: a value can never add a setting.
    docs = [d for d in kubeyaml.load_all_substituting(
        text, settings_path, lambda scalar: substitute.expand(scalar, variables, settings_path))
        if d.data is not None]
    if not docs:
        return
    settings = docs[0].data
    if len(docs) > 1 or not isinstance(settings, dict):
        raise UserError("expected one mapping of settings", file=settings_path, line=docs[0].line)
    for key, value in settings.items():
        if key not in SETTINGS:
            raise UserError(f"unknown setting {key!r} (known: {', '.join(SETTINGS)})",
                            file=settings_path)
        kind, _ = SETTINGS[key]
        if type(value) is float and key in ("minVersion", "maxVersion"):
            # minVersion: 1.25 unquoted is the number 1.25, fine; but 1.30 is the number 1.3
            if len(repr(value).partition(".")[2]) < 2:
                raise UserError(f"setting {key!r}: quote the version, as \"{value}0\" or \"{value}\" "
                                f"(unquoted it is the number {value})", file=settings_path)
            value = repr(value)
        if not isinstance(value, kind):
            raise UserError(f"setting {key!r} must be a {_KIND_NAMES[kind]}", file=settings_path)
        if kind is list and not all(isinstance(v, str) for v in value):
            raise UserError(f"setting {key!r} must be a list of strings", file=settings_path)
        attr = {"minVersion": "min_version", "maxVersion": "max_version",
                "requiresSecret": "requires_secret"}.get(key, key)
        setattr(component, attr, value)
    if not _DNS_LABEL.fullmatch(component.namespace or ""):
        raise UserError(f"namespace {component.namespace!r} is not a valid namespace name "
                        "(lower-case letters, digits and '-', at most 63)", file=settings_path)
    if component.context not in CONTEXTS:
        raise UserError(f"context must be one of {', '.join(CONTEXTS)}, not {component.context!r}",
                        file=settings_path)
    for bound in (component.min_version, component.max_version):
        if bound and not _VERSION.fullmatch(bound):
            raise UserError(f"invalid Kubernetes version {bound!r}, expected MAJOR.MINOR like 1.31",
                            file=settings_path)
    if (component.min_version and component.max_version
            and version_tuple(component.min_version) > version_tuple(component.max_version)):
        raise UserError(f"minVersion {component.min_version} is above maxVersion {component.max_version}",
                        file=settings_path)

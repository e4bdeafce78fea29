"""Offline validation of rendered objects against the Kubernetes API schemas.

Built-in kinds are checked against the strict JSON schemas shipped with
kubernetes-validate (unknown fields are errors), custom resources against the
openAPIV3Schema of their CustomResourceDefinition when that CRD is among the
objects. Neither kubernetes_validate nor jsonschema is imported (slow): the
schema files are read directly and compiled with jsonschema_rs, once per
process for each (Kubernetes version, apiVersion, kind).

What the schemas cannot say, the API server's own checks that refuse an object
are done here too (`_meta_errors`): names per kind (kinds.NAME_RULES), the
namespace, label keys and values, annotation keys and their total size, the
keys of ConfigMaps and Secrets, base64 values. No message ever shows a value of
a Secret's data or stringData. A custom resource whose CRD is not among the
objects cannot be checked offline: it is a warning here, and `missing_kinds`
makes it an error against a cluster that does not serve it.
"""

import importlib.util
import json
import os
import re
from dataclasses import dataclass, field
from types import SimpleNamespace

import jsonschema_rs

from . import kinds, object_names as names
from .object_names import get_in, is_name, short
from .files import read_bytes
from ..errors import UserError


def _kubernetes_validate_schemas():
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        return []
    return [os.path.join(list(spec.submodule_search_locations)[0], "kubernetes-json-schema")]


# Directories holding one `v1.NN.P-local-strict/` directory per supported
# Kubernetes version; the first directory providing a version wins. Append a
# directory to support more versions. kubernetes-validate has 1.25 and newer;
# k8s/core/schemas adds 1.23 and 1.24 for the kinds the components use (its README).
SCHEMA_DIRS = [*_kubernetes_validate_schemas(), os.path.join(os.path.dirname(__file__), "schemas")]
MAX_ERRORS_PER_OBJECT = 5
# 1.31, v1.31.2, and what servers report: v1.31.0-rc.1, v1.31.2+k3s1
VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+][0-9A-Za-z.+-]*)?")
_DRAFT = "https://json-schema.org/draft/2020-12/schema"

_version_dirs_cache = {}  # tuple(SCHEMA_DIRS) -> {"1.NN": directory}
_registries = {}  # version directory -> (Registry, base URI of _definitions.json, section)
_validators = {}  # (version directory, group, version, kind) -> (validator | None, hint)


@dataclass
class ValidationReport:
    """What `validate` found.

    Attributes:
        errors: one UserError per problem; pass them to `k8s.errors.raise_all`.
        unvalidated: `kind/name` of the custom resources whose CRD is not among
            the objects, so that could not be checked.
        kube_version: the Kubernetes version validated against, e.g. "1.31".
        warnings: one UserError per custom resource of `unvalidated`, naming its
            apiVersion and kind: an error only against a cluster that does not
            serve it (`missing_kinds`).
    """

    errors: list = field(default_factory=list)
    unvalidated: list = field(default_factory=list)
    kube_version: str = ""
    warnings: list = field(default_factory=list)


def supported_versions():
    """The Kubernetes versions there are schemas for, oldest first ("1.25", ...)."""
    return sorted(_version_dirs(), key=lambda v: tuple(map(int, v.split("."))))


def validate(objects, kube_version=None, crds=None):
    """Validate rendered objects for a Kubernetes version.

    Parameters:
        objects: list of `(obj, where)` pairs; `obj` is the parsed document,
            `where` has `file` (str), `line` (int, where the document starts)
            and `locate` (None, or a callable taking a JSON path as a list of
            keys and indexes and returning its line or None).
        kube_version: target version like "1.31" ("v1.31.2" works too);
            default is the newest of `supported_versions()`.
        crds: the CustomResourceDefinitions of the whole set when `objects` is
            only part of it; default: those among `objects`.

    Returns a ValidationReport. Raises UserError if `kube_version` is not
    supported.
    """
    version = _resolve_version(kube_version)
    vdir = _version_dirs()[version]
    report = ValidationReport(kube_version=version)
    by_kind = {}
    for obj in (o for o, _ in objects) if crds is None else crds:
        if get_in(obj, "apiVersion") == "apiextensions.k8s.io/v1" and get_in(obj, "kind") == "CustomResourceDefinition":
            group, kind = get_in(obj, "spec", "group"), get_in(obj, "spec", "names", "kind")
            if is_name(group) and is_name(kind):  # else the CRD's own validation says what is wrong
                by_kind[group, kind] = obj
    run = SimpleNamespace(version=version, vdir=vdir, crds=by_kind, cr_validators={}, report=report)
    for obj, where in objects:
        report.errors += _check(obj, where, run)
    return report


def _check(obj, where, run):
    """The errors of one object; custom resources without CRD go to run.report.unvalidated."""
    if not isinstance(obj, dict):
        return [_error(where, [], None, f"expected a Kubernetes object (a mapping), got {_type(obj)}")]
    api_version, kind, name = obj.get("apiVersion"), obj.get("kind"), get_in(obj, "metadata", "name")
    label = (f"{kind}/{_cut(name)}" if is_name(name) else kind) if is_name(kind) else None
    missing = [f"missing {key}" if value in (None, "") else f"{key} must be a string, got {_type(value)}"
               for key, value in (("apiVersion", api_version), ("kind", kind), ("metadata.name", name))
               if not is_name(value)]
    at = ["metadata"] if len(missing) == 1 and not is_name(name) else []
    errors = [_error(where, at, label, "; ".join(missing))] if missing else []
    if not (is_name(api_version) and is_name(kind)):
        return errors
    group, _, gv_version = api_version.rpartition("/")
    errors += [_error(where, list(path), label, message)
               for path, message in names.meta_problems(obj, group, kind)]
    removed_in, replacements = kinds.REMOVED_APIS.get((api_version, kind), (None, ()))
    if removed_in and int(run.version.split(".")[1]) >= removed_in:
        use = next((r for r in replacements if _schema_file(run.vdir, kinds.api_group(r), r.rpartition("/")[2], kind)),
                   replacements[0])
        return errors + [_error(where, ["apiVersion"], label,
                                f"{api_version} {kind} was removed in Kubernetes 1.{removed_in}; use {use}")]
    if (group, kind) in run.crds:
        validator, problem = _crd_validator(run.crds[group, kind], gv_version, run.vdir, run.cr_validators)
        if problem:
            return errors + [_error(where, ["apiVersion"], label, problem)]
    else:
        validator, hint = _builtin_validator(run.vdir, group, gv_version, kind)
        if validator is None and "." in group and group not in kinds.BUILTIN_GROUPS:
            run.report.unvalidated.append(label)
            run.report.warnings.append(_error(where, ["apiVersion"], label, _no_crd(api_version, kind)))
            return errors
        if validator is None:
            return errors + [_error(where, ["kind"], label, f"unknown kind {kind} in apiVersion {api_version} "
                                                            f"for Kubernetes {run.version}{hint}")]
    try:
        if validator.is_valid(obj):
            return errors
        secret = (group, kind) == ("", "Secret")  # its values are never shown
        found = sorted({(_line(where, path), message) for error in validator.iter_errors(obj)
                        for path, message in _describe(error, secret)})
    except ValueError as e:  # jsonschema_rs: "Recursion limit reached" on absurd nesting
        why = " (the object is nested too deeply)" if "ecursion" in str(e) else ""
        return errors + [_error(where, [], label, f"cannot validate: {e}{why}")]
    errors += [UserError(message, file=where.file, line=line, obj=label)
               for line, message in found[:MAX_ERRORS_PER_OBJECT]]
    if len(found) > MAX_ERRORS_PER_OBJECT:
        errors.append(_error(where, [], label, f"{len(found) - MAX_ERRORS_PER_OBJECT} more errors not shown"))
    return errors


def _resolve_version(kube_version):
    supported = supported_versions()
    if not supported:
        raise UserError(f"no Kubernetes schemas found in {SCHEMA_DIRS} (is kubernetes-validate installed?)")
    if kube_version is None:
        return supported[-1]
    match = VERSION.fullmatch(str(kube_version).strip())
    if not match:
        raise UserError(f"invalid Kubernetes version {kube_version!r}, expected MAJOR.MINOR like 1.31")
    version = f"{int(match[1])}.{int(match[2])}"
    if version not in supported:
        raise UserError(f"Kubernetes version {kube_version} is not supported; "
                        f"supported versions are {supported[0]} to {supported[-1]}")
    return version


def _version_dirs():
    key = tuple(SCHEMA_DIRS)
    if key not in _version_dirs_cache:
        found = {}
        for root in SCHEMA_DIRS:
            for name in sorted(os.listdir(root)) if os.path.isdir(root) else ():
                match = re.fullmatch(r"v(\d+)\.(\d+)\.\d+-local-strict", name)
                if match:
                    found.setdefault(f"{int(match[1])}.{int(match[2])}", os.path.join(root, name))
        _version_dirs_cache[key] = found
    return _version_dirs_cache[key]


def _registry(vdir):
    """The compiled _definitions.json of a version: (registry, its URI, "$defs" or "definitions")."""
    if vdir not in _registries:
        defs = json.loads(read_bytes(os.path.join(vdir, "_definitions.json"), "schema"))
        uri = defs.get("$id") or "file://" + os.path.join(vdir, "_definitions.json")
        section = "$defs" if "$defs" in defs else "definitions"
        _registries[vdir] = (jsonschema_rs.Registry([(uri, defs)]), uri, section)
    return _registries[vdir]


def _schema_file(vdir, group, version, kind):
    """The schema file of a built-in kind, named like kubernetes-validate does, or None."""
    group_label = group.split(".")[0] + "-" if group else ""
    path = os.path.join(vdir, f"{kind.lower()}-{group_label}{version}.json")
    return path if os.path.exists(path) else None


def _builtin_validator(vdir, group, version, kind):
    """(validator, "") for a built-in kind, or (None, hint) if the version has no such kind."""
    key = (vdir, group, version, kind)
    if key not in _validators:
        _validators[key] = None, ""
        path = _schema_file(vdir, group, version, kind)
        if path:
            schema = json.loads(read_bytes(path, "schema"))
            gvks = schema.get("x-kubernetes-group-version-kind") or [{"group": group, "version": version, "kind": kind}]
            if {"group": group, "version": version, "kind": kind} in gvks:
                schema.setdefault("$id", "file://" + path)
                _validators[key] = jsonschema_rs.validator_for(schema, registry=_registry(vdir)[0]), ""
            else:
                same = [g["kind"] for g in gvks if (g["group"], g["version"]) == (group, version)]
                _validators[key] = None, f" (did you mean {same[0]}?)" if same else ""
    return _validators[key]


def _crd_validator(crd, version, vdir, cache):
    """(validator, None) for a custom resource of `crd` in `version`, or (None, problem)."""
    key = (id(crd), version)
    if key not in cache:
        crd_name = get_in(crd, "metadata", "name")
        versions = get_in(crd, "spec", "versions")
        served = {v["name"]: v for v in versions if is_name(get_in(v, "name")) and v.get("served") is not False} \
            if isinstance(versions, list) else {}
        if version not in served:
            cache[key] = None, (f"CustomResourceDefinition {crd_name} does not serve version {version} "
                                f"(served: {', '.join(map(str, served)) or 'none'})")
            return cache[key]
        structural = get_in(served[version], "schema", "openAPIV3Schema") or {
            "type": "object", "x-kubernetes-preserve-unknown-fields": True}
        try:
            schema = crd_to_json_schema(structural, *_registry(vdir)[1:])
            cache[key] = jsonschema_rs.validator_for(schema, registry=_registry(vdir)[0]), None
        except Exception as e:  # a broken regex, a mistyped keyword ... in the CRD
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            cache[key] = None, (f"cannot validate: CustomResourceDefinition {crd_name} has an invalid "
                                f"schema: {first_line}")
    return cache[key]


_KEPT = ("type", "enum", "pattern", "minimum", "maximum", "minLength", "maxLength", "minItems",
         "maxItems", "uniqueItems", "multipleOf", "minProperties", "maxProperties", "required")


def crd_to_json_schema(structural, defs_uri=None, defs_section="$defs"):
    """A JSON schema (draft 2020-12) for the resources of a CRD's openAPIV3Schema.

    Unknown fields are errors unless the schema preserves them; apiVersion,
    kind and metadata are always allowed at the root, metadata being checked
    against ObjectMeta when `defs_uri` (the URI of _definitions.json) is given.
    """
    schema = _convert(structural, strict=True)
    props = schema.setdefault("properties", {})
    meta = {"$ref": f"{defs_uri}#/{defs_section}/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"} \
        if defs_uri else {"type": "object"}
    declared = (structural.get("properties") or {}).get("metadata")  # may constrain name
    props["metadata"] = {"allOf": [meta, _convert(declared, strict=False)]} if declared else meta
    props["apiVersion"] = props["kind"] = {"type": "string"}
    return {"$schema": _DRAFT, **schema}


def _convert(s, strict):
    """Structural schema (OpenAPI v3 + x-kubernetes-*) to JSON schema, recursively."""
    if not isinstance(s, dict):
        return {}
    out = {k: s[k] for k in _KEPT if k in s}
    for bound in ("minimum", "maximum"):  # OpenAPI 3.0 exclusive bounds are booleans
        exclusive = "exclusive" + bound.capitalize()
        if s.get(exclusive) is True and bound in out:
            out[exclusive] = out.pop(bound)
    if isinstance(s.get("properties"), dict):
        out["properties"] = {k: _convert(v, strict) for k, v in s["properties"].items()}
    if isinstance(s.get("items"), dict):
        out["items"] = _convert(s["items"], strict)
    extra = s.get("additionalProperties")
    if isinstance(extra, (dict, bool)):
        out["additionalProperties"] = _convert(extra, strict) if isinstance(extra, dict) else extra
    elif strict and "properties" in out and not s.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    for junctor in ("allOf", "anyOf", "oneOf"):
        if isinstance(s.get(junctor), list):
            out[junctor] = [_convert(branch, strict=False) for branch in s[junctor]]
    if isinstance(s.get("not"), dict):
        out["not"] = _convert(s["not"], strict=False)
    if s.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if s.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        props.update(apiVersion={"type": "string"}, kind={"type": "string"}, metadata={"type": "object"})
        out["required"] = sorted(set(out.get("required", [])) | {"apiVersion", "kind"})
    if s.get("nullable") or s.get("default") is not None:  # a null is defaulted when there is a default
        if "type" in out:
            out["type"] = [*([out["type"]] if isinstance(out["type"], str) else out["type"]), "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _describe(error, secret=False):
    """[(JSON path, one-line message like kubectl's)] for a jsonschema_rs error.

    secret: the object is a Secret; then nothing under its data or stringData is shown,
    only the key and the value's type."""
    kind, path, value = type(error.kind).__name__, list(error.instance_path), error.instance
    at = _path(path)
    prefix = f"{at}: " if at else ""
    details = error.kind.as_dict()
    if secret and path[:1] in (["data"], ["stringData"]) and kind != "AdditionalProperties":
        if kind == "Type":
            expected = " or ".join(t for t in details["types"] if t != "null")
            return [(path, f"{prefix}invalid type: got {_type(value)}, expected {expected} (value not shown)")]
        return [(path, f"{prefix}invalid value (not shown: a Secret's values never are)")]
    if kind == "AdditionalProperties":
        return [(path + [name], f"{prefix}unknown field {json.dumps(name)}") for name in details["unexpected"]]
    if kind == "Required":
        return [(path, f"{prefix}missing required field {json.dumps(details['property'])}")]
    if kind == "Type":
        expected = " or ".join(t for t in details["types"] if t != "null")
        return [(path, f"{prefix}invalid type: got {_type(value, show=True)}, expected {expected}")]
    if kind == "Enum":
        return [(path, f"{prefix}{short(value)} is not one of {short(details['options'])}")]
    if kind == "OneOfMultipleValid" and value is None:  # IntOrString: null matches both branches
        return []
    if kind in ("OneOfNotValid", "AnyOf"):
        branches = details["context"]
        if branches and all(len(b) == 1 and type(b[0].kind).__name__ == "Type" for b in branches):
            expected = [t for b in branches for t in b[0].kind.as_dict()["types"] if t != "null"]
            return [(path, f"{prefix}invalid type: got {_type(value, show=True)}, expected {' or '.join(expected)}")]
    return [(path, prefix + error.message.replace("\n", "\\n"))]


def _path(path):
    """spec.containers[0].image, quoting keys that are not plain names."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_$-]+", part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


def _type(value, show=False):
    name = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)
    return f"{name} {short(value)}" if show and name in ("string", "boolean", "integer", "number") else name


def _line(where, path):
    """The line of `path`, else of its nearest located parent, else where the document starts."""
    locate = getattr(where, "locate", None)
    if locate is not None:
        for end in range(len(path), -1, -1):
            line = locate(path[:end])
            if line:
                return line
    return where.line


def _error(where, path, label, message):
    return UserError(message, file=where.file, line=_line(where, path), obj=label)


def _no_crd(api_version, kind):
    return (f"no CustomResourceDefinition for {api_version} {kind} in the rendered set; "
            "if the cluster has it, run against the cluster")


def missing_kinds(objects, discovery_index):
    """Errors for the objects a cluster would refuse for their kind: one per apiVersion and kind
    that neither the cluster serves nor a CustomResourceDefinition among `objects` defines.

    Call it against the cluster's discovery before anything is written: offline, a custom
    resource without its CRD in the set is only a warning (`ValidationReport.warnings`).

    Parameters:
        objects: RenderedObjects, or `(obj, where)` pairs as `validate` takes.
        discovery_index: what the cluster serves: an object with `get(group, version, kind)`
            returning None for what it does not serve (k8s.cluster.discovery.Index), or a
            collection of (group, version, kind) tuples.

    Returns a list of UserErrors (the first object of each kind named), empty when all is served.
    """
    pairs = [(o.data, o.source) if hasattr(o, "source") else o for o in objects]
    defined = set()
    for obj, _ in pairs:
        if get_in(obj, "apiVersion") == "apiextensions.k8s.io/v1" and get_in(obj, "kind") == "CustomResourceDefinition":
            defined.add((get_in(obj, "spec", "group"), get_in(obj, "spec", "names", "kind")))
    if hasattr(discovery_index, "get") and not isinstance(discovery_index, (set, frozenset, dict)):
        served = lambda g, v, k: discovery_index.get(g, v, k) is not None  # noqa: E731
    else:
        served = lambda g, v, k: (g, v, k) in discovery_index  # noqa: E731
    errors, seen = [], set()
    for obj, where in pairs:
        api_version, kind = get_in(obj, "apiVersion"), get_in(obj, "kind")
        if not (is_name(api_version) and is_name(kind)) or (api_version, kind) in seen:
            continue
        group, _, version = api_version.rpartition("/")
        if (group, kind) in defined or served(group, version, kind):
            continue
        seen.add((api_version, kind))
        name = get_in(obj, "metadata", "name")
        label = f"{kind}/{_cut(name)}" if is_name(name) else kind
        custom = "." in group and group not in kinds.BUILTIN_GROUPS
        why = (f"the cluster does not serve {api_version} {kind} and no CustomResourceDefinition in the "
               "rendered set defines it: install its CRD first" if custom else
               f"the cluster does not serve {api_version} {kind} (an API its version or its "
               "configuration does not enable)")
        errors.append(_error(where, ["apiVersion"], label, why))
    return errors


def _cut(name):
    """A name for messages: a very long one shortened (the message says how long it is)."""
    return name if not isinstance(name, str) or len(name) <= 80 else name[:60] + "…"

"""Names, labels and keys as the API server validates them, beyond what the schema says.

The rules are apimachinery's pkg/util/validation (IsDNS1123Label,
IsDNS1123Subdomain, IsDNS1035Label, IsQualifiedName, IsValidLabelValue,
IsConfigMapKey), pkg/api/validation/path (IsValidPathSegmentName) and
objectmeta.go (TotalAnnotationSizeLimitB); which kind takes which name rule is
kinds.NAME_RULES. `meta_problems` gives (path, message) pairs that validate.py
turns into located errors; the `*_problem` functions serve other checks too.
"""

import functools
import json
import re

from . import kinds
from ..errors import UserError


def short(value):
    """'text', 3, true, null, [...]: strings quoted like the brief's examples, the rest as in JSON."""
    if isinstance(value, list):
        return "[" + ", ".join(map(short, value)) + "]"
    text = repr(value) if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def get_in(obj, *keys):
    """obj[k1][k2]..., or None where something along the way is not a mapping."""
    for key in keys:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def is_name(value):
    return isinstance(value, str) and value != ""


# apimachinery's pkg/util/validation: IsDNS1123Label, IsDNS1123Subdomain, IsDNS1035Label,
# IsQualifiedName, IsValidLabelValue, IsConfigMapKey; pkg/api/validation/path:
# IsValidPathSegmentName; pkg/api/validation/objectmeta.go: TotalAnnotationSizeLimitB.
_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL = re.compile(_LABEL)
DNS1123_SUBDOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
DNS1035_LABEL = re.compile(r"[a-z](?:[-a-z0-9]*[a-z0-9])?")
_QUALIFIED = re.compile(r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
ANNOTATIONS_LIMIT = 256 * 1024
_SUBDOMAIN_TEXT = ("a DNS-1123 subdomain: lower case letters, digits, '-' and '.', starting and ending "
                   "with a letter or digit, at most 253 characters")
# rule -> (test, what the name must be)
_NAME_RULES = {
    "dns-1123-subdomain": (lambda n: len(n) <= 253 and DNS1123_SUBDOMAIN.fullmatch(n), _SUBDOMAIN_TEXT),
    "dns-1123-label": (lambda n: len(n) <= 63 and DNS1123_LABEL.fullmatch(n),
                       "a DNS-1123 label: lower case letters, digits and '-', starting and ending with a "
                       "letter or digit, at most 63 characters"),
    "dns-1035-label": (lambda n: len(n) <= 63 and DNS1035_LABEL.fullmatch(n),
                       "a DNS-1035 label: lower case letters, digits and '-', starting with a letter and "
                       "ending with a letter or digit, at most 63 characters"),
    "path-segment": (lambda n: n not in (".", "..") and "/" not in n and "%" not in n,
                     "usable in a URL path: anything but '/', '%', '.' and '..'"),
    "cronjob": (lambda n: len(n) <= 52 and DNS1123_SUBDOMAIN.fullmatch(n),
                _SUBDOMAIN_TEXT.replace("253", "52") + " (its Jobs get an 11-character suffix)"),
}


def name_problem(name, group, kind):
    """Why `name` is refused as the metadata.name of a `kind` of `group`, or None."""
    test, text = _NAME_RULES[kinds.NAME_RULES.get((group, kind), "dns-1123-subdomain")]
    return None if test(name) else f"must be {text}"


@functools.lru_cache(maxsize=1 << 14)  # the same keys on every object of a render
def label_key_problem(key):
    """Why `key` is refused as a label or annotation key (IsQualifiedName), or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return "the prefix before '/' is empty"
    if slash and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.fullmatch(prefix)):
        return f"the prefix before '/' must be {_SUBDOMAIN_TEXT}"
    if not name or len(name) > 63 or not _QUALIFIED.fullmatch(name):
        return ("the name (after any 'prefix/') must be letters, digits, '-', '_' and '.', starting and "
                "ending with a letter or digit, at most 63 characters")
    return None


@functools.lru_cache(maxsize=1 << 14)
def label_value_problem(value):
    """Why `value` is refused as a label value (IsValidLabelValue), or None."""
    if value == "" or (len(value) <= 63 and _QUALIFIED.fullmatch(value)):
        return None
    return ("must be empty or letters, digits, '-', '_' and '.', starting and ending with a letter or "
            "digit, at most 63 characters")


def config_key_problem(key):
    """Why `key` is refused as a key of a ConfigMap or a Secret (IsConfigMapKey), or None."""
    if len(key) > 253 or not CONFIG_KEY.fullmatch(key):
        return "must consist of letters, digits, '-', '_' or '.' (at most 253 characters)"
    if key in (".", "..") or key.startswith(".."):
        return "must not be '.' or '..' or start with '..'"
    return None


def component_name_error(name, path):
    """The UserError for a component folder whose name cannot be a component's name, or None.

    The name becomes the value of the label `k8s-toolkit/component` on every object of the
    component and part of its ApplySet's ConfigMap name (`applyset-NAME`): a label value that
    is also a DNS-1123 subdomain. Call it for every folder under manifests/ (components.discover).
    """
    if len(name) <= 63 and DNS1123_SUBDOMAIN.fullmatch(name):
        return None
    return UserError(f"component folder name {short(name)} is not usable: it becomes the label value "
                     "k8s-toolkit/component and the ApplySet name applyset-NAME, so it must be lower case "
                     "letters, digits, '-' and '.', starting and ending with a letter or digit, at most "
                     "63 characters; rename the folder", file=path)


_SELECTORS = {"": (("spec", "selector", "matchLabels"),), "apps": (("spec", "selector", "matchLabels"),),
              "batch": (("spec", "selector", "matchLabels"),)}
_SERVICE_SELECTORS = (("spec", "selector", "matchLabels"), ("spec", "selector"))


@functools.lru_cache(maxsize=1024)
def _checks(group, kind):
    """What `meta_problems` checks of a kind: (test and text of its name rule, the paths of its
    pod template metadata, of its label selectors, its keyed data fields)."""
    return (_NAME_RULES[kinds.NAME_RULES.get((group, kind), "dns-1123-subdomain")],
            kinds.TEMPLATE_METADATA.get((group, kind), ()),
            _SERVICE_SELECTORS if (group, kind) == ("", "Service") else _SELECTORS.get(group, ()),
            tuple((kinds.KEYED_DATA.get((group, kind)) or {}).items()))


def meta_problems(obj, group, kind):
    """[(JSON path, message)] of what the API server's ValidateObjectMeta and its ConfigMap and
    Secret checks refuse in `obj`, a `kind` of API `group`. A value of a Secret is never shown.
    (It runs for every object of a render: plain lookups, no helper per field.)"""
    errors = []
    error = errors.append
    (name_test, name_text), templates, selectors, keyed = _checks(group, kind)
    meta = obj.get("metadata")
    name = namespace = None
    if type(meta) is dict:
        name, namespace = meta.get("name"), meta.get("namespace")
        if type(name) is str and name and not name_test(name):
            long = f" ({len(name)} characters)" if len(name) > 63 else ""
            error((["metadata", "name"], f"metadata.name {short(name)}{long} is not a valid {kind} name: "
                                         f"must be {name_text}"))
        if type(namespace) is str and namespace and not (len(namespace) <= 63 and DNS1123_LABEL.fullmatch(namespace)):
            error((["metadata", "namespace"], f"metadata.namespace {short(namespace)} is not a valid namespace "
                                              f"name: {_NAME_RULES['dns-1123-label'][1]}"))
    if kind == "CustomResourceDefinition" and group == "apiextensions.k8s.io" and is_name(name):
        plural, crd_group = get_in(obj, "spec", "names", "plural"), get_in(obj, "spec", "group")
        if is_name(plural) and is_name(crd_group) and name != f"{plural}.{crd_group}":
            error((["metadata", "name"], f"metadata.name must be spec.names.plural + '.' + spec.group: "
                                         f"{short(f'{plural}.{crd_group}')}"))
    if type(meta) is dict and ("labels" in meta or "annotations" in meta):
        _labels_errors(meta, ("metadata",), errors)
    for path in templates:
        template = get_in(obj, *path)
        if isinstance(template, dict):
            _labels_errors(template, path, errors)
    for path in selectors:
        selector = get_in(obj, *path)
        if isinstance(selector, dict):
            _label_map_errors(selector, path, errors)
    for field_name, base64_values in keyed:
        values = obj.get(field_name)
        if isinstance(values, dict):
            _keyed_errors(values, field_name, base64_values, kind, errors)
    return [(list(path), message) for path, message in errors] if errors else errors


def _adder(errors):
    """error(path, message): one more (path, message) in `errors`."""
    return lambda path, message: errors.append((path, message))


def _labels_errors(meta, at, errors):
    """Label keys and values, annotation keys and their total size, of the metadata at `at`."""
    labels, annotations = meta.get("labels"), meta.get("annotations")
    if isinstance(labels, dict):
        _label_map_errors(labels, (*at, "labels"), errors)
    if isinstance(annotations, dict):
        error = _adder(errors)
        dotted = ".".join(at)
        size = 0
        for key, value in annotations.items():
            size += len(str(key).encode()) + (len(value.encode()) if isinstance(value, str) else 0)
            problem = label_key_problem(str(key).lower())
            if problem:
                error([*at, "annotations", key], f"{dotted}.annotations: key {short(key)} is invalid: {problem}")
        if size > ANNOTATIONS_LIMIT:
            error([*at, "annotations"], f"{dotted}.annotations: {size} bytes in all, over the API server's "
                                        f"limit of {ANNOTATIONS_LIMIT} bytes (256 KiB)")


def _label_map_errors(labels, at, errors):
    for key, value in labels.items():
        key_problem = label_key_problem(key if type(key) is str else str(key))
        value_problem = label_value_problem(value) if type(value) is str else None
        if key_problem or value_problem:
            dotted = ".".join(at)
            if key_problem:
                errors.append(([*at, key], f"{dotted}: key {short(key)} is invalid: {key_problem}"))
            if value_problem:
                errors.append(([*at, key], f"{dotted}[{json.dumps(key)}]: value {short(value)} is invalid: "
                                           f"{value_problem}"))


def _keyed_errors(values, field_name, base64_values, kind, errors):
    """Keys of a ConfigMap's or a Secret's map; base64 values decode. A value is never shown."""
    import base64
    import binascii

    error = _adder(errors)
    for key, value in values.items():
        problem = config_key_problem(str(key))
        if problem:
            error([field_name, key], f"{field_name}: key {short(key)} {problem}")
        if base64_values and isinstance(value, str):
            try:
                base64.b64decode(value.replace("\n", "").replace("\r", ""), validate=True)
            except (binascii.Error, ValueError):
                plain = "stringData" if kind == "Secret" else "data"
                error([field_name, key], f"{field_name}.{key}: the value is not base64 "
                                         f"(put plain text under {plain})")

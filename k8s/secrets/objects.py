"""Secret objects: a decrypted file decoded into checked objects, and what a Secret holds.

Contract: `decode(text, path, variables, scrub, ...)` turns the plaintext of
one secret file into substituted, checked and schema-validated objects (kind
Secret, or the kinds allowed); every value it sees goes into the Scrubber
`scrub`, and every error it raises has been through it and names keys, never
values. `as_data`, `decoded_values` and `digest` read a Secret's values the way
the API server stores them; a digest is compared, never shown.

Only the standard library is imported at module level (render.py --help stays
fast); each function imports what it needs.
"""

import base64
import hashlib
import json
import re

from .masking import SECRET_FIELDS

COMPONENT = "secrets"  # the component label of applied Secrets (prune never sees it)
KEY_NAME = re.compile(r"^[-._a-zA-Z0-9]+$")
LOCAL_ONLY = "k8s-toolkit/local-only"  # "true": never goes to the cluster (the etcd encryption key)


def decode(text, path, variables, scrub, allow_kinds=(), namespace=None, version=None):
    """Objects of the plaintext `text` of `path`: substituted, checked, validated.

    Parameters:
        text: the decrypted YAML (str).
        variables: name -> value for `$NAME` references.
        scrub: a Scrubber; every value seen is added to it and every error goes through it.
        allow_kinds: kinds accepted besides Secret.
        namespace: namespace of namespaced objects that name none.
        version: Kubernetes version to validate for (None: the newest supported).
    """
    from ..core import kinds, kubeyaml, render, substitute, validate
    from ..errors import UserError, raise_all

    try:
        raw = kubeyaml.load_all(text, path)
    except UserError as err:
        raise _malformed(err, scrub) from None
    for doc in raw:
        _collect(doc.data, scrub)
    spans = _value_spans(text)
    try:
        expanded, inert = substitute.expand_inert(text, variables, path)
    except UserError as err:
        raise scrub.error(_hide_names_in_values(err, text, spans)) from None
    try:
        if inert:
            docs, source_text = kubeyaml.load_all(expanded, path), expanded
        else:
            docs = kubeyaml.load_all_substituting(
                text, path, lambda scalar: substitute.expand(scalar, variables, path))
            source_text = text
    except UserError as err:
        raise _malformed(err, scrub) from None
    try:  # YAML, but not objects (metadata not a mapping, …): what is wrong, never a value
        objects = render._objects(docs, source_text, path, COMPONENT)
    except UserError as err:
        raise scrub.error(err) from None
    errors = []
    for obj in objects:
        _collect(obj.data, scrub)
        obj.default_namespace = namespace
        if not obj.namespace and namespace and kinds.is_namespaced(obj.api_version, obj.kind, []):
            obj.data["metadata"]["namespace"] = namespace
        errors += _check(obj, allow_kinds)
    if not errors:
        report = validate.validate([(_blank_values(o.data), o.source) for o in objects], version)
        errors += report.errors
    raise_all([scrub.error(e) for e in errors])
    return objects


def _collect(value, scrub):
    """Add the values under data/stringData anywhere in `value` to `scrub`."""
    from .sops import leaves

    if isinstance(value, dict):
        for key, item in value.items():
            if key in SECRET_FIELDS:
                for secret in (item.values() if isinstance(item, dict) else [item]):
                    for leaf in leaves(secret):
                        if leaf is not None:
                            scrub.add(leaf if isinstance(leaf, str) else json.dumps(leaf))
            else:
                _collect(item, scrub)
    elif isinstance(value, list):
        for item in value:
            _collect(item, scrub)


def _malformed(err, scrub):
    from ..errors import UserError, UserErrors

    errors = err.errors if isinstance(err, UserErrors) else [err]
    first = errors[0]
    message = re.sub(r"`[^`]*`", "`…`", first.message)  # kubeyaml quotes scalars in backticks
    return scrub.error(UserError(f"malformed YAML inside the encrypted file: {message}",
                                 file=first.file, line=first.line, col=first.col, obj=first.obj))


def _value_spans(text):
    """(start, end) offsets of every value under a data/stringData mapping of `text`."""
    import yaml

    spans = []

    def walk(node):
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value in SECRET_FIELDS:
                    spans.append((value.start_mark.index, value.end_mark.index))
                else:
                    walk(value)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item)

    try:
        for node in yaml.compose_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            walk(node)
    except yaml.YAMLError:
        return [(0, len(text))]  # cannot tell: treat everything as secret
    return spans


def _hide_names_in_values(err, text, spans):
    """An undefined `$NAME` inside a secret value may be part of the value: do not print it."""
    from ..errors import UserError, UserErrors

    errors = err.errors if isinstance(err, UserErrors) else [err]
    starts = [0] + [m.end() for m in re.finditer("\n", text)]
    out = []
    for e in errors:
        offset = None
        if e.line and e.col and e.line <= len(starts):
            offset = starts[e.line - 1] + e.col - 1
        inside = offset is None or any(start <= offset < end for start, end in spans)
        if inside and "undefined variable" in e.message:
            e = UserError("undefined variable in a secret value (name not shown: it may be part of "
                          "the value; write $$ for a literal $)", file=e.file, line=e.line, col=e.col)
        elif inside:
            e = UserError("bad variable reference in a secret value (write $$ for a literal $)",
                          file=e.file, line=e.line, col=e.col)
        out.append(e)
    return out[0] if len(out) == 1 else UserErrors(out)


def _check(obj, allow_kinds):
    """Secret-specific checks that name keys, never values."""
    from ..core.object_names import config_key_problem
    from ..errors import UserError

    def error(message, path=()):
        line = obj.source.locate(list(path)) or obj.source.line
        return UserError(message, file=obj.source.file, line=line, obj=obj.ref)

    if not (obj.kind == "Secret" and obj.api_version == "v1") and obj.kind not in allow_kinds:
        return [error(f"{obj.api_version} {obj.kind} is not a Secret (use --allow-kind {obj.kind} "
                      "to apply it from secrets/)", ["kind"])]
    errors = []
    if obj.kind != "Secret":
        return errors  # an allowed kind: its schema says what its fields hold
    for field in SECRET_FIELDS:
        values = obj.data.get(field)
        if values is None:
            continue
        if not isinstance(values, dict):
            errors.append(error(f"{field} must be a mapping of key: value", [field]))
            continue
        for key, value in values.items():
            if problem := config_key_problem(str(key)):  # as the API server's IsConfigMapKey
                errors.append(error(f"{field}: key {str(key)!r} {problem}", [field, key]))
            if not isinstance(value, str):
                kind = {type(None): "nothing", bool: "a boolean", int: "a number", float: "a number",
                        dict: "a mapping", list: "a list"}.get(type(value), type(value).__name__)
                errors.append(error(f"{field}.{key}: the value must be a string, got {kind} "
                                    "(quote it)", [field, key]))
            elif field == "data":
                try:  # the API server's decoder skips line breaks
                    base64.b64decode(value.replace("\n", "").replace("\r", ""), validate=True)
                except ValueError:
                    errors.append(error(f"data.{key}: the value is not base64 (put plain text "
                                        "under stringData)", [field, key]))
    return errors


def _blank_values(data):
    """`data` with the values of data/stringData replaced by "", for the schema check."""
    out = dict(data)
    for field in SECRET_FIELDS:
        if isinstance(out.get(field), dict):
            out[field] = {key: "" if isinstance(value, str) else value
                          for key, value in out[field].items()}
    return out


def as_data(obj):
    """The object as applied: stringData merged into data (base64), as the API server does.

    Server-side apply owns `data.KEY` fields then, so a key removed from the file is
    removed from the cluster (with stringData it stays: kubernetes#108008).
    """
    if obj.get("kind") != "Secret" or "stringData" not in obj:
        return obj
    out = {k: v for k, v in obj.items() if k != "stringData"}
    data = dict(out.get("data") or {})
    for key, value in (obj.get("stringData") or {}).items():
        data[key] = base64.b64encode(value.encode("utf-8")).decode("ascii")
    out["data"] = data
    return out


def decoded_values(obj):
    """key -> bytes of a Secret (data decoded, stringData winning as on the server)."""
    values = {}
    for key, value in (obj.get("data") or {}).items():
        try:
            values[key] = base64.b64decode(value or "", validate=True)
        except ValueError:
            values[key] = (value or "").encode("utf-8")
    for key, value in (obj.get("stringData") or {}).items():
        values[key] = (value or "").encode("utf-8")
    return values


def digest(obj):
    """One hash over the decoded keys and values of a Secret (compared, never shown)."""
    h = hashlib.sha256()
    for key, value in sorted(decoded_values(obj).items()):
        h.update(hashlib.sha256(key.encode("utf-8")).digest())
        h.update(hashlib.sha256(value).digest())
    return h.hexdigest()


"""Secrets: Kubernetes Secrets kept in git, encrypted with sops, applied server-side.

This module holds what every secrets command shares: finding the files,
decrypting and checking them in memory, masking values; the commands are in
`k8s.secrets_cli`:

    render.py secrets gen-gpg            make (or reuse) the GPG key, no prompts
    render.py secrets gen-age            make (or reuse) an age key instead
    render.py secrets sops-config        write secrets/.sops.yaml for those keys
    render.py secrets create NAME        secrets/NAME.yml, encrypted from the start
    render.py secrets edit NAME          sops edit, plaintext only on tmpfs
    render.py secrets apply [NAME…]      decrypt in memory, substitute, validate, apply
    render.py secrets list               keys, recipients, in sync with the cluster?
    render.py secrets rotate [NAME…]     re-encrypt for the recipients of .sops.yaml
    render.py secrets check              every file under secrets/ is sops-encrypted

Plaintext never touches the disk: sops reads it from a pipe and writes it to
one (see `k8s.sops`). Values never appear in output, logs or errors: every
message of a run that saw plaintext is scrubbed of the values it saw, and
`mask(obj)` hides a Secret's values for `template`/`diff` output.

Only the standard library is imported at module level (render.py --help stays
fast); each command imports what it needs.
"""

import base64
import hashlib
import json
import os
import re

SECRETS_DIR = "secrets"
CONFIG_NAME = ".sops.yaml"
COMPONENT = "secrets"  # the component label of applied Secrets (prune never sees it)
MASK = "***"
SECRET_FIELDS = ("data", "stringData")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
NOT_SECRET_FILES = {"README.md", CONFIG_NAME, ".gitignore", ".gitkeep"}
KEY_NAME = re.compile(r"^[-._a-zA-Z0-9]+$")
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")  # DNS-1123 subdomain
TEMPLATE_KEY = "key"
TEMPLATE_VALUE = "replace-me"


# --- masking ------------------------------------------------------------------------------

LOCAL_ONLY = "k8s-toolkit/local-only"


def mask(obj):
    """A copy of `obj` whose Secret values read `***` (keys kept); other objects as they are.

    Covers `data`, `stringData` and kubectl's last-applied-configuration
    annotation (which holds the values in clear); a `kind: List` is masked item
    by item. `obj` itself is not changed.
    """
    if not isinstance(obj, dict):
        return obj
    if obj.get("kind") == "List" and isinstance(obj.get("items"), list):
        return {**obj, "items": [mask(item) for item in obj["items"]]}
    if obj.get("kind") != "Secret":
        return obj
    out = dict(obj)
    for field in SECRET_FIELDS:
        if isinstance(out.get(field), dict):
            out[field] = {key: MASK for key in out[field]}
        elif out.get(field) is not None:
            out[field] = MASK
    metadata = out.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("annotations"), dict) \
            and LAST_APPLIED in metadata["annotations"]:
        out["metadata"] = {**metadata, "annotations": {**metadata["annotations"], LAST_APPLIED: MASK}}
    return out


class Scrubber:
    """Replaces every secret value seen so far (and its base64 form) in text with `***`.

    Values shorter than MIN_LENGTH are left alone (scrubbing "1" would garble every
    message); messages are built so that they never quote values in the first place.
    """

    MIN_LENGTH = 4

    def __init__(self):
        self.values = set()

    def add(self, value):
        if isinstance(value, bytes):
            forms = {base64.b64encode(value).decode()}
            try:
                forms.add(value.decode("utf-8"))
            except UnicodeDecodeError:
                pass
        elif isinstance(value, str):
            forms = {value, base64.b64encode(value.encode("utf-8")).decode()}
            try:  # a data value: its decoded text too
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
                if decoded.isprintable():
                    forms.add(decoded)
            except ValueError:
                pass
        else:
            return
        for form in forms:
            for part in [form] + form.splitlines():  # a multi-line value may be quoted line by line
                if len(part.strip()) >= self.MIN_LENGTH:
                    self.values.add(part.strip())

    def __call__(self, text):
        for value in sorted(self.values, key=len, reverse=True):
            text = text.replace(value, MASK)
        return text

    def error(self, err):
        """The UserError `err` with its message (and those it groups) scrubbed."""
        from ..errors import UserErrors

        if isinstance(err, UserErrors):
            return UserErrors([self.error(e) for e in err.errors])
        err.message = self(err.message)
        err.args = (err.message,)
        if err.obj:
            err.obj = self(err.obj)
        return err


# --- files --------------------------------------------------------------------------------

def secret_files(directory, names=None):
    """secrets/*.yml and *.yaml (sorted), or those of `names`; a missing one is an error."""
    from ..errors import UsageError, UserError

    if names:
        paths, missing = [], []
        for name in names:
            path = _path_of(directory, name)
            (paths if os.path.isfile(path) else missing).append(path)
        if missing:
            raise UsageError(f"no such secret file: {', '.join(missing)}")
        return paths
    if not os.path.isdir(directory):
        raise UserError(f"no {directory}/ folder: create a secret with `make {directory}/NAME.yml`")
    return [os.path.join(directory, f) for f in sorted(os.listdir(directory))
            if f.endswith((".yml", ".yaml")) and not f.startswith(".")
            and os.path.isfile(os.path.join(directory, f))]


def _path_of(directory, name):
    """secrets/NAME.yml for NAME, NAME.yml or secrets/NAME.yml."""
    if os.sep in name or "/" in name:
        return name if name.endswith((".yml", ".yaml")) else f"{name}.yml"
    return os.path.join(directory, name if name.endswith((".yml", ".yaml")) else f"{name}.yml")


def unencrypted(paths):
    """[(path, reason)] of the files that are not sops-encrypted (README.md, .sops.yaml exempt)."""
    from . import sops

    bad = []
    for path in paths:
        if os.path.basename(path) in NOT_SECRET_FILES or os.path.isdir(path):
            continue
        try:
            with open(path, "rb") as f:
                raw = f.read()
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            bad.append((path, "binary, not sops-encrypted"))
            continue
        except OSError as err:
            bad.append((path, f"cannot read: {err.strerror}"))
            continue
        reason = sops.not_encrypted_reason(text)
        if reason:
            bad.append((path, reason))
    return bad


def refuse_unencrypted(paths):
    from ..errors import UserError, raise_all
    from .sops import MALFORMED

    raise_all([UserError(f"{reason}, so not readable as a sops-encrypted file; restore it from git",
                         file=path) if reason.startswith(MALFORMED) else
               UserError(f"not sops-encrypted ({reason}); refusing to use it: encrypt it with "
                         "`render.py secrets create`, never commit it", file=path)
               for path, reason in unencrypted(paths)])


# --- decrypt, substitute, validate ------------------------------------------------------

class Loaded:
    """The objects of one decrypted secret file (in memory only)."""

    def __init__(self, path, objects, meta):
        self.path = path
        self.objects = objects
        self.meta = meta


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
            if not KEY_NAME.match(key) or len(key) > 253:
                errors.append(error(f"{field}: key {key!r} must consist of letters, digits, "
                                    "'-', '_' or '.'", [field, key]))
            if not isinstance(value, str):
                kind = {type(None): "nothing", bool: "a boolean", int: "a number", float: "a number",
                        dict: "a mapping", list: "a list"}.get(type(value), type(value).__name__)
                errors.append(error(f"{field}.{key}: the value must be a string, got {kind} "
                                    "(quote it)", [field, key]))
            elif field == "data":
                try:
                    base64.b64decode(value, validate=True)
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


# --- the workflow ------------------------------------------------------------------------

class Workspace:
    """secrets/, its .sops.yaml, the variables and the sops binary of one command."""

    def __init__(self, args):
        self.args = args
        self.directory = getattr(args, "secrets_dir", None) or SECRETS_DIR
        self.config = os.path.join(self.directory, CONFIG_NAME)
        self._variables = None
        self._sops = None
        self.scrub = Scrubber()

    @property
    def variables(self):
        if self._variables is None:
            from ..core.settings import read_values

            self._variables = read_values(self.args)
        return self._variables

    @property
    def sops(self):
        if self._sops is None:
            from .sops import Sops

            self._sops = Sops(self.config)
        return self._sops

    def require_config(self):
        from ..errors import UserError

        if not os.path.isfile(self.config):
            raise UserError(f"no {self.config}: run `make {self.config}` first (after `make sops_gen_gpg` "
                            "or `make sops_gen_age`)")

    def namespace(self):
        return self.variables.get("K8S_NAMESPACE") or "default"

    def decrypt(self, path):
        """(plaintext str, sops metadata) of `path`, in memory."""
        from . import sops
        from ..errors import UserError

        refuse_unencrypted([path])
        with open(path, encoding="utf-8") as f:
            meta = sops.metadata(sops.load_encrypted(f.read()))
        try:
            return self.sops.decrypt(path).decode("utf-8"), meta
        except UnicodeDecodeError:
            raise UserError("malformed: the decrypted content is not UTF-8 text", file=path) from None

    def decode(self, path, text, meta, version=None):
        objects = decode(text, path, self.variables, self.scrub,
                         allow_kinds=tuple(getattr(self.args, "allow_kind", None) or ()),
                         namespace=self.namespace(), version=version)
        return Loaded(path, objects, meta)

    def load(self, path, version=None):
        """Decrypt `path` into memory and decode it; a Loaded."""
        return self.decode(path, *self.decrypt(path), version=version)

    def decrypt_all(self, paths):
        """[(path, plaintext, metadata)] of every file; all errors at once."""
        from ..errors import UserError, raise_all

        refuse_unencrypted(paths)
        found, errors = [], []
        for path in paths:
            try:
                found.append((path, *self.decrypt(path)))
            except UserError as err:
                errors.extend(getattr(err, "errors", [err]))
        raise_all(errors)
        return found

    def decode_all(self, decrypted, version=None):
        """Loaded objects of every decrypted file; all errors of all files at once."""
        from ..errors import UserError, raise_all

        loaded, errors = [], []
        for path, text, meta in decrypted:
            try:
                loaded.append(self.decode(path, text, meta, version))
            except UserError as err:
                errors.extend(getattr(err, "errors", [err]))
        raise_all(errors)
        _check_duplicates([o for item in loaded for o in item.objects])
        return loaded

    def kube_version(self):
        from ..core.settings import kube_version

        return kube_version(self.args, dict(self.variables))

    def cluster(self):
        from ..cluster.connection import Cluster

        context = getattr(self.args, "context", None) or self.variables.get("ADMIN_CTX") or None
        return Cluster(getattr(self.args, "kubeconfig", None), context,
                       pool_size=getattr(self.args, "parallel", 8) or 8)


def _check_duplicates(objects):
    from ..errors import UserError, raise_all

    seen, errors = {}, []
    for obj in objects:
        first = seen.setdefault(obj.key, obj)
        if first is not obj:
            errors.append(UserError(f"duplicate object, first defined in {first.source.file}",
                                    file=obj.source.file, line=obj.source.line, obj=obj.ref))
    raise_all(errors)


def out(text=""):
    print(text, flush=True)


def write_new(path, content):
    """Write `content` to a new file; an existing one is never replaced."""
    from ..errors import UserError

    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise UserError("exists and is never overwritten", file=path) from None
    except OSError as err:
        raise UserError(f"cannot write: {err.strerror}", file=path) from None
    with os.fdopen(fd, "wb") as f:
        f.write(content)

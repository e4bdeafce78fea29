"""Secrets: Kubernetes Secrets kept in git, encrypted with sops, applied server-side.

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

import argparse
import base64
import hashlib
import json
import os
import re
import sys

SECRETS_DIR = "secrets"
CONFIG_NAME = ".sops.yaml"
COMPONENT = "secrets"  # the component label of applied Secrets (prune never sees it)
MASK = "***"
SECRET_FIELDS = ("data", "stringData")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
NOT_SECRET_FILES = {"README.md", CONFIG_NAME, ".gitignore", ".gitkeep"}
KEY_NAME = re.compile(r"^[-._a-zA-Z0-9]+$")
NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
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
        from .errors import UserErrors

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
    from .errors import UsageError, UserError

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
    from .errors import UserError, raise_all
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
    from . import kinds, kubeyaml, render, substitute, validate
    from .errors import UserError, raise_all

    try:
        raw = kubeyaml.load_all(text, path)
    except UserError as err:
        raise _malformed(err, scrub) from None
    for doc in raw:
        _collect(doc.data, scrub)
    spans = _value_spans(text)
    try:
        expanded = substitute.expand(text, variables, path)
    except UserError as err:
        raise scrub.error(_hide_names_in_values(err, text, spans)) from None
    try:
        if all(substitute.is_inert(v) for v in substitute.used_values(text, variables)):
            docs, source_text = kubeyaml.load_all(expanded, path), expanded
        else:
            docs = kubeyaml.load_all_substituting(
                text, path, lambda scalar: substitute.expand(scalar, variables, path))
            source_text = text
        objects = render._objects(docs, source_text, path, COMPONENT)
    except UserError as err:
        raise _malformed(err, scrub) from None
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
    if isinstance(value, dict):
        for key, item in value.items():
            if key in SECRET_FIELDS:
                for secret in (item.values() if isinstance(item, dict) else [item]):
                    for leaf in _leaves(secret):
                        scrub.add(leaf if isinstance(leaf, str) else json.dumps(leaf))
            else:
                _collect(item, scrub)
    elif isinstance(value, list):
        for item in value:
            _collect(item, scrub)


def _leaves(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif value is not None:
        yield value


def _malformed(err, scrub):
    from .errors import UserError, UserErrors

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
    from .errors import UserError, UserErrors

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
    from .errors import UserError

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
            from . import cli

            self._variables = cli.values(cli.load_variables(self.args))
        return self._variables

    @property
    def sops(self):
        if self._sops is None:
            from .sops import Sops

            self._sops = Sops(self.config)
        return self._sops

    def require_config(self):
        from .errors import UserError

        if not os.path.isfile(self.config):
            raise UserError(f"no {self.config}: run `make {self.config}` first (after `make sops_gen_gpg` "
                            "or `make sops_gen_age`)")

    def namespace(self):
        return self.variables.get("K8S_NAMESPACE") or "default"

    def decrypt(self, path):
        """(plaintext str, sops metadata) of `path`, in memory."""
        from . import sops
        from .errors import UserError

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
        from .errors import UserError, raise_all

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
        from .errors import UserError, raise_all

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
        from . import cli

        return cli.kube_version(self.args, dict(self.variables))

    def cluster(self):
        from .cluster import Cluster

        context = getattr(self.args, "context", None) or self.variables.get("ADMIN_CTX") or None
        return Cluster(getattr(self.args, "kubeconfig", None), context,
                       pool_size=getattr(self.args, "parallel", 8) or 8)


def _check_duplicates(objects):
    from .errors import UserError, raise_all

    seen, errors = {}, []
    for obj in objects:
        first = seen.setdefault(obj.key, obj)
        if first is not obj:
            errors.append(UserError(f"duplicate object, first defined in {first.source.file}",
                                    file=obj.source.file, line=obj.source.line, obj=obj.ref))
    raise_all(errors)


def out(text=""):
    print(text, flush=True)


# --- commands: keys ----------------------------------------------------------------------

def cmd_gen_gpg(args):
    from . import keys

    ws = Workspace(args)
    v = ws.variables
    name, email = v.get("SOPS_KEY_NAME", ""), v.get("SOPS_KEY_EMAIL", "")
    key_type = args.key_type or v.get("SOPS_KEY_TYPE") or "rsa4096"
    passphrase = os.environ.get("SOPS_KEY_PASSPHRASE") or None
    fingerprint, created = keys.generate_gpg_key(name, email, key_type, passphrase)
    uid = keys.user_id(name, email)
    home = os.environ.get("GNUPGHOME") or "~/.gnupg"
    if created:
        protection = "protected by SOPS_KEY_PASSPHRASE" if passphrase else "without a passphrase"
        out(f"created GPG key {fingerprint} for {uid!r} ({key_type}, {protection}) in {home}")
    else:
        out(f"reusing GPG key {fingerprint} for {uid!r} in {home} (none created)")
    out(f"fingerprint: {fingerprint}")
    for line in keys.backup_hint(fingerprint):
        out(line)
    out(f"next: make {ws.config}")
    return 0


def cmd_gen_age(args):
    from . import keys

    ws = Workspace(args)
    recipient, path, created = keys.generate_age_key(args.key_file)
    out(f"{'created' if created else 'reusing'} age key {path} (mode 0600)"
        + ("" if created else " (none created)"))
    out(f"recipient: {recipient}")
    out(f"back up {path} somewhere safe and outside this repository; sops reads it from there "
        "(or from SOPS_AGE_KEY_FILE)")
    out(f"next: add `export SOPS_AGE_RECIPIENT ?= {recipient}` to Makefile.vars (or your VARS_FILE), "
        f"then make {ws.config}")
    return 0


def cmd_sops_config(args):
    from . import keys
    from .errors import UserError

    ws = Workspace(args)
    v = ws.variables
    if args.pgp or args.age:  # exactly the recipients given
        pgp = keys.split_list(",".join(args.pgp or []))
        age = keys.split_list(",".join(args.age or []))
    else:
        pgp = keys.split_list(v.get("GPG_FINGERPRINT"))
        age = keys.split_list(v.get("SOPS_AGE_RECIPIENT"))
        if not pgp and v.get("SOPS_KEY_NAME") and v.get("SOPS_KEY_EMAIL"):
            uid = keys.user_id(v["SOPS_KEY_NAME"], v["SOPS_KEY_EMAIL"])
            try:
                pgp = keys.find_keys(keys.gpg(), uid)[:1]
            except UserError:
                if not age:  # no gpg, and no age key either: say why
                    raise
    pgp = [fp.upper() for fp in pgp]
    if not pgp and not age:
        raise UserError("no recipient for secrets: run `make sops_gen_gpg` (or set GPG_FINGERPRINT), "
                        "or `make sops_gen_age` and set SOPS_AGE_RECIPIENT")
    keys.check_fingerprints(pgp)
    keys.check_age_recipients(age)
    text = keys.sops_config(pgp, age)
    if os.path.exists(ws.config):
        with open(ws.config, encoding="utf-8") as f:
            current = f.read()
        if current == text:
            out(f"{ws.config} is up to date")
            return 0
        if not args.force:
            raise UserError(f"{ws.config} exists with other recipients; rerun with --force to "
                            "replace it, then `render.py secrets rotate`")
    missing = [fp for fp in pgp if not keys.has_public_key(fp)]
    os.makedirs(ws.directory, exist_ok=True)
    tmp = f"{ws.config}.new"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, ws.config)
    out(f"wrote {ws.config}: secrets/*.yml encrypted for "
        + ", ".join([f"pgp:{fp}" for fp in pgp] + [f"age:{r}" for r in age]))
    for fp in missing:
        print(f"warning: GPG key {fp} is not in this keyring: import its public key "
              "(gpg --import) before creating or rotating secrets", file=sys.stderr)
    if args.force:
        out("existing secret files keep their old recipients until `render.py secrets rotate`")
    return 0


# --- commands: files ---------------------------------------------------------------------

def _values_from_flags(args):
    """(stringData, data) from --from-literal/--from-file, kubectl style."""
    from .errors import UsageError, UserError

    string_data, data = {}, {}

    def add(key, value, where):
        if not KEY_NAME.match(key):
            raise UsageError(f"{where}: key {key!r} must consist of letters, digits, '-', '_' or '.'")
        if key in string_data or key in data:
            raise UsageError(f"{where}: key {key!r} given twice")
        if isinstance(value, bytes):
            try:
                string_data[key] = value.decode("utf-8")
            except UnicodeDecodeError:
                data[key] = base64.b64encode(value).decode("ascii")
        else:
            string_data[key] = value

    for item in args.from_literal or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError("--from-literal expects KEY=VALUE")
        add(key, value, "--from-literal")
    for item in args.from_file or ():
        key, sep, path = item.partition("=")
        if not sep:
            key, path = os.path.basename(item), item
        try:
            with open(path, "rb") as f:
                value = f.read()
        except OSError as err:
            raise UserError(f"--from-file {path}: {err.strerror}") from None
        add(key, value, "--from-file")
    return string_data, data


def _dollars(text):
    """A literal value in a file that goes through variable substitution: `$` -> `$$`."""
    return text.replace("$", "$$")


def _template(name, namespace, secret_type, string_data, data, placeholder):
    from . import emit

    doc = {"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": name, "namespace": namespace}, "type": secret_type}
    if data:
        doc["data"] = data
    if string_data or placeholder or not data:
        doc["stringData"] = {k: _dollars(v) for k, v in string_data.items()}
        if placeholder and not string_data:
            doc["stringData"] = {TEMPLATE_KEY: TEMPLATE_VALUE}
    text = emit.to_yaml([doc])
    return text[4:] if text.startswith("---\n") else text


def _interactive():
    return sys.stdin.isatty() and sys.stdout.isatty()


def cmd_create(args):
    from .errors import UsageError, UserError

    ws = Workspace(args)
    name = args.name[:-4] if args.name.endswith(".yml") else args.name
    name = os.path.basename(name)
    if not NAME.match(name) or len(name) > 253:
        raise UsageError(f"{name!r} is not a valid Secret name (lower case letters, digits, '-' and '.')")
    path = os.path.join(ws.directory, f"{name}.yml")
    if os.path.exists(path):
        raise UserError(f"exists and is never overwritten; change it with `render.py secrets edit {name}`",
                        file=path)
    ws.require_config()
    string_data, data = _values_from_flags(args)
    for value in list(string_data.values()) + list(data.values()):
        ws.scrub.add(value)
    edit = args.edit if args.edit is not None else (not string_data and not data and _interactive())
    if not string_data and not data and not edit:
        raise UsageError("no terminal to edit the secret in: give its values with "
                         "--from-literal KEY=VALUE or --from-file KEY=PATH (or --edit)")
    namespace = _dollars(args.namespace) if args.namespace else "$K8S_NAMESPACE"
    text = _template(name, namespace, args.type, string_data, data, placeholder=edit)
    version = ws.kube_version()
    try:
        decode(text, path, ws.variables, ws.scrub, namespace=ws.namespace(), version=version)
        ciphertext = ws.sops.encrypt(text.encode("utf-8"), path)
    except UserError as err:
        raise ws.scrub.error(err) from None
    _write_new(path, ciphertext)
    if edit:
        try:
            changed = ws.sops.edit(path)
        except BaseException:
            _remove_if_template(ws, path, string_data or data)
            raise
        if not changed and not (string_data or data):
            os.remove(path)
            out(f"{path}: not changed in the editor, removed (nothing created)")
            return 1
        try:
            loaded = ws.load(path, version)
        except UserError:
            print(f"error: {path} was saved but does not apply as it is; fix it with "
                  f"`render.py secrets edit {name}`:", file=sys.stderr)
            raise
    else:
        loaded = ws.load(path, version)
    _say_created(ws, path, loaded)
    return 0


def _remove_if_template(ws, path, had_values):
    if not had_values and os.path.exists(path):
        os.remove(path)


def _write_new(path, content):
    """Write `content` to a new file; an existing one is never replaced."""
    from .errors import UserError

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise UserError("exists and is never overwritten", file=path) from None
    with os.fdopen(fd, "wb") as f:
        f.write(content)


def _say_created(ws, path, loaded):
    from . import sops

    for obj in loaded.objects:
        keys = sorted(set(obj.data.get("data") or {}) | set(obj.data.get("stringData") or {}))
        out(f"created {path}: {obj.kind} {obj.namespace}/{obj.name}, keys: {', '.join(keys) or '-'}")
    out(f"encrypted for {', '.join(sops.recipients(loaded.meta))}")
    name = os.path.splitext(os.path.basename(path))[0]
    out(f"apply it with `make {ws.directory}/{name}`; change it with `render.py secrets edit {name}`")


def cmd_edit(args):
    from .errors import UserError

    ws = Workspace(args)
    path = secret_files(ws.directory, [args.name])[0]
    refuse_unencrypted([path])
    ws.require_config()
    changed = ws.sops.edit(path)
    if not changed:
        out(f"{path}: not changed")
        return 0
    try:
        ws.load(path, ws.kube_version())
    except UserError:
        print(f"error: {path} was saved but does not apply as it is:", file=sys.stderr)
        raise
    out(f"{path}: saved; apply it with `make {ws.directory}/{os.path.splitext(os.path.basename(path))[0]}`")
    return 0


# --- commands: cluster -------------------------------------------------------------------

def cmd_apply(args):
    from .apply import Engine

    ws = Workspace(args)
    paths = secret_files(ws.directory, args.names)
    if not paths:
        out(f"no secret files in {ws.directory}/")
        return 0
    decrypted = ws.decrypt_all(paths)  # key problems show before any cluster is asked
    with ws.cluster() as cluster:
        version = args.kube_version or cluster.version()
        loaded = ws.decode_all(decrypted, version)
        del decrypted
        objects = [o for item in loaded for o in item.objects]
        # A file marked local-only (the etcd encryption key) never goes to the cluster.
        local = [o for o in objects if ((o.data.get("metadata") or {}).get("annotations") or {})
                 .get(LOCAL_ONLY) == "true"]
        for o in local:
            out(f"{o.display} kept local ({LOCAL_ONLY})")
        objects = [o for o in objects if o not in local]
        for obj in objects:
            obj.data = as_data(obj.data)
        engine = Engine(lambda component: cluster, parallel=args.parallel, force=args.force_conflicts,
                        wait=False, timeout=args.timeout, out=None)
        run = engine.apply([objects], dry_run=args.dry_run)
    for outcome in run.outcomes:
        if outcome.result == "failed" and "conflict" in outcome.message.lower():
            outcome.message += ("; another field manager (e.g. `kubectl create`) set these fields: "
                                "rerun with --force-conflicts to take them over")
        outcome.message = ws.scrub(outcome.message)
        outcome.response = None
    if args.output == "json":
        out(run.as_json())
    else:
        for outcome in run.outcomes:
            out(outcome.line())
        out(run.summary())
    return 1 if run.failed else 0


def cmd_list(args):
    from . import sops
    from .errors import UserError

    ws = Workspace(args)
    paths = secret_files(ws.directory)
    bad = dict(unencrypted(paths))
    rows = []
    cluster = None
    failed = bool(bad)
    try:
        for path in paths:
            row = {"file": path, "objects": [], "recipients": [], "error": None}
            rows.append(row)
            if path in bad:
                row["error"] = f"NOT ENCRYPTED ({bad[path]}): refused"
                continue
            with open(path, encoding="utf-8") as f:
                docs = sops.load_encrypted(f.read())
            meta = sops.metadata(docs)
            row["recipients"] = sops.recipients(meta)
            for doc in docs:
                if isinstance(doc, dict) and "kind" in doc:
                    meta_name = (doc.get("metadata") or {})
                    row["objects"].append({
                        "kind": doc.get("kind"), "name": meta_name.get("name"),
                        "namespace": meta_name.get("namespace"),
                        "keys": sorted(set((doc.get("data") or {})) | set(doc.get("stringData") or {})),
                        "cluster": None})
            if args.no_cluster:
                continue
            try:
                loaded = ws.load(path, args.kube_version)
            except UserError as err:
                row["error"] = ws.scrub(str(err).splitlines()[0])
                failed = True
                continue
            if cluster is None:
                try:
                    cluster = ws.cluster()
                except UserError as err:
                    cluster = err  # no cluster: every object's state is unknown, the rest is listed
            row["objects"] = [_sync_row(obj, cluster, ws) for obj in loaded.objects]
    finally:
        if cluster is not None and not isinstance(cluster, UserError):
            cluster.close()
    if args.output == "json":
        out(json.dumps(rows, indent=2))
    else:
        for row in rows:
            _print_row(row)
    return 1 if failed else 0


def _sync_row(obj, cluster, ws):
    from .cluster import ApiError
    from .errors import UserError

    row = {"kind": obj.kind, "name": obj.name, "namespace": obj.namespace,
           "keys": sorted(decoded_values(obj.data)) if obj.kind == "Secret" else [], "cluster": None}
    if obj.kind != "Secret":
        row["cluster"] = "not compared (not a Secret)"
        return row
    if isinstance(cluster, UserError):
        row["cluster"] = f"unknown ({cluster.message})"
        return row
    current = None
    try:
        resource = cluster.resource("v1", "Secret")
        response = cluster.call(lambda: cluster.dynamic.get(
            resource, name=obj.name, namespace=obj.namespace, serialize=False), obj=obj.ref)
        current = json.loads(response.data)
    except ApiError as err:
        if err.status != 404:
            row["cluster"] = f"unknown ({ws.scrub(err.message)})"
            return row
    except UserError as err:
        row["cluster"] = f"unknown ({ws.scrub(err.message)})"
        return row
    if current is None:
        row["cluster"] = "not in the cluster"
    elif digest(current) == digest(obj.data):
        row["cluster"] = "in sync"
    else:
        row["cluster"] = "differs (apply it to update)"
    return row


def _print_row(row):
    out(f"{row['file']}:")
    if row["error"]:
        out(f"  error: {row['error']}")
    for obj in row["objects"]:
        where = f"{obj['namespace']}/{obj['name']}" if obj["namespace"] else obj["name"]
        out(f"  {obj['kind']} {where}")
        out(f"    keys: {', '.join(obj['keys']) or '-'}")
        if obj["cluster"]:
            out(f"    cluster: {obj['cluster']}")
    if row["recipients"]:
        out(f"  recipients: {', '.join(row['recipients'])}")


def cmd_rotate(args):
    from .errors import UserError, raise_all

    ws = Workspace(args)
    ws.require_config()
    paths = secret_files(ws.directory, args.names)
    refuse_unencrypted(paths)
    errors = []
    for path in paths:
        before = _recipients_of(path)
        try:
            ws.sops.updatekeys(path)
            if args.new_data_key:
                ws.sops.rotate(path)
        except UserError as err:
            errors.append(err)
            continue
        after = _recipients_of(path)
        change = [f"+{r}" for r in after if r not in before] + [f"-{r}" for r in before if r not in after]
        note = " (new data key)" if args.new_data_key else ""
        out(f"{path}: {'recipients ' + ', '.join(change) if change else 'recipients unchanged'}{note}")
    raise_all(errors)
    if paths and not args.new_data_key:
        out("a removed key holder could still read older copies of the data key: add --new-data-key "
            "to re-encrypt every value with a new one")
    return 0


def _recipients_of(path):
    from . import sops

    with open(path, encoding="utf-8") as f:
        return sops.recipients(sops.metadata(sops.load_encrypted(f.read())))


def cmd_check(args):
    """Every file under secrets/ (or those given) is sops-encrypted."""
    directory = getattr(args, "secrets_dir", None) or SECRETS_DIR
    paths = args.paths or ([os.path.join(directory, f) for f in sorted(os.listdir(directory))]
                           if os.path.isdir(directory) else [])
    bad = unencrypted([p for p in paths if os.path.isfile(p)])
    for path, reason in bad:
        print(f"error: {path}: not sops-encrypted ({reason})", file=sys.stderr)
    if not bad:
        out(f"{len(paths)} files checked, all sops-encrypted")
    return 1 if bad else 0


# --- command line ------------------------------------------------------------------------

def register(commands, common=None):
    """Add `secrets SUBCOMMAND …` to the subparsers action `commands` of render.py.

    Parameters:
        commands: what `parser.add_subparsers()` returned.
        common: cli._cluster_options (adds --context, --kubeconfig, --parallel,
            --timeout, -o to a parser; called with applying=False). None: ours.
    """
    if "secrets" in getattr(commands, "choices", {}):
        return commands.choices["secrets"]
    parser = commands.add_parser("secrets", help="sops-encrypted Secrets in secrets/: keys, create, "
                                                 "apply, list, rotate")
    parser.add_argument("--dir", dest="secrets_dir", default=SECRETS_DIR, metavar="DIR",
                        help="folder of the encrypted files and their .sops.yaml (default: %(default)s)")
    sub = parser.add_subparsers(dest="secrets_command", metavar="SUBCOMMAND")
    sub.required = True

    def cluster_options(p):
        if common is not None:
            common(p, applying=False)
        else:
            p.add_argument("--context", help="kubeconfig context (default: $ADMIN_CTX)")
            p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
            p.add_argument("--parallel", type=int, default=8, metavar="N")
            p.add_argument("--timeout", type=float, default=300, metavar="SECONDS")
            p.add_argument("-o", "--output", choices=("text", "json"), default="text")

    p = sub.add_parser("gen-gpg", help="create (or reuse) the GPG key for secrets, without prompts")
    p.add_argument("--key-type", choices=("rsa4096", "rsa3072", "ed25519"),
                   help="default: $SOPS_KEY_TYPE or rsa4096")
    p.set_defaults(run=cmd_gen_gpg)

    p = sub.add_parser("gen-age", help="create (or reuse) an age key for secrets")
    p.add_argument("--key-file", metavar="FILE",
                   help="default: $SOPS_AGE_KEY_FILE or ~/.config/sops/age/keys.txt")
    p.set_defaults(run=cmd_gen_age)

    p = sub.add_parser("sops-config", help="write secrets/.sops.yaml: who can decrypt secrets/*.yml")
    p.add_argument("--pgp", action="append", metavar="FPR",
                   help="GPG fingerprint(s) (default: $GPG_FINGERPRINT or the $SOPS_KEY_NAME key)")
    p.add_argument("--age", action="append", metavar="RECIPIENT",
                   help="age recipient(s) (default: $SOPS_AGE_RECIPIENT)")
    p.add_argument("--force", action="store_true", help="replace an existing .sops.yaml")
    p.set_defaults(run=cmd_sops_config)

    p = sub.add_parser("create", help="create secrets/NAME.yml encrypted, then edit it in $EDITOR")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--from-literal", action="append", metavar="KEY=VALUE",
                   help="a value (repeatable); it shows in your shell history: prefer --from-file")
    p.add_argument("--from-file", action="append", metavar="[KEY=]PATH",
                   help="a value read from a file (repeatable)")
    p.add_argument("--namespace", help="default: $K8S_NAMESPACE, substituted when applied")
    p.add_argument("--type", default="Opaque", help="Secret type (default: %(default)s)")
    p.add_argument("--edit", dest="edit", action="store_true", default=None,
                   help="open $EDITOR even with values given or without a terminal")
    p.add_argument("--no-edit", dest="edit", action="store_false")
    p.set_defaults(run=cmd_create)

    p = sub.add_parser("edit", help="edit secrets/NAME.yml in $EDITOR (sops edit)")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(run=cmd_edit)

    p = sub.add_parser("apply", help="apply secrets to the cluster: created, configured or unchanged")
    p.add_argument("names", nargs="*", metavar="NAME", help="default: every secrets/*.yml")
    p.add_argument("--allow-kind", action="append", metavar="KIND",
                   help="accept this kind besides Secret (repeatable)")
    p.add_argument("--force-conflicts", action="store_true",
                   help="take over fields set by other field managers (e.g. kubectl create)")
    p.add_argument("--dry-run", action="store_true", help="server-side dry run, nothing is changed")
    cluster_options(p)
    p.set_defaults(run=cmd_apply)

    p = sub.add_parser("list", help="each file: its keys, recipients and whether the cluster has it")
    p.add_argument("--no-cluster", action="store_true", help="do not decrypt or ask the cluster")
    p.add_argument("--allow-kind", action="append", metavar="KIND", help=argparse.SUPPRESS)
    cluster_options(p)
    p.set_defaults(run=cmd_list)

    p = sub.add_parser("rotate", help="re-encrypt secrets for the recipients of .sops.yaml")
    p.add_argument("names", nargs="*", metavar="NAME", help="default: every secrets/*.yml")
    p.add_argument("--new-data-key", action="store_true",
                   help="also re-encrypt every value with a new data key (after removing a holder)")
    p.set_defaults(run=cmd_rotate)

    p = sub.add_parser("check", help="fail if a file under secrets/ is not sops-encrypted")
    p.add_argument("paths", nargs="*", metavar="PATH", help="default: every file in secrets/")
    p.set_defaults(run=cmd_check)
    return parser


def main(argv=None):
    """render.py's main() with the secrets commands registered (`python -m k8s.secrets …`).

    Until cli.py calls `register` itself; once it does, this is plain render.py.
    """
    from . import cli

    original = cli.build_parser

    def build_parser():
        parser = original()
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        register(commands, cli._cluster_options)
        return parser

    cli.build_parser = build_parser
    try:
        return cli.main(argv)
    finally:
        cli.build_parser = original


if __name__ == "__main__":
    sys.exit(main())

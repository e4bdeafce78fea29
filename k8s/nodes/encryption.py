"""Encryption at rest for etcd: the key file in secrets/ (KeyFile), the keys' document and its parsing.

The commands are in `k8s.commands.encryption`, the rewrite of rotation step 3
in `k8s.cluster.rewrite`:

    render.py encryption key                  make (or reuse) secrets/etcd-encryption.yml
    render.py encryption-config [--out DIR]   the kubeadm fragment into DIR; the config shown, keys masked
    render.py encryption install NODE…        copy the config to control-plane nodes (root, 0600)
    render.py encryption rotate STEP          add, promote, rewrite, drop: the documented rotation

The parts: the keys, their names and the rotation's add/promote/drop are in
k8s.nodes.encryption_keys; the EncryptionConfiguration and kubeadm fragment
in k8s.nodes.encryption_config; copying the config onto a node in
k8s.nodes.node_files. This module is the file the keys are kept in.

The keys live in `secrets/etcd-encryption.yml`, a Secret-shaped document
encrypted with sops exactly as `render.py secrets create` writes files: the
plaintext goes to sops through a pipe, only ciphertext reaches the disk. Its
key names and their order are repeated in the clear annotation
`k8s-toolkit/encryption-keys` (`provider:name,…`), so the rotation state shows
in a diff and commands that only need the names never decrypt anything.

The key never appears in output, build/ files, logs or errors: every message of
a run that saw it goes through a secrets.masking.Scrubber, and Key's repr hides it.

Only the standard library is imported at module level.
"""

import base64
import os
import tempfile

from ..errors import UserError
from .encryption_keys import KEY_BYTES, KEY_FILE, PROVIDERS, Key

SECRET_NAME = "etcd-encryption"
SECRET_NAMESPACE = "kube-system"
KEYS_ANNOTATION = "k8s-toolkit/encryption-keys"
REWRITTEN_ANNOTATION = "k8s-toolkit/encryption-rewritten"
# `render.py secrets apply` must never send this file to the cluster (the key
# would be stored in the etcd it protects); see the README.
LOCAL_ANNOTATION = "k8s-toolkit/local-only"


# --- the key document -----------------------------------------------------------------------------

def order_annotation(keys):
    return ",".join(k.label for k in keys)


def parse_order(value):
    """[(provider, name)] from the annotation's `provider:name,…`."""
    found = []
    for item in (value or "").split(","):
        provider, sep, name = item.strip().partition(":")
        if not sep or not name:
            raise ValueError(item)
        found.append((provider, name))
    return found


def document(keys, rewritten=None):
    """The Secret-shaped document of secrets/etcd-encryption.yml (plaintext: only for sops' stdin)."""
    annotations = {KEYS_ANNOTATION: order_annotation(keys), LOCAL_ANNOTATION: "true"}
    if rewritten:
        annotations[REWRITTEN_ANNOTATION] = rewritten
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET_NAME, "namespace": SECRET_NAMESPACE, "annotations": annotations},
        "type": "Opaque",
        "stringData": {k.name: k.secret for k in keys},
    }


def keys_of(doc, path):
    """(keys in order, rewritten key name) of a decrypted document; errors name keys, never values."""
    if not isinstance(doc, dict) or doc.get("kind") != "Secret":
        raise UserError("not the Secret-shaped key document `make encryption_key` writes", file=path)
    annotations = _mapping(doc, path, "metadata", "annotations")
    try:
        order = parse_order(annotations.get(KEYS_ANNOTATION))
    except ValueError:
        raise UserError(f"annotation {KEYS_ANNOTATION} must list provider:name pairs, comma separated",
                        file=path) from None
    values = {k: _decode_data(v) for k, v in _mapping(doc, path, "data").items()}
    values.update(_mapping(doc, path, "stringData"))
    problems, keys = [], []
    for provider, name in order:
        if provider not in PROVIDERS:
            problems.append(f"key {name}: provider {provider!r} is not one of {', '.join(PROVIDERS)}")
        secret = values.get(name)
        if not isinstance(secret, str):
            problems.append(f"key {name} is listed in {KEYS_ANNOTATION} but has no value")
            continue
        try:
            raw = base64.b64decode(secret, validate=True)
        except ValueError:
            raw = b""
        if len(raw) != KEY_BYTES:
            problems.append(f"key {name}: the value is not {KEY_BYTES} bytes of base64")
        keys.append(Key(provider, name, secret))
    extra = sorted(set(values) - {name for _, name in order})
    if extra:
        problems.append(f"keys not listed in {KEYS_ANNOTATION}: {', '.join(extra)}")
    if len({name for _, name in order}) != len(order):
        problems.append("a key name is listed twice")
    if problems:
        raise UserError("; ".join(problems), file=path)
    return keys, annotations.get(REWRITTEN_ANNOTATION) or None


def _decode_data(value):
    try:
        return base64.b64decode(value or "", validate=True).decode("ascii")
    except (ValueError, TypeError, UnicodeDecodeError):
        return None


def _mapping(doc, path, *keys):
    """doc[k1][k2]... as a mapping ({} where absent); anything else is an error naming where."""
    value = doc
    for depth, key in enumerate(keys):
        value = value.get(key) if value is not None else None
        if value is not None and not isinstance(value, dict):
            raise UserError(f"{'.'.join(keys[:depth + 1])} must be a mapping", file=path)
        value = value or {}
    return value


# --- the key file -------------------------------------------------------------------------------

class KeyFile:
    """secrets/etcd-encryption.yml through a secrets.workspace.Workspace (its sops, scrubber, variables)."""

    def __init__(self, ws):
        self.ws = ws
        self.path = os.path.join(ws.directory, KEY_FILE)

    def exists(self):
        return os.path.isfile(self.path)

    def require(self):
        if not self.exists():
            raise UserError(f"no {self.path}: create the key with `make encryption_key`")

    def labels(self):
        """[(provider, name)] from the clear annotation, without decrypting."""
        from ..core.files import read_text
        from ..secrets import files as secrets, sops

        self.require()
        secrets.refuse_unencrypted([self.path])
        docs = sops.load_encrypted(read_text(self.path, "secret file"))
        doc = next((d for d in docs or () if isinstance(d, dict) and d.get("kind")), {})
        annotations = _mapping(doc, self.path, "metadata", "annotations")
        try:
            return parse_order(annotations.get(KEYS_ANNOTATION)), annotations.get(REWRITTEN_ANNOTATION)
        except ValueError:
            raise UserError(f"annotation {KEYS_ANNOTATION} must list provider:name pairs",
                            file=self.path) from None

    def load(self):
        """(keys, rewritten) decrypted into memory; every value is added to the scrubber."""
        import yaml

        self.require()
        text, _ = self.ws.decrypt(self.path)
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError:
            raise UserError("malformed YAML inside the encrypted file (run `render.py secrets edit "
                            f"{SECRET_NAME}` to look at it)", file=self.path) from None
        del text
        self._scrub_values(doc)
        keys, rewritten = keys_of(doc, self.path)
        return keys, rewritten

    def _scrub_values(self, doc):
        for field_name in ("data", "stringData"):
            values = doc.get(field_name) if isinstance(doc, dict) else None
            for value in values.values() if isinstance(values, dict) else ():
                self.ws.scrub.add(value)

    def _ciphertext(self, keys, rewritten):
        from ..core import emit

        for key in keys:
            self.ws.scrub.add(key.secret)
        self.ws.require_config()
        text = emit.to_yaml([document(keys, rewritten)])
        try:
            return self.ws.sops.encrypt(text.encode("utf-8"), self.path)
        except UserError as err:
            raise self.ws.scrub.error(err) from None

    def create(self, keys):
        from ..secrets.files import write_new

        write_new(self.path, self._ciphertext(keys, None))

    def save(self, keys, rewritten=None):
        """Replace the file with a new encryption of `keys` (ciphertext only touches the disk)."""
        ciphertext = self._ciphertext(keys, rewritten)
        fd, temp = tempfile.mkstemp(dir=os.path.dirname(self.path) or ".", prefix=f".{KEY_FILE}.",
                                    suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(ciphertext)
            os.chmod(temp, 0o644)
            os.replace(temp, self.path)
        except BaseException:
            if os.path.exists(temp):
                os.remove(temp)
            raise

"""Encryption at rest for etcd: the key in secrets/, the config on the nodes, key rotation.

This module holds the keys, their file, the EncryptionConfiguration and its
copy onto the nodes; the commands are in `k8s.encryption_cli`, the rewrite of
rotation step 3 in `k8s.rewrite`:

    render.py encryption key                  make (or reuse) secrets/etcd-encryption.yml
    render.py encryption-config [--out DIR]   the kubeadm fragment into DIR; the config shown, keys masked
    render.py encryption install NODE…        copy the config to control-plane nodes (root, 0600)
    render.py encryption rotate STEP          add, promote, rewrite, drop: the documented rotation

The keys live in `secrets/etcd-encryption.yml`, a Secret-shaped document
encrypted with sops exactly as `render.py secrets create` writes files: the
plaintext goes to sops through a pipe, only ciphertext reaches the disk. Its
key names and their order are repeated in the clear annotation
`k8s-toolkit/encryption-keys` (`provider:name,…`), so the rotation state shows
in a diff and commands that only need the names never decrypt anything.

The EncryptionConfiguration holds the keys in clear; it is only ever built in
memory and streamed into `ssh NODE 'umask 077; sudo install -m 0600 -o root -g
root /dev/stdin …'`, never written on this machine. `encryption-config` shows
it with the secrets masked (`--show-key` prints them) and writes only the
kubeadm ClusterConfiguration fragment into build/.

Facts relied on (kubernetes.io, "Encrypting Confidential Data at Rest", and
k8s.io/apiserver's EncryptionConfiguration validation):
  * aescbc and secretbox take 32-byte keys (the validation accepts 16, 24 or
    32 for AES; we always make 32); aesgcm must be rotated every 200,000 writes
    and is not recommended without automated rotation, so it is refused;
  * the first provider's first key encrypts, every listed key decrypts;
    `identity: {}` last keeps data written before encryption readable;
  * rotation: add the new key second and restart every apiserver, make it
    first and restart, rewrite every object (`kubectl get secrets -A -o json |
    kubectl replace -f -`, a PUT of the unchanged object: the storage layer
    writes an unchanged object again when it was read with a key that is not
    the first one), then drop the old key;
  * key names appear in etcd as `k8s:enc:<provider>:v1:<name>:`, so ours have
    no colon: `key-<UTC timestamp>`.

The key never appears in output, build/ files, logs or errors: every message of
a run that saw it goes through a secrets.Scrubber, and Key's repr hides it.

Variables (defaults in DEFAULTS): ENCRYPTION_PROVIDER (of new keys),
ENCRYPTION_RESOURCES (space separated, `resource` or `resource.group`),
ENCRYPTION_CONFIG_PATH (the file on the nodes), KUBE_VERSION (fragment form),
ADMIN_CTX (the rewrite's context), SSH_CONFIG, SSH_OPTIONS, REMOTE_SUDO (k8s.remote).

Only the standard library is imported at module level.
"""

import base64
import datetime
import os
import posixpath
import re
import shlex
import subprocess
import tempfile
from dataclasses import dataclass, field

from ..errors import UserError

KEY_FILE = "etcd-encryption.yml"  # under the secrets folder
SECRET_NAME = "etcd-encryption"
SECRET_NAMESPACE = "kube-system"
KEYS_ANNOTATION = "k8s-toolkit/encryption-keys"
REWRITTEN_ANNOTATION = "k8s-toolkit/encryption-rewritten"
# `render.py secrets apply` must never send this file to the cluster (the key
# would be stored in the etcd it protects); see the README.
LOCAL_ANNOTATION = "k8s-toolkit/local-only"
API_VERSION = "apiserver.config.k8s.io/v1"
PROVIDERS = ("secretbox", "aescbc")
KEY_BYTES = 32
MASK = "***"
DEFAULTS = {
    "ENCRYPTION_PROVIDER": "secretbox",
    "ENCRYPTION_RESOURCES": "secrets",
    "ENCRYPTION_CONFIG_PATH": "/etc/kubernetes/encryption/config.yaml",
}
FRAGMENT_FILE = "kubeadm-encryption.yaml"
REFUSED_PROVIDERS = {
    "aesgcm": "aesgcm must be rotated every 200,000 writes and is not recommended without an "
              "automated key rotation scheme",
    "identity": "identity does not encrypt",
    "kms": "kms needs a KMS plugin; this toolkit manages local keys only",
}
_KEY_NAME = re.compile(r"^key-(\d{8}T\d{6}Z)(?:-(\d+))?$")
_RESOURCE = re.compile(r"^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.(\*|[a-z0-9]([-a-z0-9.]*[a-z0-9])?)?)?$")


# --- keys -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Key:
    """One encryption key: its provider, name and base64 secret (hidden from repr)."""

    provider: str
    name: str
    secret: str = field(repr=False)

    @property
    def label(self):
        return f"{self.provider}:{self.name}"


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def name_order(name):
    """Sort key of a key name: its timestamp, then its `-N` suffix."""
    match = _KEY_NAME.match(name)
    return (match[1], int(match[2] or 0)) if match else ("", 0)


def new_name(existing=(), now=None):
    """`key-YYYYMMDDTHHMMSSZ`, later than every name in `existing` (a suffix `-N` if need be)."""
    stamp = (now or _now()).strftime("%Y%m%dT%H%M%SZ")
    latest = max((name_order(n) for n in existing), default=("", 0))
    if stamp > latest[0]:
        return f"key-{stamp}"
    return f"key-{latest[0]}-{latest[1] + 1}"


def generate(provider, existing=(), now=None):
    """A new Key: 32 bytes from os.urandom, base64."""
    return Key(check_provider(provider), new_name(existing, now),
               base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii"))


def check_provider(value):
    value = (value or "").strip()
    if value in PROVIDERS:
        return value
    why = REFUSED_PROVIDERS.get(value)
    raise UserError(f"ENCRYPTION_PROVIDER {value!r} is not supported"
                    + (f" ({why})" if why else "") + f"; use {' or '.join(PROVIDERS)}")


def newest(keys):
    return max(keys, key=lambda k: name_order(k.name))


def state(keys):
    """steady (one key), added (the newest key is not first yet) or promoted (it is)."""
    if len(keys) <= 1:
        return "steady"
    return "promoted" if keys[0] is newest(keys) else "added"


def add(keys, provider, now=None):
    """The keys with a new one second: every apiserver can read it, none writes with it yet."""
    if state(keys) != "steady":
        raise UserError(f"a rotation is under way ({describe_keys(keys)}): finish it with `promote`, "
                        "`rewrite` and `drop` before adding another key")
    return [keys[0], generate(provider, [k.name for k in keys], now), *keys[1:]]


def promote(keys):
    """The keys with the newest one first: it encrypts from now on."""
    if state(keys) != "added":
        return None  # nothing to promote
    new = newest(keys)
    return [new, *[k for k in keys if k is not new]]


def drop(keys):
    """Only the first key is kept."""
    if state(keys) == "added":
        raise UserError(f"the newest key {newest(keys).name} is not the first one yet: dropping now "
                        f"would remove {keys[0].name}, which still encrypts; run `promote` first")
    return keys[:1] if len(keys) > 1 else None


def describe_keys(keys):
    """The keys' labels, first (the one that encrypts) to last, for messages."""
    return ", ".join(k.label for k in keys)


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


# --- the configuration --------------------------------------------------------------------------

def resources(value):
    """The ENCRYPTION_RESOURCES items, checked (`resource`, `resource.group`, `*.group`, `*.*`)."""
    items = list(dict.fromkeys((value or "").split()))
    if not items:
        raise UserError("ENCRYPTION_RESOURCES is empty; name at least `secrets`")
    bad = [item for item in items if not _RESOURCE.match(item) or item == "*"]
    if bad:
        raise UserError(f"ENCRYPTION_RESOURCES: {', '.join(map(repr, bad))} is not a resource name "
                        "(resource or resource.group, e.g. secrets, configmaps, widgets.example.com)")
    for i, item in enumerate(items):  # kube-apiserver refuses a rule an earlier wildcard covers
        group = item.partition(".")[2]
        masking = [w for w in items[:i] if w == "*.*" or (w.startswith("*.") and w[2:] == group)]
        if masking:
            raise UserError(f"ENCRYPTION_RESOURCES: {item!r} is covered by {masking[0]!r} before it "
                            "(kube-apiserver refuses that); list wildcards last")
    return items


def configuration(keys, resource_names):
    """The EncryptionConfiguration: the keys' providers in key order, `identity: {}` last."""
    providers = []
    for key in keys:
        group = next((p for p in providers if key.provider in p), None)
        if group is None:
            group = {key.provider: {"keys": []}}
            providers.append(group)
        group[key.provider]["keys"].append({"name": key.name, "secret": key.secret})
    providers.append({"identity": {}})
    return {"apiVersion": API_VERSION, "kind": "EncryptionConfiguration",
            "resources": [{"resources": list(resource_names), "providers": providers}]}


def config_text(keys, resource_names, path, note=None):
    from ..core import emit

    header = (f"# EncryptionConfiguration for kube-apiserver --encryption-provider-config={path}\n"
              f"# written by `render.py encryption install`; keys from secrets/{KEY_FILE}\n"
              "# the first key of the first provider encrypts, all keys decrypt, identity reads\n"
              "# data written before encryption was enabled\n")
    if note:
        header += f"# {note}\n"
    return header + emit.to_yaml([configuration(keys, resource_names)])


def cluster_configuration(flags, volumes, kube_version=None):
    """A kubeadm ClusterConfiguration document with apiServer extraArgs `flags` and extraVolumes.

    Parameters:
        flags: [(name, value)] of kube-apiserver flags (values as strings).
        volumes: extraVolumes entries (name, hostPath, mountPath, readOnly, pathType).
        kube_version: v1beta4 (extraArgs as name/value list) from 1.31 or when unknown,
            v1beta3 (extraArgs as a map) before, as k8s.podsecurity decides.
    """
    from ..core.podsecurity import KUBEADM_V1BETA4_MINOR, _minor

    minor = _minor(kube_version)
    if minor is None or minor >= KUBEADM_V1BETA4_MINOR:
        api, args = "kubeadm.k8s.io/v1beta4", [{"name": n, "value": str(v)} for n, v in flags]
    else:
        api, args = "kubeadm.k8s.io/v1beta3", {n: str(v) for n, v in flags}
    return {"apiVersion": api, "kind": "ClusterConfiguration",
            "apiServer": {"extraArgs": args, "extraVolumes": list(volumes)}}


def fragment(path, kube_version=None):
    """The kubeadm fragment: --encryption-provider-config and its folder, mounted read-only."""
    folder = posixpath.dirname(path) or "/"
    volume = {"name": "encryption-config", "hostPath": folder, "mountPath": folder,
              "readOnly": True, "pathType": "DirectoryOrCreate"}
    return cluster_configuration([("encryption-provider-config", path)], [volume], kube_version)


def config_path(variables):
    path = (variables.get("ENCRYPTION_CONFIG_PATH") or DEFAULTS["ENCRYPTION_CONFIG_PATH"]).strip()
    problem = node_file_problem(path)
    if problem:
        raise UserError(f"ENCRYPTION_CONFIG_PATH {path!r} {problem}")
    return path


def node_file_problem(path):
    """Why `path` cannot be a control-plane file that kubeadm mounts its folder of, or None."""
    import posixpath

    if not path.startswith("/") or path.endswith("/") or not path.isprintable() or " " in path:
        return "must be an absolute file path without spaces"
    if posixpath.dirname(posixpath.normpath(path)) == "/":
        return "must be in a folder of its own: kubeadm mounts that folder into kube-apiserver's container"
    return None


# --- copying a root-only file to a node -----------------------------------------------------------

def install_command(path, sudo, folders=()):
    """The remote shell command that stores its standard input as `path`, root-owned, mode 0600.

    umask 077 first, so nothing it creates is ever readable by others, not even for
    a moment; the file is written beside its target and renamed over it. Missing
    folders (the file's, and `folders`) are made with mode 0700; existing ones
    are left as they are.
    """
    folder = posixpath.dirname(path) or "/"
    temp = posixpath.join(folder, f".{posixpath.basename(path)}.new")
    steps = ["umask 077"]
    for directory in dict.fromkeys([folder, *folders]):
        steps.append(shlex.join([*sudo, "mkdir", "-p", "-m", "0700", "--", directory]))
    steps.append(shlex.join([*sudo, "install", "-T", "-m", "0600", "-o", "root", "-g", "root",
                             "--", "/dev/stdin", temp]))
    steps.append(shlex.join([*sudo, "mv", "-f", "-T", "--", temp, path]))
    return " && ".join(steps)


def copy_to_node(host, path, content, variables, folders=(), dry_run=False, scrub=None, timeout=120):
    """Stream `content` (bytes) through ssh's standard input into `path` on `host`.

    With `dry_run` the ssh command line is printed (the content is not: it only
    ever travels through the pipe) and nothing connects. A failure is one
    UserError line naming the host and ssh's exit status, as k8s.remote.run words it.
    """
    from . import remote

    command = install_command(path, remote.sudo_words(variables), folders)
    argv = remote.ssh_argv(host, command, variables)
    if dry_run:
        print(shlex.join(argv), flush=True)
        return False
    try:
        result = subprocess.run(argv, input=content, capture_output=True, timeout=timeout)
    except FileNotFoundError:
        raise UserError(f"ssh {host}: no ssh client ({remote.SSH}) found: install openssh-client") from None
    except subprocess.TimeoutExpired:
        raise UserError(f"ssh {host}: no answer within {timeout:g}s") from None
    if result.returncode != 0:
        err = result.stderr.decode("utf-8", "replace")
        lines = [line.strip() for line in err.splitlines() if line.strip()]
        detail = f": {lines[-1]}" if lines else ""
        what = "ssh" if result.returncode == 255 else "remote command"
        message = f"ssh {host}: {what} failed (exit status {result.returncode}){detail}"
        raise UserError(scrub(message) if scrub else message)
    return True


RESTART_HINT = ("restart kube-apiserver on every control-plane node so it reads the file: once the "
                "kubeadm fragment is in its manifest, `sudo crictl stop $(sudo crictl ps -q --name "
                "kube-apiserver)` (the kubelet starts it again)")


# --- the key file -------------------------------------------------------------------------------

class KeyFile:
    """secrets/etcd-encryption.yml through a secrets.Workspace (its sops, scrubber, variables)."""

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
        from ..secrets import files as secrets, sops

        self.require()
        secrets.refuse_unencrypted([self.path])
        with open(self.path, encoding="utf-8") as f:
            docs = sops.load_encrypted(f.read())
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

"""etcd encryption keys: what a key is, its name, making one, and the rotation's add, promote, drop.

Keys are values: a list of them is in the EncryptionConfiguration's order,
the first one encrypts. Nothing here reads or writes a file (the key file is
k8s.nodes.encryption, the configuration k8s.nodes.encryption_config) and the
secret never shows: Key's repr hides it, messages name keys by label.

Facts relied on (kubernetes.io, "Encrypting Confidential Data at Rest", and
k8s.io/apiserver's EncryptionConfiguration validation):
  * aescbc and secretbox take 32-byte keys (the validation accepts 16, 24 or
    32 for AES; we always make 32); aesgcm must be rotated every 200,000 writes
    and is not recommended without automated rotation, so it is refused;
  * the first provider's first key encrypts, every listed key decrypts;
  * rotation: add the new key second and restart every apiserver, make it
    first and restart, rewrite every object (k8s.cluster.rewrite), then drop
    the old key;
  * key names appear in etcd as `k8s:enc:<provider>:v1:<name>:`, so ours have
    no colon: `key-<UTC timestamp>`.

Only the standard library is imported.
"""

import base64
import datetime
import os
import re
from dataclasses import dataclass, field

from ..errors import UserError

# KeyFile's file (k8s.nodes.encryption); here, below it and the configuration's header that names it
KEY_FILE = "etcd-encryption.yml"  # under the secrets folder
PROVIDERS = ("secretbox", "aescbc")
KEY_BYTES = 32
REFUSED_PROVIDERS = {
    "aesgcm": "aesgcm must be rotated every 200,000 writes and is not recommended without an "
              "automated key rotation scheme",
    "identity": "identity does not encrypt",
    "kms": "kms needs a KMS plugin; this toolkit manages local keys only",
}
_KEY_NAME = re.compile(r"^key-(\d{8}T\d{6}Z)(?:-(\d+))?$")


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

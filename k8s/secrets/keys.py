"""Keys for sops: a GPG key made without prompts, an age identity, and `.sops.yaml`.

GPG: python-gnupg drives `gpg --batch --gen-key` with the parameters on stdin
(no passphrase unless one is given), in GNUPGHOME. A key whose user id is
exactly `NAME <EMAIL>` and whose secret part is in the keyring is reused,
never duplicated.

age: no age-keygen comes with the sops wheel and sops 3.11 has no key
generation command, so the identity is made here, as the age spec
(c2sp.org/age, "The X25519 recipient type") defines it: 32 bytes from the
CSPRNG, Bech32 with HRP `AGE-SECRET-KEY-` (upper case); the recipient is
X25519(identity, basepoint 9) from RFC 7748, Bech32 with HRP `age`. X25519 is
the RFC 7748 Montgomery ladder below (checked against the RFC's test vectors
and the spec's example pair in tests/secrets/test_secrets.py); it runs once per key.
The key file has age-keygen's layout and lives where sops looks by default
(`$SOPS_AGE_KEY_FILE`, else `$XDG_CONFIG_HOME/sops/age/keys.txt`, else
`~/.config/sops/age/keys.txt`).
"""

import datetime
import errno
import os
import re
import secrets

from ..errors import UserError

KEY_TYPES = {
    "rsa4096": dict(key_type="RSA", key_length=4096, subkey_type="RSA", subkey_length=4096),
    "rsa3072": dict(key_type="RSA", key_length=3072, subkey_type="RSA", subkey_length=3072),
    "ed25519": dict(key_type="EDDSA", key_curve="ed25519", subkey_type="ECDH", subkey_curve="cv25519"),
}
KEY_TYPE_ALIASES = {"rsa": "rsa4096", "cv25519": "ed25519", "ecc": "ed25519", "": "rsa4096"}
UNUSABLE_TRUST = set("erid")  # expired, revoked, invalid, disabled
FINGERPRINT = re.compile(r"^[0-9A-F]{40}$")


# --- GPG --------------------------------------------------------------------------------

def gpg(home=None):
    """A python-gnupg handle on GNUPGHOME (default ~/.gnupg)."""
    import gnupg

    home = home or os.environ.get("GNUPGHOME") or None
    if home:
        os.makedirs(home, mode=0o700, exist_ok=True)
    try:
        return gnupg.GPG(gnupghome=home)
    except (OSError, ValueError) as err:
        raise UserError(f"cannot run gpg: {err} (Debian: apt-get install gnupg)") from None


def user_id(name, email):
    return f"{name} <{email}>"


def find_keys(handle, uid, secret=True):
    """Fingerprints of the usable keys whose user id is exactly `uid`, newest first."""
    found = []
    for key in handle.list_keys(secret=secret):
        if key.get("trust") in UNUSABLE_TRUST:
            continue
        if any(" ".join(u.split()) == " ".join(uid.split()) for u in key.get("uids") or ()):
            found.append((key.get("date") or "", key["fingerprint"]))
    return [fp for _, fp in sorted(found, reverse=True)]


def generate_gpg_key(name, email, key_type="rsa4096", passphrase=None, home=None):
    """(fingerprint, created) of the key `NAME <EMAIL>`: the existing one, else a new one."""
    if not name or not email:
        raise UserError("SOPS_KEY_NAME and SOPS_KEY_EMAIL must be set for the key's user id")
    wanted = KEY_TYPE_ALIASES.get(key_type.lower(), key_type.lower())
    if wanted not in KEY_TYPES:
        raise UserError(f"SOPS_KEY_TYPE {key_type!r} is not supported; use one of {', '.join(KEY_TYPES)}")
    handle = gpg(home)
    uid = user_id(name, email)
    existing = find_keys(handle, uid)
    if existing:
        return existing[0], False
    if find_keys(handle, uid, secret=False):
        raise UserError(f"the keyring has the public key {uid!r} but not its secret key: import the "
                        "secret key (gpg --import) or choose another SOPS_KEY_NAME/SOPS_KEY_EMAIL")
    params = dict(KEY_TYPES[wanted], name_real=name, name_email=email, key_usage="sign",
                  subkey_usage="encrypt", expire_date=0)
    if passphrase:
        params["passphrase"] = passphrase
    else:
        params["no_protection"] = True
    result = handle.gen_key(handle.gen_key_input(**params))
    if not result.fingerprint:
        status = (getattr(result, "status", None) or "").strip()
        problem = status or _gpg_problem(getattr(result, "stderr", "") or "")
        raise UserError(f"gpg could not create the key {uid!r}: {problem}")
    return result.fingerprint, True


def _gpg_problem(stderr):
    lines = [ln for ln in stderr.splitlines() if ln.startswith("gpg:")]
    return lines[-1] if lines else "no message"


def backup_hint(fingerprint, home=None):
    """How to back the key up and restore it, as lines to print."""
    where = home or os.environ.get("GNUPGHOME")
    env = f"GNUPGHOME={where} " if where else ""
    return [
        "back it up now, somewhere safe and outside this repository (losing it loses every secret):",
        f"  {env}gpg --export-secret-keys --armor {fingerprint} > sops-key-{fingerprint[-8:]}.asc",
        f"restore on another machine: gpg --import sops-key-{fingerprint[-8:]}.asc",
        "other key holders send you their public key (gpg --export --armor FPR); import it, add its "
        "fingerprint to GPG_FINGERPRINT, run `render.py secrets sops-config --force` and "
        "`render.py secrets rotate`",
    ]


def has_public_key(fingerprint, home=None):
    return any(k["fingerprint"] == fingerprint for k in gpg(home).list_keys())


# --- age --------------------------------------------------------------------------------

_P = 2 ** 255 - 19
_A24 = 121665
_BASEPOINT = (9).to_bytes(32, "little")


def x25519(scalar, u):
    """RFC 7748 section 5: X25519(k, u) for 32-byte `scalar` and `u`."""
    k = bytearray(scalar)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    k = int.from_bytes(k, "little")
    x1 = int.from_bytes(u, "little") & ((1 << 255) - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in range(254, -1, -1):
        bit = (k >> t) & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b = (x2 + z2) % _P, (x2 - z2) % _P
        aa, bb = a * a % _P, b * b % _P
        e = (aa - bb) % _P
        c, d = (x3 + z3) % _P, (x3 - z3) % _P
        da, cb = d * a % _P, c * b % _P
        x3, z3 = (da + cb) ** 2 % _P, x1 * (da - cb) ** 2 % _P
        x2, z2 = aa * bb % _P, e * (aa + _A24 * e) % _P
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, _P - 2, _P) % _P).to_bytes(32, "little")


_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values):
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= _GENERATOR[i]
    return chk


def _hrp_expand(hrp):
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data, from_bits, to_bits, pad):
    acc = bits = 0
    out = []
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & ((1 << to_bits) - 1))
    if pad and bits:
        out.append((acc << (to_bits - bits)) & ((1 << to_bits) - 1))
    elif not pad and (bits >= from_bits or (acc << (to_bits - bits)) & ((1 << to_bits) - 1)):
        raise ValueError("invalid padding")
    return out


def bech32_encode(hrp, data):
    """BIP 173 Bech32 (not Bech32m) of `data` bytes, lower case; no length limit (age's keys)."""
    hrp = hrp.lower()
    words = _convert_bits(data, 8, 5, True)
    checksum = _polymod(_hrp_expand(hrp) + words + [0] * 6) ^ 1
    words += [(checksum >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[w] for w in words)


def bech32_decode(text):
    """(hrp, data bytes) of a Bech32 string; ValueError if it is not one."""
    if text != text.lower() and text != text.upper():
        raise ValueError("mixed case")
    text = text.lower()
    hrp, sep, rest = text.rpartition("1")
    if not sep or not hrp or len(rest) < 6 or any(c not in _CHARSET for c in rest):
        raise ValueError("not Bech32")
    words = [_CHARSET.index(c) for c in rest]
    if _polymod(_hrp_expand(hrp) + words) != 1:
        raise ValueError("bad checksum")
    return hrp, bytes(_convert_bits(words[:-6], 5, 8, False))


def age_identity():
    """A new (identity, recipient) pair: `AGE-SECRET-KEY-1…`, `age1…`."""
    scalar = secrets.token_bytes(32)
    return bech32_encode("age-secret-key-", scalar).upper(), age_recipient_of(scalar)


def age_recipient_of(identity):
    """The `age1…` recipient of an identity (its 32 bytes or its `AGE-SECRET-KEY-1…` text)."""
    if isinstance(identity, str):
        hrp, identity = bech32_decode(identity)
        if hrp != "age-secret-key-" or len(identity) != 32:
            raise ValueError("not an age X25519 identity")
    return bech32_encode("age", x25519(identity, _BASEPOINT))


def is_age_recipient(text):
    try:
        hrp, data = bech32_decode(text)
    except ValueError:
        return False
    return hrp == "age" and len(data) == 32 and text == text.lower()


def age_key_file():
    """Where sops looks for age identities: $SOPS_AGE_KEY_FILE, else the XDG config path."""
    if os.environ.get("SOPS_AGE_KEY_FILE"):
        return os.environ["SOPS_AGE_KEY_FILE"]
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(config, "sops", "age", "keys.txt")


def generate_age_key(path=None):
    """(recipient, path, created): the first identity of the key file, else a new one in it."""
    path = path or age_key_file()
    try:
        return _read_age_key(path) if os.path.lexists(path) else _write_age_key(path)
    except UnicodeDecodeError:
        raise UserError("is not an age key file (not text); move it away or set SOPS_AGE_KEY_FILE "
                        "to another file", file=path) from None
    except OSError as err:
        where = err.filename if err.filename and err.filename != path else None
        raise UserError(f"cannot {'read' if os.path.lexists(path) else 'create'} the age key file: "
                        f"{err.strerror}{f' ({where})' if where else ''}", file=path) from None


def _read_age_key(path):
    from ..core.files import read_bytes

    if os.path.isdir(path):  # said as the system says it: "cannot read the age key file: Is a directory"
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    try:  # a regular file of at most 1 MiB (never a FIFO or a device); not UTF-8 is caught by the caller
        raw = read_bytes(path, "key")
    except UserError as err:
        raise UserError(f"cannot read the age key file: {err.message}", file=path) from None
    for line in raw.decode("utf-8").splitlines():
        line = line.strip()
        if line.startswith("AGE-SECRET-KEY-1"):
            try:
                return age_recipient_of(line), path, False
            except ValueError:
                raise UserError("holds an invalid AGE-SECRET-KEY line", file=path) from None
    raise UserError("exists but holds no AGE-SECRET-KEY identity; move it away or set "
                    "SOPS_AGE_KEY_FILE to another file", file=path)


def _write_age_key(path):
    identity, recipient = age_identity()
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
    created = datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="seconds")
    text = f"# created: {created}\n# public key: {recipient}\n{identity}\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return recipient, path, True


# --- .sops.yaml ---------------------------------------------------------------------------

PATH_REGEX = r"^[^/.][^/]*\.ya?ml$"  # relative to the config's directory: secrets/*.yml
ENCRYPTED_REGEX = "^(data|stringData)$"


def split_list(value):
    """Items of a comma- or space-separated setting."""
    return [item for item in re.split(r"[\s,]+", value or "") if item]


def sops_config(pgp=(), age=()):
    """Text of secrets/.sops.yaml for these recipients."""
    lines = [
        "# sops creation rules for secrets/*.yml, written by `make secrets/.sops.yaml`",
        "# (render.py secrets sops-config). Only data and stringData are encrypted: kind,",
        "# name and namespace stay readable in diffs. After changing the recipients run",
        "# `render.py secrets rotate` so every file is re-encrypted for them.",
        "creation_rules:",
        f"  - path_regex: {PATH_REGEX}",
        f"    encrypted_regex: {ENCRYPTED_REGEX}",
    ]
    if pgp:
        lines.append(f"    pgp: {','.join(pgp)}")
    if age:
        lines.append(f"    age: {','.join(age)}")
    return "\n".join(lines) + "\n"


def check_fingerprints(fingerprints):
    bad = [fp for fp in fingerprints if not FINGERPRINT.match(fp)]
    if bad:
        raise UserError(f"not a full GPG fingerprint (40 hex digits): {', '.join(bad)}")


def check_age_recipients(recipients):
    bad = [r for r in recipients if not is_age_recipient(r)]
    if bad:
        raise UserError(f"not an age recipient (age1…): {', '.join(bad)}")

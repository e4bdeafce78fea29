"""What goes into a new secret file: its values, its text, generated ssh keypairs.

Contract: `values_from_flags` reads the values of --from-literal/--from-file
(kubectl's forms) into (stringData, data); `template` is the YAML text of a
new Secret (a placeholder key when it is to be filled in the editor); `dollars`
keeps a literal value literal through variable substitution; `ssh_keypair`
makes an ed25519 keypair whose private half is only ever in a private folder
(on tmpfs when there is one) that is removed as soon as it is read. The text
is returned, never written: the caller encrypts it (k8s.secrets.sops).

Only the standard library is imported at module level (render.py --help stays
fast); each function imports what it needs.
"""

import base64
import os

TEMPLATE_KEY = "key"  # what `secrets create --edit` offers to fill in when no value is given
TEMPLATE_VALUE = "replace-me"


def values_from_flags(args):
    """(stringData, data) from --from-literal/--from-file, kubectl style."""
    from ..core.files import read_bytes
    from ..core.object_names import config_key_problem
    from ..errors import UsageError

    string_data, data = {}, {}

    def add(key, value, where):
        if problem := config_key_problem(key):
            raise UsageError(f"{where}: key {key!r} {problem}")
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
        # A regular file of at most 1 MiB (what one Secret can hold): never a FIFO or a device.
        value = read_bytes(path, "secret value", name=f"--from-file {path}")
        add(key, value, "--from-file")
    return string_data, data


def dollars(text):
    """A literal value in a file that goes through variable substitution: `$` -> `$$`."""
    return text.replace("$", "$$")


def template(name, namespace, secret_type, string_data, data, placeholder):
    """The YAML text of a new Secret; `placeholder`: a key to fill in when no value is given."""
    from ..core import emit

    doc = {"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": name, "namespace": namespace}, "type": secret_type}
    if data:
        doc["data"] = data
    if string_data or placeholder or not data:
        doc["stringData"] = {k: dollars(v) for k, v in string_data.items()}
        if placeholder and not string_data:
            doc["stringData"] = {TEMPLATE_KEY: TEMPLATE_VALUE}
    text = emit.to_yaml([doc])
    return text[4:] if text.startswith("---\n") else text


def ssh_keypair(comment):
    """(private, public) of a new ed25519 keypair.

    ssh-keygen only writes keys to files: it gets a private 0700 folder (on
    /dev/shm when there is one), removed as soon as the keys are read (or
    SIGTERM/SIGHUP stops us), as for `sops edit`.
    """
    import subprocess
    import tempfile

    from ..core.files import read_text
    from ..errors import UserError
    from .sops import removed_on_exit

    folder = tempfile.mkdtemp(prefix="k8s-toolkit-ssh-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    with removed_on_exit(folder):
        path = os.path.join(folder, "key")
        try:
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path],
                           check=True, capture_output=True, stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise UserError("ssh-keygen not found: install openssh-client") from None
        except subprocess.CalledProcessError as err:
            raise UserError(f"ssh-keygen failed (exit status {err.returncode})") from None
        private = read_text(path, "key")
        public = read_text(path + ".pub", "key").strip()
        return private, public

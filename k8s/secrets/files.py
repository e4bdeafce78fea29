"""Secret files: which files under secrets/ are secrets, whether they are sops-encrypted, new ones.

Kubernetes Secrets are kept in git as sops-encrypted YAML, one or more per
secrets/NAME.yml, next to the .sops.yaml that names who can decrypt them.
Contract: `secret_files` lists them (or finds the ones named), `secret_name`
turns what a user typed into a valid Secret name, `unencrypted` and
`refuse_unencrypted` tell (or refuse) files that are not sops-encrypted,
`recipients_of` reads who can decrypt a file without decrypting it, and
`write_new` creates a file but never replaces one. Nothing here decrypts:
plaintext stays in memory (k8s.secrets.workspace) and never touches the disk.

Only the standard library is imported at module level (render.py --help stays
fast); each function imports what it needs.
"""

import os
import re

SECRETS_DIR = "secrets"
CONFIG_NAME = ".sops.yaml"
NOT_SECRET_FILES = {"README.md", CONFIG_NAME, ".gitignore", ".gitkeep"}
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")  # DNS-1123 subdomain


def secret_files(directory, names=None):
    """secrets/*.yml and *.yaml (sorted), or those of `names`.

    A missing named file is a usage error. An entry that is not a readable regular file
    (a dangling symlink, a symlink loop, a directory named NAME.yml, a FIFO, a file over
    the size limit) is an error, never skipped: all of them at once.
    """
    from ..core.files import check_entry
    from ..errors import UsageError, UserError, raise_all

    if names:
        paths, missing, errors = [], [], []
        for name in names:
            path = _path_of(directory, name)
            if not os.path.lexists(path):
                missing.append(path)
            elif problem := check_entry(path):
                errors.append(problem)
            else:
                paths.append(path)
        if missing:
            raise UsageError(f"no such secret file: {', '.join(missing)}")
        raise_all(errors)
        return paths
    if not os.path.isdir(directory):
        raise UserError(f"no {directory}/ folder: create a secret with `make {directory}/NAME.yml`")
    paths, errors = folder_files(directory, lambda f: f.endswith((".yml", ".yaml")) and not f.startswith("."))
    raise_all(errors)
    return paths


def folder_files(directory, wanted=lambda name: True, skip_dir=lambda name: False):
    """([paths], [UserError]) of the entries of `directory` whose name is `wanted`, sorted.

    Every wanted entry is a path or an error: a dangling symlink, a symlink loop, a FIFO,
    a file over the secret file limit, and a directory unless `skip_dir(name)` (then skipped).
    """
    import stat

    from ..core.files import check_entry
    from ..errors import UserError

    try:
        names = sorted(os.listdir(directory))
    except OSError as err:
        return [], [UserError(f"cannot read the folder: {err.strerror}", file=directory)]
    paths, errors = [], []
    for name in filter(wanted, names):
        path = os.path.join(directory, name)
        if skip_dir(name):
            try:
                if stat.S_ISDIR(os.stat(path).st_mode):
                    continue
            except OSError:
                pass  # dangling or looping: check_entry says which
        problem = check_entry(path)
        (errors if problem else paths).append(problem or path)
    return paths, errors


def _path_of(directory, name):
    """secrets/NAME.yml for NAME, NAME.yml or secrets/NAME.yml."""
    if os.sep in name or "/" in name:
        return name if name.endswith((".yml", ".yaml")) else f"{name}.yml"
    return os.path.join(directory, name if name.endswith((".yml", ".yaml")) else f"{name}.yml")


def secret_name(given, directory):
    """NAME of `NAME`, `NAME.yml` or `DIRECTORY/NAME.yml`; a usage error unless a valid Secret name.

    A Secret's name is a DNS-1123 subdomain, so it can never leave the secrets folder.
    """
    from ..errors import UsageError

    folder, name = os.path.split(given)
    if folder and os.path.normpath(folder) != os.path.normpath(directory):
        name = given  # another folder: refused below
    for suffix in (".yml", ".yaml"):
        if name.endswith(suffix):
            name = name[:-len(suffix)]
            break
    if len(name) > 253 or not NAME.match(name):
        raise UsageError(f"{given!r} is not a valid Secret name (lower case letters, digits, '-' and '.', "
                         "starting and ending with a letter or digit: a DNS-1123 subdomain)")
    return name


def unencrypted(paths):
    """[(path, reason)] of the files that are not sops-encrypted (README.md, .sops.yaml exempt)."""
    from . import sops
    from ..core.files import read_bytes
    from ..errors import UserError

    bad = []
    for path in paths:
        if os.path.basename(path) in NOT_SECRET_FILES or os.path.isdir(path):
            continue
        try:
            text = read_bytes(path, "secret file").decode("utf-8")
        except UnicodeDecodeError:
            bad.append((path, "binary, not sops-encrypted"))
            continue
        except UserError as err:  # not a regular file, too large, unreadable
            bad.append((path, err.message))
            continue
        reason = sops.not_encrypted_reason(text)
        if reason:
            bad.append((path, reason))
    return bad


def refuse_unencrypted(paths):
    """All the files of `paths` that are not sops-encrypted, as errors at once."""
    from ..errors import UserError, raise_all
    from .sops import MALFORMED

    raise_all([UserError(f"{reason}, so not readable as a sops-encrypted file; restore it from git",
                         file=path) if reason.startswith(MALFORMED) else
               UserError(f"not sops-encrypted ({reason}); refusing to use it: encrypt it with "
                         "`render.py secrets create`, never commit it", file=path)
               for path, reason in unencrypted(paths)])


def recipients_of(path):
    """Who can decrypt `path`, read from its sops metadata (nothing is decrypted)."""
    from . import sops

    from ..core.files import read_text

    return sops.recipients(sops.metadata(sops.load_encrypted(read_text(path, "secret file"))))


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

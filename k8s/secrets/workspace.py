"""The Workspace of one secrets command: secrets/, its .sops.yaml, the variables, sops, a Scrubber.

Contract: a Workspace is built from the command's arguments and reads nothing
until asked. `decrypt` gives a file's plaintext in memory only (sops reads and
writes it through pipes, see k8s.secrets.sops), `decode`/`load` turn it into
checked objects (k8s.secrets.objects), the `*_all` forms report the errors of
every file at once, and every value seen lands in `scrub`, so that any message
of the run can be scrubbed of them before it is shown.

Only the standard library is imported at module level (render.py --help stays
fast); each method imports what it needs.
"""

import os

from .files import CONFIG_NAME, SECRETS_DIR, refuse_unencrypted
from .masking import Scrubber
from .objects import decode


class Loaded:
    """The objects of one decrypted secret file (in memory only)."""

    def __init__(self, path, objects, meta):
        self.path = path
        self.objects = objects
        self.meta = meta


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

    def check_variables(self):
        """Read the variables now: a bad one (or a bad -n) is refused before any file is read."""
        return self.variables

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
        from ..core.files import read_text
        from ..errors import UserError

        refuse_unencrypted([path])
        meta = sops.metadata(sops.load_encrypted(read_text(path, "secret file")))
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

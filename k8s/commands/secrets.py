"""The `render.py secrets` commands: keys, create, edit, apply, list, rotate, check.

The shared work (files, decryption in memory, checks, masking) is in
`k8s.secrets`. Only the standard library is imported at module level so
`render.py --help` stays fast; each command imports what it needs.
"""

import argparse
import base64
import json
import os
import sys

from .options import cluster_options
from ..secrets.files import (KEY_NAME, LOCAL_ONLY, NAME, SECRETS_DIR, TEMPLATE_KEY, TEMPLATE_VALUE, Workspace, write_new,
                      as_data, decode, decoded_values, digest, out, refuse_unencrypted, secret_files,
                      unencrypted)

MAX_PAIRS = 64  # ssh keypairs of one secret: data-sync's replicas, with room to spare


# --- commands: keys ----------------------------------------------------------------------

def cmd_gen_gpg(args):
    from ..secrets import keys

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
    from ..secrets import keys

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
    from ..secrets import keys
    from ..errors import UserError

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
        try:
            with open(ws.config, encoding="utf-8") as f:
                current = f.read()
        except (OSError, UnicodeDecodeError) as err:
            raise UserError(f"cannot read: {getattr(err, 'strerror', None) or 'not UTF-8 text'}",
                            file=ws.config) from None
        if current == text:
            out(f"{ws.config} is up to date")
            return 0
        if not args.force:
            raise UserError(f"{ws.config} exists with other recipients; rerun with --force to "
                            "replace it, then `render.py secrets rotate`")
    missing = [fp for fp in pgp if not keys.has_public_key(fp)]
    tmp = f"{ws.config}.new"
    try:
        os.makedirs(ws.directory, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, ws.config)
    except OSError as err:
        raise UserError(f"cannot write: {err.strerror}", file=ws.config) from None
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
    from ..errors import UsageError, UserError

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
    from ..core import emit

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


def cmd_create(args):
    from ..secrets import sops
    from ..errors import UsageError, UserError

    ws = Workspace(args)
    name = secret_name(args.name, ws.directory)
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
    if edit:
        sops.require_terminal()  # before anything is written
    namespace = _dollars(args.namespace) if args.namespace else "$K8S_NAMESPACE"
    text = _template(name, namespace, args.type, string_data, data, placeholder=edit)
    version = ws.kube_version()
    try:
        decode(text, path, ws.variables, ws.scrub, namespace=ws.namespace(), version=version)
        ciphertext = ws.sops.encrypt(text.encode("utf-8"), path)
    except UserError as err:
        raise ws.scrub.error(err) from None
    write_new(path, ciphertext)
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


def cmd_ssh_keys(args):
    """New ed25519 keypairs (sshkey1/pubkey1, …) straight into an encrypted secret file.

    data-sync's replicas reach each other with these. ssh-keygen only writes
    keys to files: it gets a private 0700 folder (on /dev/shm when there is
    one), removed as soon as the keys are read (or SIGTERM/SIGHUP stops us),
    as for `sops edit`.
    """
    from ..errors import UsageError

    secret_name(args.name, getattr(args, "secrets_dir", None) or SECRETS_DIR)  # before any key is made
    if not 1 <= args.pairs <= MAX_PAIRS:
        raise UsageError(f"--pairs must be between 1 and {MAX_PAIRS}, not {args.pairs}")
    values = []
    for n in range(1, args.pairs + 1):
        private, public = _ssh_keypair(f"{args.name}-{n}")
        values += [f"sshkey{n}={private}", f"pubkey{n}={public}"]
    args.from_literal, args.from_file, args.edit, args.type = values, [], False, "Opaque"
    return cmd_create(args)


def _ssh_keypair(comment):
    import subprocess
    import tempfile

    from ..errors import UserError
    from ..secrets.sops import removed_on_exit

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
        with open(path, encoding="ascii") as f:
            private = f.read()
        with open(path + ".pub", encoding="ascii") as f:
            public = f.read().strip()
        return private, public


def _remove_if_template(ws, path, had_values):
    if not had_values and os.path.exists(path):
        os.remove(path)


def _say_created(ws, path, loaded):
    from ..secrets import sops

    for obj in loaded.objects:
        keys = sorted(set(obj.data.get("data") or {}) | set(obj.data.get("stringData") or {}))
        out(f"created {path}: {obj.kind} {obj.namespace}/{obj.name}, keys: {', '.join(keys) or '-'}")
    out(f"encrypted for {', '.join(sops.recipients(loaded.meta))}")
    name = os.path.splitext(os.path.basename(path))[0]
    out(f"apply it with `make {ws.directory}/{name}`; change it with `render.py secrets edit {name}`")


def cmd_edit(args):
    from ..secrets import sops
    from ..errors import UserError

    sops.require_terminal()
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
    from ..cluster.apply import Engine

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
    from ..secrets import sops
    from ..errors import UserError

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
            row["objects"] = [_clear_row(doc) for doc in docs if isinstance(doc, dict) and "kind" in doc]
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


def _clear_row(doc):
    """What an encrypted document shows without decrypting: kind, name, namespace, keys.

    Mistyped fields show as `?` (decrypting, or `apply`, names what is wrong with them).
    """
    def text(value):
        return value if isinstance(value, str) else "?"

    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    keys = set()
    for field in ("data", "stringData"):
        if isinstance(doc.get(field), dict):
            keys |= {str(key) for key in doc[field]}
    return {"kind": text(doc.get("kind")), "name": text(meta.get("name")),
            "namespace": None if meta.get("namespace") is None else text(meta["namespace"]),
            "keys": sorted(keys), "cluster": None}


def _sync_row(obj, cluster, ws):
    from ..cluster.connection import ApiError
    from ..errors import UserError

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
    from ..errors import UserError, raise_all

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
    from ..secrets import sops

    with open(path, encoding="utf-8") as f:
        return sops.recipients(sops.metadata(sops.load_encrypted(f.read())))


def cmd_check(args):
    """Every file in secrets/ (or in each folder given, or each file given) is sops-encrypted."""
    from ..errors import UserError, raise_all

    directory = getattr(args, "secrets_dir", None) or SECRETS_DIR
    given = args.paths or ([directory] if os.path.isdir(directory) else [])
    paths, errors = [], []
    for path in given:
        if os.path.isdir(path):
            try:
                paths += [os.path.join(path, f) for f in sorted(os.listdir(path))
                          if os.path.isfile(os.path.join(path, f))]
            except OSError as err:
                errors.append(UserError(f"cannot read the folder: {err.strerror}", file=path))
        elif os.path.isfile(path):
            paths.append(path)
        else:
            errors.append(UserError("no such file or folder", file=path))
    raise_all(errors)
    bad = unencrypted(paths)
    for path, reason in bad:
        print(f"error: {path}: not sops-encrypted ({reason})", file=sys.stderr)
    if not bad:
        out(f"{len(paths)} files checked, all sops-encrypted")
    return 1 if bad else 0


# --- command line ------------------------------------------------------------------------

def register(commands):
    """Add `secrets SUBCOMMAND …` to the subparsers action `commands` of render.py."""
    parser = commands.add_parser("secrets", help="sops-encrypted Secrets in secrets/: keys, create, "
                                                 "apply, list, rotate")
    parser.add_argument("--dir", dest="secrets_dir", default=SECRETS_DIR, metavar="DIR",
                        help="folder of the encrypted files and their .sops.yaml (default: %(default)s)")
    sub = parser.add_subparsers(dest="secrets_command", metavar="SUBCOMMAND")
    sub.required = True

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
                   help="open $EDITOR even with values given (needs a terminal on stdin)")
    p.add_argument("--no-edit", dest="edit", action="store_false")
    p.set_defaults(run=cmd_create)

    p = sub.add_parser("ssh-keys", help="create secrets/NAME.yml holding new ed25519 ssh keypairs "
                                        "(sshkey1/pubkey1, ...), encrypted")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--pairs", type=int, default=2,
                   help=f"how many keypairs, 1 to {MAX_PAIRS} (default: %(default)s)")
    p.add_argument("--namespace", help="default: $K8S_NAMESPACE, substituted when applied")
    p.set_defaults(run=cmd_ssh_keys)

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
    cluster_options(p, applying=False)
    p.set_defaults(run=cmd_apply)

    p = sub.add_parser("list", help="each file: its keys, recipients and whether the cluster has it")
    p.add_argument("--no-cluster", action="store_true", help="do not decrypt or ask the cluster")
    p.add_argument("--allow-kind", action="append", metavar="KIND", help=argparse.SUPPRESS)
    cluster_options(p, applying=False)
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


"""The secret-file commands of `render.py secrets`: create, ssh-keys, edit, apply, list, rotate, check.

Contract: each `cmd_*(args)` takes the parsed arguments of its subcommand
(wired in k8s.commands.secrets), prints what it did and returns the exit code.
The work is in k8s.secrets: files (which, encrypted or not), workspace
(decryption in memory), objects (checks), new (a new file's text), listing
(the rows of `list`). Plaintext never touches the disk, and what is printed
has been through the run's Scrubber or names keys only, never values.

Only the standard library is imported at module level (render.py --help stays
fast); each command imports what it needs.
"""

import json
import os
import sys

from .. import steps
from ..secrets.files import (SECRETS_DIR, recipients_of, refuse_unencrypted, secret_files, secret_name,
                             unencrypted, write_new)
from ..secrets.listing import clear_row, sync_row
from ..secrets.new import dollars, ssh_keypair, template, values_from_flags
from ..secrets.objects import LOCAL_ONLY, as_data, decode
from ..secrets.workspace import Workspace

MAX_PAIRS = 64  # ssh keypairs of one secret: data-sync's replicas, with room to spare


def out(text=""):
    print(text, flush=True)


# --- commands: files ---------------------------------------------------------------------

def _interactive():
    return sys.stdin.isatty() and sys.stdout.isatty()


def cmd_create(args):
    from ..secrets import sops
    from ..errors import UsageError, UserError

    ws = Workspace(args)
    name = secret_name(args.name, ws.directory)
    path = os.path.join(ws.directory, f"{name}.yml")
    if os.path.exists(path):
        raise UserError(f"exists and is never overwritten; change it with `render.py secrets edit {name}` "
                        f"or set keys with `make secret_set NAME={name} SET=KEY=@FILE`", file=path)
    string_data, data = values_from_flags(args)  # a mistyped flag before a missing config
    ws.require_config()
    for value in list(string_data.values()) + list(data.values()):
        ws.scrub.add(value)
    edit = args.edit if args.edit is not None else (not string_data and not data and _interactive())
    if not string_data and not data and not edit:
        raise UsageError("no terminal to edit the secret in: give its values with "
                         "--from-literal KEY=VALUE or --from-file KEY=PATH (or --edit)")
    if edit:
        sops.require_terminal()  # before anything is written
    namespace = dollars(args.namespace) if args.namespace else "$K8S_NAMESPACE"
    text = template(name, namespace, args.type, string_data, data, placeholder=edit)
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
        private, public = ssh_keypair(f"{args.name}-{n}")
        values += [f"sshkey{n}={private}", f"pubkey{n}={public}"]
    args.from_literal, args.from_file, args.edit, args.type = values, [], False, "Opaque"
    return cmd_create(args)

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
    ws.check_variables()  # even when there is nothing to apply
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
        run = engine.apply([objects], dry_run=bool(args.dry_run))
    owner = _owners(args, ws)
    for outcome in run.outcomes:
        if outcome.result == "failed" and "conflict" in outcome.message.lower():
            outcome.message += ("; another field manager (e.g. `kubectl create`) set these fields: "
                                "rerun with --force-conflicts to take them over")
        component = owner.get((outcome.obj.namespace, outcome.obj.name))
        if outcome.result == "failed" and component and f'namespaces "{outcome.obj.namespace}" not found' \
                in outcome.message:
            outcome.message += (f"; it belongs to component {component}: `make {component}` applies it "
                                "after its namespace")
        outcome.message = ws.scrub(outcome.message)
        outcome.response = None
    if steps.structured(args):
        steps.print_data(args, json.loads(run.as_json()))
    else:
        for outcome in run.outcomes:
            out(outcome.line())
        out(run.summary())
    return 1 if run.failed else 0


def _owners(args, ws):
    """(namespace, name) -> the component whose own Secret that is (secrets.bundled)."""
    from ..core import components
    from ..errors import UserError
    from ..secrets.bundled import owners

    try:
        return owners(components.discover(getattr(args, "manifests", "manifests"), ws.variables))
    except UserError:  # no manifests here, or broken ones: the hint is only a hint
        return {}


def cmd_list(args):
    from ..core.files import read_text
    from ..secrets import sops
    from ..errors import UserError

    ws = Workspace(args)
    ws.check_variables()
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
            docs = sops.load_encrypted(read_text(path, "secret file"))
            meta = sops.metadata(docs)
            row["recipients"] = sops.recipients(meta)
            row["objects"] = [clear_row(doc) for doc in docs if isinstance(doc, dict) and "kind" in doc]
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
            row["objects"] = [sync_row(obj, cluster, ws) for obj in loaded.objects]
    finally:
        if cluster is not None and not isinstance(cluster, UserError):
            cluster.close()
    if steps.structured(args):
        steps.print_data(args, rows)
    else:
        for row in rows:
            _print_row(row)
    return 1 if failed else 0


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
        before = recipients_of(path)
        try:
            ws.sops.updatekeys(path)
            if args.new_data_key:
                ws.sops.rotate(path)
        except UserError as err:
            errors.append(err)
            continue
        after = recipients_of(path)
        change = [f"+{r}" for r in after if r not in before] + [f"-{r}" for r in before if r not in after]
        note = " (new data key)" if args.new_data_key else ""
        out(f"{path}: {'recipients ' + ', '.join(change) if change else 'recipients unchanged'}{note}")
    raise_all(errors)
    if paths and not args.new_data_key:
        out("a removed key holder could still read older copies of the data key: add --new-data-key "
            "to re-encrypt every value with a new one")
    return 0


def cmd_check(args):
    """Every file in secrets/ (or in each folder given, or each file given) is sops-encrypted."""
    from ..core.files import check_entry
    from ..errors import UserError, raise_all
    from ..secrets.files import folder_files

    directory = getattr(args, "secrets_dir", None) or SECRETS_DIR
    given = args.paths or ([directory] if os.path.isdir(directory) else [])
    paths, errors = [], []
    for path in given:
        if os.path.isdir(path):
            # Every entry is checked: a dangling symlink, a loop or a directory NAME.yml is an error.
            found, problems = folder_files(path, skip_dir=lambda f: not f.endswith((".yml", ".yaml")))
            paths += found
            errors += problems
        elif not os.path.lexists(path):
            errors.append(UserError("no such file or folder", file=path))
        elif problem := check_entry(path):
            errors.append(problem)
        else:
            paths.append(path)
    raise_all(errors)
    bad = unencrypted(paths)
    for path, reason in bad:
        print(f"error: {path}: not sops-encrypted ({reason})", file=sys.stderr)
    if not bad:
        out(f"{len(paths)} files checked, all sops-encrypted")
    return 1 if bad else 0

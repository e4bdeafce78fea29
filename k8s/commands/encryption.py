"""The `render.py encryption` (key, install, rotate) and `encryption-config` commands.

The keys are in `k8s.nodes.encryption_keys`, their sops-encrypted file in
`k8s.nodes.encryption`, the EncryptionConfiguration in `k8s.nodes.encryption_config`,
copying it to a node in `k8s.nodes.node_files`; the rewrite of every object in
`k8s.cluster.rewrite`. Only the standard library is imported at module level so
`render.py --help` stays fast; each command imports what it needs.
"""

import os
import sys

from ..nodes.encryption import KeyFile
from ..nodes.encryption_config import DEFAULTS, MASK, RESTART_HINT, config_path, config_text, resources
from ..nodes.encryption_keys import (KEY_BYTES, KEY_FILE, Key, add, check_provider, describe_keys, drop,
                                     generate, name_order, promote)
from ..nodes.node_files import copy_to_node
from .. import steps
from ..errors import UserError
from .options import cluster_options, target_nodes

COMMANDS = ("encryption", "encryption-config")
STEPS = ("add", "promote", "rewrite", "drop")


# --- commands -------------------------------------------------------------------------------------

def _workspace(args):
    from ..secrets.workspace import Workspace

    return Workspace(args)


def _variables(ws):
    return dict(ws.variables)


def out(text=""):
    print(text, flush=True)


def cmd_key(args):
    ws = _workspace(args)
    keyfile = KeyFile(ws)
    v = _variables(ws)
    provider = check_provider(v.get("ENCRYPTION_PROVIDER") or DEFAULTS["ENCRYPTION_PROVIDER"])
    if keyfile.exists():
        labels, _ = keyfile.labels()
        out(f"reusing {keyfile.path} (none created): keys {', '.join(f'{p}:{n}' for p, n in labels)}")
        if labels and labels[0][0] != provider:
            out(f"its first key is {labels[0][0]}, ENCRYPTION_PROVIDER is {provider}: the next "
                "`render.py encryption rotate add` makes a key for " + provider)
        return 0
    ws.require_config()
    key = generate(provider)
    ws.scrub.add(key.secret)
    try:
        keyfile.create([key])
    except UserError as err:
        raise ws.scrub.error(err) from None
    del key
    labels, _ = keyfile.labels()
    out(f"created {keyfile.path}: key {labels[0][0]}:{labels[0][1]} ({KEY_BYTES} random bytes), "
        "sops-encrypted")
    out("commit it; next: `NODE=<control-plane node> make encryption_install` on each one, give kubeadm "
        "build/kubeadm/cluster-configuration.yaml (`make encryption_config` or `make render`; its NOTES.txt "
        "says how), "
        "restart kube-apiserver, then `render.py encryption rotate rewrite` encrypts what is stored")
    return 0


def cmd_config(args):
    from ..core import emit
    from ..nodes import kubeadm_patch

    ws = _workspace(args)
    keyfile = KeyFile(ws)
    v = _variables(ws)
    path = config_path(v)
    names = resources(v.get("ENCRYPTION_RESOURCES") or DEFAULTS["ENCRYPTION_RESOURCES"])
    if args.show_key:
        keys, _ = keyfile.load()
        print("warning: the output holds the encryption key in clear; do not store it",
              file=sys.stderr, flush=True)
        sys.stdout.write(config_text(keys, names, path))
        return 0
    labels, _ = keyfile.labels()
    keys = [Key(p, n, MASK) for p, n in labels]
    version = steps.kube_version(args, v)
    v["KUBE_VERSION"] = version
    patch = emit.to_yaml([kubeadm_patch.patch(v, version)])
    paths = kubeadm_patch.write(args.out, v, version)
    folder = os.path.join(args.out, kubeadm_patch.FOLDER)
    sys.stdout.write(config_text(keys, names, path,
                                 note="keys masked: `make encryption_install` copies the real file"))
    sys.stdout.write(f"# wrote {', '.join(paths)}: the EncryptionConfiguration never goes there\n"
                     f"# {folder}/{kubeadm_patch.PATCH_FILE}, for Kubernetes {version} (encryption at rest, "
                     f"audit, Pod Security admission; {kubeadm_patch.NOTES_FILE} says how kubeadm takes it):\n"
                     + patch)
    return 0


def _install(ws, keyfile, nodes, dry_run):
    v = _variables(ws)
    path = config_path(v)
    names = resources(v.get("ENCRYPTION_RESOURCES") or DEFAULTS["ENCRYPTION_RESOURCES"])
    if dry_run:
        labels, _ = keyfile.labels()
        for node in nodes:
            copy_to_node(node, path, b"", v, dry_run=True)
        print(f"(dry run: the EncryptionConfiguration with keys {', '.join(f'{p}:{n}' for p, n in labels)} "
              "would go through ssh's standard input; nothing was copied)", file=sys.stderr, flush=True)
        return
    keys, _ = keyfile.load()
    content = config_text(keys, names, path).encode("utf-8")
    try:
        for node in nodes:
            copy_to_node(node, path, content, v, scrub=ws.scrub)
            out(f"{node}: {path} (root, mode 0600): keys {describe_keys(keys)}; "
                f"{keys[0].label} encrypts {', '.join(names)}")
    except UserError as err:
        raise ws.scrub.error(err) from None
    finally:
        del content


def cmd_install(args):
    target_nodes(args, "encryption_install")
    ws = _workspace(args)
    keyfile = KeyFile(ws)
    _install(ws, keyfile, args.nodes, args.dry_run)
    if not args.dry_run:
        out(RESTART_HINT)
    return 0


def cmd_rotate(args):
    ws = _workspace(args)
    keyfile = KeyFile(ws)
    if args.step == "rewrite":
        return _rotate_rewrite(args, ws, keyfile)
    keys, rewritten = keyfile.load()
    v = _variables(ws)
    if args.step == "add":
        changed = add(keys, v.get("ENCRYPTION_PROVIDER") or DEFAULTS["ENCRYPTION_PROVIDER"])
        new = changed[1]
        ws.scrub.add(new.secret)
        what = (f"add key {new.label} second, after {keys[0].label}: every apiserver can decrypt with "
                "it, none encrypts with it yet")
        after = "next step: `render.py encryption rotate promote`"
    elif args.step == "promote":
        changed = promote(keys)
        if changed is None:
            out(f"nothing to promote ({describe_keys(keys)}): `add` a key first" if len(keys) == 1 else
                f"nothing to promote: {keys[0].label} is already first; next: `rewrite`")
            return 0
        what = f"make {changed[0].label} the first key: it encrypts from now on"
        after = "next step: `render.py encryption rotate rewrite`"
    else:
        changed = drop(keys)
        if changed is None:
            out(f"nothing to drop: {keys[0].label} is the only key")
            return 0
        if rewritten != keys[0].name and not args.force:
            raise UserError(f"`render.py encryption rotate rewrite` has not completed with "
                            f"{keys[0].label} first: objects still encrypted with "
                            f"{', '.join(k.label for k in keys[1:])} would become unreadable "
                            "(--force drops anyway)")
        what = f"drop {', '.join(k.label for k in keys[1:])}; keep {keys[0].label}"
        after = ("etcd backups taken before the rewrite need the dropped key: it stays in the git "
                 f"history of {keyfile.path}")
    if args.step == "drop":
        out("first back up etcd with the new key in use (kubernetes.io: remove the old key only after "
            "that backup and the rewrite)")
    if args.dry_run:
        out(f"would {what}")
        out(f"then install on every control-plane node ({_node_hint(args.node)}) and restart "
            "every kube-apiserver")
        out(after)
        out(f"(dry run: {keyfile.path} not changed, nothing installed)")
        return 0
    keyfile.save(changed, rewritten)
    out(f"{keyfile.path}: {what}; keys now {describe_keys(changed)}")
    if args.node:
        try:
            _install(ws, keyfile, args.node, dry_run=False)
        except UserError:
            print(f"error: {keyfile.path} was changed, but not installed everywhere: run "
                  "`render.py encryption install NODE…` for every control-plane node", file=sys.stderr)
            raise
        out(RESTART_HINT)
    else:
        out(f"next: install it on every control-plane node ({_node_hint(None)}) and restart every "
            "kube-apiserver")
    out(after)
    return 0


def _node_hint(nodes):
    if nodes:
        return ", ".join(nodes)
    return "NODE=<node> make encryption_install"


def _rotate_rewrite(args, ws, keyfile):
    from ..cluster.connection import Cluster
    from ..cluster.rewrite import locate, rewrite_objects

    v = _variables(ws)
    names = resources(v.get("ENCRYPTION_RESOURCES") or DEFAULTS["ENCRYPTION_RESOURCES"])
    labels, _ = keyfile.labels()
    first = labels[0] if labels else None
    if len(labels) > 1 and first[1] != max((n for _, n in labels), key=name_order):
        raise UserError(f"the newest key is not first ({', '.join(f'{p}:{n}' for p, n in labels)}): "
                        "rewriting now would encrypt again with the old key; run `promote` first")
    context = args.context or v.get("ADMIN_CTX") or None
    with Cluster(args.kubeconfig, context) as cluster:
        targets = [locate(cluster, name) for name in names]
        results = []
        for target in targets:
            result = rewrite_objects(cluster, target, dry_run=args.dry_run, scrub=ws.scrub)
            results.append(result)
            for line in result.failed:
                print(f"error: {line}", file=sys.stderr, flush=True)
            out(result.line(args.dry_run))
    if args.dry_run:
        out(f"(dry run: a PUT of each unchanged object would store it again with {first[0]}:{first[1]}, "
            "once every kube-apiserver runs with it first)")
        return 0
    failed = sum(len(r.failed) for r in results)
    if failed:
        out(f"{failed} object{'s' if failed != 1 else ''} not rewritten: run the rewrite again "
            "before `drop`")
        return 1
    keys, _ = keyfile.load()
    keyfile.save(keys, rewritten=keys[0].name)
    total = sum(r.rewritten for r in results)
    out(f"{total} object{'s' if total != 1 else ''} stored again with {keys[0].label}; "
        + ("next: `render.py encryption rotate drop`" if len(keys) > 1 else "all encrypted"))
    return 0


# --- command line -----------------------------------------------------------------------------------

def register(commands):
    """Add `encryption …` and `encryption-config` to render.py's sub-parsers action `commands`."""

    def secrets_dir(p):
        p.add_argument("--dir", dest="secrets_dir", default="secrets", metavar="DIR",
                       help="folder of the sops-encrypted files and .sops.yaml (default: %(default)s)")

    p = commands.add_parser("encryption-config", help="write the kubeadm patch (encryption at rest among "
                                                      "it) into build/kubeadm/ and show the config, keys masked")
    p.add_argument("--out", metavar="DIR", default="build",
                   help="the kubeadm files go to DIR/kubeadm/ (default: %(default)s)")
    p.add_argument("--show-key", action="store_true",
                   help="print the real EncryptionConfiguration, keys in clear, and nothing else")
    secrets_dir(p)
    p.set_defaults(run=cmd_config)

    parser = commands.add_parser("encryption", help="etcd encryption at rest: key, install, rotate")
    sub = parser.add_subparsers(dest="encryption_command", metavar="SUBCOMMAND")
    sub.required = True

    p = sub.add_parser("key", help=f"create (or reuse) secrets/{KEY_FILE}, sops-encrypted")
    secrets_dir(p)
    p.set_defaults(run=cmd_key)

    p = sub.add_parser("install", help="copy the EncryptionConfiguration to control-plane nodes over ssh")
    p.add_argument("nodes", nargs="*", metavar="NODE", help="control-plane node(s) to ssh to (NODE= through make)")
    p.add_argument("--dry-run", action="store_true", help="print the ssh command, copy nothing")
    secrets_dir(p)
    p.set_defaults(run=cmd_install)

    p = sub.add_parser("rotate", help="one step of the key rotation: add, promote, rewrite, drop")
    p.add_argument("step", choices=STEPS, metavar="STEP", help=f"one of {', '.join(STEPS)}")
    p.add_argument("--dry-run", action="store_true", help="say what the step would do, change nothing")
    p.add_argument("--node", action="append", metavar="NODE",
                   help="after add, promote or drop: install the new config on this node (repeatable)")
    p.add_argument("--force", action="store_true", help="drop even though no rewrite was recorded")
    secrets_dir(p)
    cluster_options(p, applying=False)
    p.set_defaults(run=cmd_rotate)
    return parser


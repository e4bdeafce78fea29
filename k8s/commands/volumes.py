"""The `render.py persistent` and `persistent-dirs` commands.

`persistent` validates and applies the PersistentVolumes and claims that
`k8s.nodes.volumes` renders from volumes/ (with --prune it deletes those the layout
no longer has); `persistent-dirs` creates a node's volume directories over
ssh. Only the standard library is imported at module level so `render.py
--help` stays fast; each command imports what it needs.
"""

import shlex
import sys

from .. import steps
from ..errors import UsageError, raise_all
from ..nodes.volumes import COMPONENT, load, mkdir_command, render, select_nodes
from .options import cluster_options, dry_run

COMMANDS = ("persistent", "persistent-dirs")
DEFAULT_DIR = "volumes"


# --- commands ----------------------------------------------------------------

def register(commands):
    """Add `persistent` and `persistent-dirs` to the CLI."""
    p = commands.add_parser(
        "persistent", help="create or update the node-local PersistentVolumes (and claims) of volumes/ "
                           "on every node of K8S_NODES, in one run")
    p.add_argument("nodes", nargs="*", metavar="NODE", help="only these nodes of K8S_NODES (default: all)")
    p.add_argument("--volumes", default=DEFAULT_DIR, metavar="DIR",
                   help="folder with layout.yaml and claims.yaml (default: %(default)s)")
    p.add_argument("--check-nodes", action="store_true",
                   help="first check that the cluster has every node, with a matching hostname label")
    dry_run(p, client="print the objects (validated for $KUBE_VERSION), contact no cluster")
    p.add_argument("--force-conflicts", action="store_true",
                   help="take over fields owned by other field managers")
    p.add_argument("--prune", action="store_true",
                   help="delete the PVs (of these nodes) and claims this command applied that the layout "
                        "no longer has; a PV bound to a claim is kept")
    cluster_options(p, applying=False)
    p.set_defaults(run=cmd_persistent)

    p = commands.add_parser(
        "persistent-dirs", help="create the volume directories of volumes/layout.yaml on a node, "
                                "over one ssh connection")
    p.add_argument("nodes", nargs="*", metavar="NODE", help="node(s) of K8S_NODES to set up")
    p.add_argument("--all", action="store_true", help="every node of K8S_NODES")
    p.add_argument("--volumes", default=DEFAULT_DIR, metavar="DIR",
                   help="folder with layout.yaml (default: %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="print the ssh command, do not run it")
    p.set_defaults(run=cmd_persistent_dirs)


def cmd_persistent(args):
    from ..core import emit, order, validate
    from ..cluster.apply import Engine, body
    from ..cluster.connection import Cluster

    variables = steps.read_values(args)
    layout = load(args.volumes, variables)
    nodes = select_nodes(layout, args.nodes)
    objects = render(layout, nodes)
    if args.dry_run == "client":
        report = validate.validate([(o.data, o.source) for o in objects], steps.kube_version(args, variables))
        raise_all(report.errors)
        dump = emit.to_json if args.output == "json" else emit.to_yaml
        sys.stdout.write(dump([body(o) for o in objects]))
        return 0
    context = args.context or variables.get("ADMIN_CTX") or None
    with Cluster(args.kubeconfig, context, pool_size=args.parallel) as cluster:
        if args.check_nodes:
            from ..nodes import labels as node_labels

            raise_all(node_labels.check_hostnames(cluster, nodes))
        version = args.kube_version or cluster.version()
        report = validate.validate([(o.data, o.source) for o in objects], version)
        raise_all(report.errors)
        engine = Engine(lambda component: cluster, parallel=args.parallel,
                        force=args.force_conflicts, wait=False, timeout=args.timeout,
                        out=sys.stdout if args.output == "text" else None)
        run = engine.apply(order.tiers(objects, [COMPONENT]), dry_run=bool(args.dry_run))
        if args.prune and not run.failed:
            from ..nodes.volume_prune import prune

            run.outcomes.extend(prune(engine, cluster, objects, nodes, dry_run=bool(args.dry_run)).outcomes)
        return steps.finish(args, run)


def cmd_persistent_dirs(args):
    from ..nodes import remote

    variables = steps.read_values(args)
    layout = load(args.volumes, variables, need_claims=False)
    if args.all == bool(args.nodes):
        raise UsageError("name the node to set up (NODE=kube1.example.com make persistent_dirs), "
                         "or --all for every node of K8S_NODES")
    nodes = select_nodes(layout, args.nodes)
    sudo = remote.sudo_words(variables)
    for node in nodes:
        command = mkdir_command(layout, node, sudo)
        if args.dry_run:
            print(shlex.join(remote.ssh_argv(node, command, variables)))
            continue
        remote.run(node, command, variables)
        count = len({path for path, _, _ in layout.directories(node)})
        print(f"{node}: {count} directories under {layout.root}")
    return 0

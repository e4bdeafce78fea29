"""`node-labels`: the labels of volumes/nodes.yaml on the cluster's nodes (labels only)."""

from .. import steps
from ..errors import UserError, raise_all
from .options import cluster_options, dry_run


def register(commands):
    """Add `node-labels` to the CLI."""
    p = commands.add_parser(
        "node-labels", help="apply the node labels of volumes/nodes.yaml (server-side apply, labels only; "
                            "labels dropped from the file are removed)")
    p.add_argument("--volumes", default="volumes", metavar="DIR",
                   help="folder with nodes.yaml (default: %(default)s)")
    dry_run(p)
    p.add_argument("--force-conflicts", action="store_true",
                   help="take over labels that other field managers set to other values")
    cluster_options(p, applying=False)
    p.set_defaults(run=cmd_node_labels)


def cmd_node_labels(args):
    from ..cluster.connection import Cluster
    from ..nodes.labels import NODES_FILE, apply_labels, list_nodes, load, plan

    variables = steps.read_values(args)
    wanted, lines = load(args.volumes, variables)
    context = args.context or variables.get("ADMIN_CTX") or None
    with Cluster(args.kubeconfig, context, pool_size=args.parallel) as cluster:
        nodes = list_nodes(cluster)
        path = f"{args.volumes.rstrip('/')}/{NODES_FILE}"
        raise_all([UserError(f"node {name} is not in the cluster (context {cluster.context}; it has "
                             f"{', '.join(sorted(nodes)) or 'no nodes'})", file=path, line=lines.get(name))
                   for name in wanted if name not in nodes])
        run = apply_labels(cluster, plan(wanted, nodes), nodes, force=args.force_conflicts,
                           dry_run=bool(args.dry_run), parallel=args.parallel,
                           say=(lambda text: print(text, flush=True)) if args.output == "text" else None)
    return steps.finish(args, run)

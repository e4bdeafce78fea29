"""`check`: warn when NetworkPolicies exist or are about to be applied while no agent enforces them."""

import json
import sys

from .. import steps
from .options import cluster_options


def register(commands):
    """Add `check` to render.py's subcommands."""
    p = commands.add_parser("check", help="warn when NetworkPolicies exist or are about to be "
                                          "applied while no agent enforces them")
    p.add_argument("components", nargs="*", metavar="COMPONENT", help="default: all")
    cluster_options(p, applying=False)
    p.set_defaults(run=cmd_check)
    return p


def cmd_check(args):
    """Render the components for the cluster's version and report on policy enforcement.

    The warning goes to stderr as `warning: …`; the all-clear note to stdout. Exit 0 either
    way (a warning is not a failure); render and validation errors exit 1 as elsewhere.
    """
    from ..cluster.connection import Cluster
    from ..cluster.netpol import enforcement

    v = steps.read_values(args)
    context = args.context or v.get("ADMIN_CTX") or None
    with Cluster(args.kubeconfig, context, pool_size=getattr(args, "parallel", 4)) as cluster:
        version = args.kube_version or cluster.version()
        _, _, objects, _, _ = steps.render_and_validate(args, variable_values=v, version=version)
        warning, note = enforcement(cluster, objects)
    if getattr(args, "output", "text") == "json":
        print(json.dumps({"warning": warning, "note": note}))
    elif warning:
        print(f"warning: {warning}", file=sys.stderr)
    else:
        print(note)
    return 0

"""`check`: the preflight (k8s.cluster.preflight) against the cluster, one line per check."""

import sys

from .. import steps
from .options import cluster_options


def register(commands):
    """Add `check` to render.py's subcommands."""
    p = commands.add_parser("check", help="preflight: POD_CIDR against the cluster's podSubnet, component "
                                          "version ranges, metrics-server's kubelet TLS, retired components, "
                                          "NetworkPolicy enforcement")
    p.add_argument("components", nargs="*", metavar="COMPONENT", help="default: what `install` would apply")
    cluster_options(p, applying=False)
    p.set_defaults(run=cmd_check)
    return p


def cmd_check(args):
    """Render the components for the cluster's version and run every preflight check.

    Notes go to stdout, `warning: …` lines to stderr, errors to stderr as `error: …` with
    exit 1 (a warning is not a failure). `-o json` prints {"findings": [{check, level,
    text}], "warning", "note"} (the last two: the NetworkPolicy line, as before) and exits
    1 on an error. Render and validation errors exit 1 as elsewhere.
    """
    from ..cluster import preflight
    from ..cluster.connection import Cluster

    v = steps.read_values(args)
    context = args.context or v.get("ADMIN_CTX") or None
    named = set(args.components or [])
    with Cluster(args.kubeconfig, context, pool_size=getattr(args, "parallel", 4)) as cluster:
        version = args.kube_version or cluster.version()
        facts = preflight.Facts(cluster)
        preflight.resolve_metrics_tls(v, facts, needed=not named or "metrics-server" in named)
        selected, skipped, objects, _, version = steps.render_and_validate(
            args, variable_values=v, version=version, only_install=not named)
        findings = preflight.run(facts, v, preflight.Selection(selected, skipped, named, version,
                                                               install=not named), objects, "check")
    if steps.structured(args):
        policies = [f for f in findings if f.check == "network-policies"]
        steps.print_data(args, ({
            "findings": [{"check": f.check, "level": f.level, "text": f.text} for f in findings],
            "warning": next((f.text for f in policies if f.level == "warning"), None),
            "note": next((f.text for f in policies if f.level == "note"), None)}))
        return 1 if any(f.level == "error" for f in findings) else 0
    preflight.enforce(findings, notes=sys.stdout)
    return 0

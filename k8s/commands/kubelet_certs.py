"""`render.py kubelet-certs approve|enable`: kubelet serving certificates the cluster CA signs.

    approve            review the pending kubelet-serving CSRs; approve those that ask for
                       the requesting node's own names and addresses (k8s.cluster.serving_certs)
    enable [NODE…]     the kubeadm way: serverTLSBootstrap: true in kube-system/kubelet-config
                       and, over ssh, in each node's /var/lib/kubelet/config.yaml with kubelet
                       restarted (k8s.nodes.kubelet_config), for NODEs or every node of
                       K8S_NODES; then approve the CSRs the restarted kubelets send

Only the standard library is imported at module level so `render.py --help` stays fast.
"""

import sys
import time

from .. import steps
from ..errors import UsageError, UserError
from .options import dry_run, positive

POLL = 1.0  # seconds between two looks for the restarted kubelets' CSRs


def out(text=""):
    print(text, flush=True)


def _cluster(args, variables):
    from ..cluster.connection import Cluster

    return Cluster(args.kubeconfig, args.context or variables.get("ADMIN_CTX") or None)


def _approve(cluster, dry_run, shown):
    """One approve pass; prints each CSR's line once over the whole run (`shown`: names printed)."""
    from ..cluster import serving_certs

    verdicts = serving_certs.approve(cluster, dry_run=dry_run)
    for verdict in verdicts:
        if verdict.name not in shown:
            shown.add(verdict.name)
            out(verdict.line(dry_run))
    return verdicts


def cmd_approve(args):
    variables = steps.read_values(args)
    dry = bool(args.dry_run)
    with _cluster(args, variables) as cluster:
        verdicts = _approve(cluster, dry, set())
    if not verdicts:
        out("no kubelet-serving CSR is pending")
        return 0
    approved = sum(v.approve for v in verdicts)
    out(f"{approved} approved{' (server dry run)' if dry else ''}, {len(verdicts) - approved} left pending")
    return 0


def cmd_enable(args):
    from ..cluster import serving_certs
    from ..nodes import kubelet_config

    variables = steps.read_values(args)
    nodes = args.nodes or (variables.get("K8S_NODES") or "").split()
    if not nodes:
        raise UsageError("no nodes: set K8S_NODES or name them (render.py kubelet-certs enable NODE…)")
    path = kubelet_config.config_path(variables)
    dry = bool(args.dry_run)
    note = " (server dry run)" if dry else ""
    with _cluster(args, variables) as cluster:
        known = serving_certs.node_names(cluster)
        missing = [n for n in nodes if n not in known]
        if missing:
            raise UserError(f"node {', '.join(missing)} is not in the cluster (context {cluster.context}; it has "
                            f"{', '.join(sorted(known)) or 'no nodes'}): K8S_NODES must name the cluster's nodes")
        out(f"configmap/kubelet-config {serving_certs.enable(cluster, dry)}{note}: new and upgraded nodes "
            "get serverTLSBootstrap: true")
        restarted = []
        for node in nodes:
            result = kubelet_config.enable(node, variables, dry_run=dry)
            if result == "restarted":
                restarted.append(node)
                out(f"{node}: {path}: serverTLSBootstrap: true, kubelet restarted")
            elif result == "unchanged":
                out(f"{node}: {path} already has serverTLSBootstrap: true (kubelet not restarted)")
        shown = set()
        if dry:
            out("(dry run: nothing changed on the nodes; pending CSRs as approve would see them:)")
            _approve(cluster, True, shown)
            return 0
        waiting = set(restarted)
        deadline = time.monotonic() + args.timeout
        while True:
            for verdict in _approve(cluster, False, shown):
                if verdict.approve:
                    waiting.discard(verdict.node)
            if not waiting or time.monotonic() > deadline:
                break
            time.sleep(POLL)
    if waiting:
        raise UserError(f"no kubelet-serving CSR from {', '.join(sorted(waiting))} approved within "
                        f"{args.timeout:g}s: look at `journalctl -u kubelet` there; "
                        "`make approve_kubelet_certs` approves what arrives later")
    if restarted:
        out(f"every restarted kubelet ({', '.join(restarted)}) has its serving certificate approved")
    return 0


def register(commands):
    """Add `kubelet-certs approve|enable` to render.py's sub-parsers action `commands`."""
    parser = commands.add_parser("kubelet-certs", help="kubelet serving certificates signed by the cluster CA "
                                                       "(serverTLSBootstrap): enable, approve their CSRs")
    sub = parser.add_subparsers(dest="kubelet_certs_command", metavar="SUBCOMMAND")
    sub.required = True

    def connection(p):
        p.add_argument("--context", help="kubeconfig context (default: $ADMIN_CTX)")
        p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")

    p = sub.add_parser("approve", help="approve pending kubelet-serving CSRs that ask for the requesting "
                                       "node's own names and addresses; say why each other one is left pending")
    dry_run(p)
    connection(p)
    p.set_defaults(run=cmd_approve)

    p = sub.add_parser("enable", help="serverTLSBootstrap: true in kube-system/kubelet-config and on each node "
                                      "(ssh, kubelet restarted), then approve the kubelets' CSRs")
    p.add_argument("nodes", nargs="*", metavar="NODE", help="nodes to ssh to (default: K8S_NODES)")
    p.add_argument("--timeout", type=positive(float), default=120, metavar="SECONDS",
                   help="how long to wait for the restarted kubelets' CSRs (default: %(default)s)")
    dry_run(p)
    connection(p)
    p.set_defaults(run=cmd_enable)
    return parser

"""`kubeconfig` and `untaint`: access to the cluster for the namespace user and for workloads."""

import os
import sys

from .. import steps
from .options import dry_run, namespace


def register(commands):
    p = commands.add_parser("kubeconfig", help="write a kubeconfig with `sudo` and `user@CLUSTER` "
                                               "contexts (mode 0600)")
    p.add_argument("--out", metavar="FILE", help="default: $KUBECONFIG_OUT")
    p.add_argument("--context", help="admin context (default: $ADMIN_CTX)")
    p.add_argument("--kubeconfig", help="admin kubeconfig (default: $KUBECONFIG or ~/.kube/config)")
    namespace(p, "the namespace user's namespace, the user context's default")
    p.set_defaults(run=cmd_kubeconfig, parallel=1)

    p = commands.add_parser("untaint", help="let workloads run on a control-plane node")
    p.add_argument("node", metavar="NODE", help="the control-plane node (a single-node cluster's)")
    p.add_argument("--context", help="admin context (default: $ADMIN_CTX)")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    dry_run(p)
    p.set_defaults(run=cmd_untaint, parallel=1)


def cmd_kubeconfig(args):
    from ..nodes import access
    from ..core import emit

    from ..errors import UserError

    v = steps.read_values(args)
    namespace = v.get("K8S_NAMESPACE")
    if not namespace:
        raise UserError("K8S_NAMESPACE is not set: the user's namespace (Makefile.vars)")
    account = f"{namespace}-user"
    with steps.admin_cluster(args, v) as cluster:
        if v.get("LONG_LIVED_USER_TOKEN") == "true":
            token = access.secret_token(cluster, namespace, f"{account}-token")
        else:
            token = access.request_token(cluster, namespace, account,
                                         access.token_seconds(v.get("USER_TOKEN_HOURS")))
        admin_path = (args.kubeconfig or os.environ.get("KUBECONFIG") or
                      os.path.expanduser("~/.kube/config")).split(os.pathsep)[0]
        config = access.user_kubeconfig(admin_path, cluster.context, v.get("CLUSTER", "kubernetes"),
                                        namespace, token)
    out = os.path.expanduser(args.out or v.get("KUBECONFIG_OUT") or "~/.kube/config.conf")
    access.write_private(out, emit.to_yaml([config]))
    print(f"wrote {out} (mode 0600): contexts sudo and user@{v.get('CLUSTER', 'kubernetes')}; "
          f"use it with: export KUBECONFIG={out}")
    print("keep it private: the sudo context holds the cluster admin's credentials")
    return 0


def cmd_untaint(args):
    from ..nodes import access, labels as nodes
    from ..errors import UsageError

    if problem := nodes.node_name_problem(args.node):
        raise UsageError(f"NODE: {problem}")
    v = steps.read_values(args)
    print(f"warning: pods on {args.node} can reach the control plane's credentials; "
          "only do this on a single-node cluster", file=sys.stderr)
    with steps.admin_cluster(args, v) as cluster:
        removed = access.untaint(cluster, args.node, dry_run=bool(args.dry_run))
    done = "untainted (server dry run)" if args.dry_run else "untainted"
    print(f"node/{args.node} {done}: {', '.join(removed)}" if removed
          else f"node/{args.node} has no control-plane taint")
    return 0

"""What several commands share: the cluster options, their argparse type, the NODE arguments."""

import argparse
import math


def positive(kind):
    """An argparse type: a finite number above 0 of `kind` (int or float)."""
    def parse(text):
        try:
            number = kind(text)
        except ValueError:
            number = None
        if number is None or not math.isfinite(number) or number <= 0:
            raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
        return number

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def dry_run(p, client=None):
    """`--dry-run`: the server's dry run, the one meaning it has on every command that writes
    to the API server. `client`: help for `--dry-run=client`, where a command can also
    print what it would send without a cluster (kubectl's word for it)."""
    text = ("the server's dry run: every request is checked (admission included), nothing is changed; "
            "created/configured/unchanged say what the real run would do")
    p.add_argument("--dry-run", action="store_const", const="server", help=text)
    if client:  # the whole word is the flag: `--dry-run NODE` still means the server's dry run
        p.add_argument("--dry-run=client", dest="dry_run", action="store_const", const="client", help=client)


def namespace(p, what):
    """`-n/--namespace`: the one namespace a command acts in, kubectl's flag. It stands for
    K8S_NAMESPACE in this run (k8s.core.settings), checked like the variable."""
    p.add_argument("-n", "--namespace", help=f"{what} (default: $K8S_NAMESPACE)")


def output(p):
    """`-o text|json|yaml`: lines for people, or the same report as data (kubectl's -o)."""
    p.add_argument("-o", "--output", choices=("text", "json", "yaml"), default="text",
                   help="text lines (default), or the report as JSON or YAML")


def cluster_options(p, applying=True):
    p.add_argument("--context", help="kubeconfig context for every component "
                                     "(default: $ADMIN_CTX or $USER_CTX, per component)")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--parallel", type=positive(int), default=8, metavar="N",
                   help="concurrent requests inside a tier (default: %(default)s)")
    p.add_argument("--timeout", type=positive(float), default=300, metavar="SECONDS",
                   help="how long each tier's waits may take (default: %(default)s)")
    output(p)
    p.add_argument("--retry-for", type=positive(float), metavar="SECONDS",
                   help="how long a request is retried while the API server is away or overloaded "
                        "(default: $K8S_TOOLKIT_RETRY_FOR or 120)")
    if applying:
        p.add_argument("--force-conflicts", action="store_true",
                       help="take over fields owned by other field managers")
        p.add_argument("--wait", dest="wait", action="store_true",
                       help="wait for DaemonSet, Deployment and StatefulSet rollouts")
        p.add_argument("--no-wait", dest="wait", action="store_false",
                       help="do not wait for rollouts (the default of apply; install waits)")
        p.add_argument("--prune", action="store_true",
                       help="delete objects this toolkit applied that are no longer rendered")


def target_nodes(args, target):
    """The NODE arguments of an install command; `target` names its make target in the hint."""
    from ..errors import UsageError

    if not args.nodes:
        raise UsageError(f"name the control-plane node: NODE=kube1.example.com make {target} "
                         "(render.py takes several)")
    return args.nodes

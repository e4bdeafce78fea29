"""`audit-policy` (write the policy and its kubeadm fragment) and `audit install` (copy it to nodes)."""

import sys

from .. import steps
from ..errors import UserError
from ..nodes import audit
from .options import target_nodes


def cmd_policy(args):
    from ..core import emit

    v = steps.read_values(args)
    version = steps.kube_version(args, v)
    text = audit.policy_text()
    problems = audit.check(audit.policy())
    if problems:  # a bug here, never the user's input
        raise UserError(f"the generated audit policy is invalid: {'; '.join(problems)}")
    frag = emit.to_yaml([audit.fragment(v, version)])
    policy_path, fragment_path = steps.write_files(args.out, {audit.POLICY_FILE: text, audit.FRAGMENT_FILE: frag})
    value = audit.settings(v)
    print(f"wrote {policy_path} and {fragment_path} (Kubernetes {version})")
    print(f"next: `NODE=<control-plane node> make audit_install` on each one (puts the policy at "
          f"{value['AUDIT_POLICY_PATH']}), then merge {fragment_path} into kubeadm's "
          "ClusterConfiguration; kube-apiserver restarts when its manifest changes")
    return 0


def cmd_install(args):
    from ..nodes.node_files import copy_to_node

    target_nodes(args, "audit_install")
    v = steps.read_values(args)
    value = audit.settings(v)
    content = audit.policy_text().encode("utf-8")
    log_dir = audit.log_dir_of(value)
    for node in args.nodes:
        copy_to_node(node, value["AUDIT_POLICY_PATH"], content, v, folders=[log_dir] if log_dir else [],
                     dry_run=args.dry_run)
        if not args.dry_run:
            print(f"{node}: {value['AUDIT_POLICY_PATH']} (root, mode 0600)"
                  + (f", log folder {log_dir} (mode 0700 when new)" if log_dir else ""), flush=True)
    if args.dry_run:
        print("(dry run: the policy would go through ssh's standard input; nothing was copied)",
              file=sys.stderr, flush=True)
    return 0


def register(commands):
    """Add `audit-policy` and `audit install` to render.py's sub-parsers action `commands`."""
    p = commands.add_parser("audit-policy", help="write the API audit policy and its kubeadm fragment "
                                                 "into build/")
    p.add_argument("--out", metavar="DIR", default="build")
    p.set_defaults(run=cmd_policy)

    parser = commands.add_parser("audit", help="API audit logging on the control-plane nodes")
    sub = parser.add_subparsers(dest="audit_command", metavar="SUBCOMMAND")
    sub.required = True
    p = sub.add_parser("install", help="copy the audit policy to control-plane nodes over ssh (root, 0600)")
    p.add_argument("nodes", nargs="*", metavar="NODE")
    p.add_argument("--dry-run", action="store_true", help="print the ssh command, copy nothing")
    p.set_defaults(run=cmd_install)
    return parser


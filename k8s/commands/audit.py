"""`audit-policy` (write build/kubeadm/: the policy and the kubeadm patch) and `audit install` (copy it to nodes)."""

import os
import sys

from .. import steps
from ..nodes import audit
from .options import target_nodes


def cmd_policy(args):
    from ..nodes import kubeadm_patch

    v = steps.read_values(args)
    version = steps.kube_version(args, v)
    paths = kubeadm_patch.write(args.out, dict(v, KUBE_VERSION=version), version)
    value = audit.settings(v)
    folder = os.path.join(args.out, kubeadm_patch.FOLDER)
    print(f"wrote {', '.join(paths)} (Kubernetes {version})")
    print(f"next: `NODE=<control-plane node> make audit_install` on each one (puts the policy at "
          f"{value['AUDIT_POLICY_PATH']}), then give kubeadm {folder}/{kubeadm_patch.PATCH_FILE} as "
          f"{folder}/{kubeadm_patch.NOTES_FILE} says; kube-apiserver restarts when its manifest changes")
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
    p = commands.add_parser("audit-policy", help="write the API audit policy and the kubeadm patch "
                                                 "into build/kubeadm/")
    p.add_argument("--out", metavar="DIR", default="build",
                   help="the kubeadm files go to DIR/kubeadm/ (default: %(default)s)")
    p.set_defaults(run=cmd_policy)

    parser = commands.add_parser("audit", help="API audit logging on the control-plane nodes")
    sub = parser.add_subparsers(dest="audit_command", metavar="SUBCOMMAND")
    sub.required = True
    p = sub.add_parser("install", help="copy the audit policy to control-plane nodes over ssh (root, 0600)")
    p.add_argument("nodes", nargs="*", metavar="NODE", help="control-plane node(s) to ssh to (NODE= through make)")
    p.add_argument("--dry-run", action="store_true", help="print the ssh command, copy nothing")
    p.set_defaults(run=cmd_install)
    return parser


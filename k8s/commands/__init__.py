"""One module per command family; each `register(subparsers)` adds its commands.

FAMILIES is the order `render.py --help` lists them in; FAMILY_OF names the family of
each command, so a run registers (and imports) only its own (tests/test_cli.py holds it
to what the families register). Nothing outside k8s/cli.py imports this package:
commands call the steps and areas below.
"""

FAMILIES = ("render", "cluster", "access", "secrets", "volumes", "node_labels", "netpol", "encryption",
            "audit", "kubelet_certs", "vendor")
FAMILY_OF = {"template": "render", "validate": "render", "admission-config": "render", "vars": "render",
             "components": "render", "apply": "cluster", "install": "cluster", "delete": "cluster",
             "diff": "cluster", "kubeconfig": "access", "untaint": "access", "secrets": "secrets",
             "persistent": "volumes", "persistent-dirs": "volumes", "node-labels": "node_labels",
             "check": "netpol", "encryption-config": "encryption", "encryption": "encryption",
             "audit-policy": "audit", "audit": "audit", "kubelet-certs": "kubelet_certs", "vendor": "vendor"}

"""One module per command family; each `register(subparsers)` adds its commands.

FAMILIES is the order `render.py --help` lists them in. Nothing outside
k8s/cli.py imports this package: commands call the steps and areas below.
"""

FAMILIES = ("render", "cluster", "access", "secrets", "volumes", "node_labels", "netpol", "encryption",
            "audit", "kubelet_certs", "vendor")

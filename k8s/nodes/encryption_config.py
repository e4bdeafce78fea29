"""The EncryptionConfiguration kube-apiserver reads, and the kubeadm fragment that points it there.

The configuration holds the keys in clear: it is only ever built in memory
and streamed to a node by k8s.nodes.node_files.copy_to_node, never written on
this machine. `render.py encryption-config` shows it with the secrets masked
(MASK; `--show-key` prints them) and writes only build/kubeadm/, whose
ClusterConfiguration patch (k8s.nodes.kubeadm_patch) takes `fragment`.

Facts relied on (kubernetes.io, "Encrypting Confidential Data at Rest"): the
first provider's first key encrypts, every listed key decrypts; `identity: {}`
last keeps data written before encryption readable; kube-apiserver refuses a
resource rule that an earlier wildcard covers.

Variables (defaults in DEFAULTS): ENCRYPTION_PROVIDER (of new keys),
ENCRYPTION_RESOURCES (space separated, `resource` or `resource.group`),
ENCRYPTION_CONFIG_PATH (the file on the nodes), KUBE_VERSION (fragment form).

Only the standard library is imported at module level; YAML output
(k8s.core.emit) is imported where the text is made.
"""

import posixpath
import re

from ..errors import UserError
from .encryption_keys import KEY_FILE
from .node_files import cluster_configuration, node_file_problem

API_VERSION = "apiserver.config.k8s.io/v1"
MASK = "***"
DEFAULTS = {
    "ENCRYPTION_PROVIDER": "secretbox",
    "ENCRYPTION_RESOURCES": "secrets",
    "ENCRYPTION_CONFIG_PATH": "/etc/kubernetes/encryption/config.yaml",
}
_RESOURCE = re.compile(r"^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.(\*|[a-z0-9]([-a-z0-9.]*[a-z0-9])?)?)?$")
# after `encryption install`: the file is read only when kube-apiserver starts
RESTART_HINT = ("restart kube-apiserver on every control-plane node so it reads the file: once the "
                "kubeadm patch is in its manifest, `sudo crictl stop $(sudo crictl ps -q --name "
                "kube-apiserver)` (the kubelet starts it again)")


def resources(value):
    """The ENCRYPTION_RESOURCES items, checked (`resource`, `resource.group`, `*.group`, `*.*`)."""
    items = list(dict.fromkeys((value or "").split()))
    if not items:
        raise UserError("ENCRYPTION_RESOURCES is empty; name at least `secrets`")
    bad = [item for item in items if not _RESOURCE.match(item) or item == "*"]
    if bad:
        raise UserError(f"ENCRYPTION_RESOURCES: {', '.join(map(repr, bad))} is not a resource name "
                        "(resource or resource.group, e.g. secrets, configmaps, widgets.example.com)")
    for i, item in enumerate(items):  # kube-apiserver refuses a rule an earlier wildcard covers
        group = item.partition(".")[2]
        masking = [w for w in items[:i] if w == "*.*" or (w.startswith("*.") and w[2:] == group)]
        if masking:
            raise UserError(f"ENCRYPTION_RESOURCES: {item!r} is covered by {masking[0]!r} before it "
                            "(kube-apiserver refuses that); list wildcards last")
    return items


def configuration(keys, resource_names):
    """The EncryptionConfiguration: the keys' providers in key order, `identity: {}` last."""
    providers = []
    for key in keys:
        group = next((p for p in providers if key.provider in p), None)
        if group is None:
            group = {key.provider: {"keys": []}}
            providers.append(group)
        group[key.provider]["keys"].append({"name": key.name, "secret": key.secret})
    providers.append({"identity": {}})
    return {"apiVersion": API_VERSION, "kind": "EncryptionConfiguration",
            "resources": [{"resources": list(resource_names), "providers": providers}]}


def config_text(keys, resource_names, path, note=None):
    from ..core import emit

    header = (f"# EncryptionConfiguration for kube-apiserver --encryption-provider-config={path}\n"
              f"# written by `render.py encryption install`; keys from secrets/{KEY_FILE}\n"
              "# the first key of the first provider encrypts, all keys decrypt, identity reads\n"
              "# data written before encryption was enabled\n")
    if note:
        header += f"# {note}\n"
    return header + emit.to_yaml([configuration(keys, resource_names)])


def fragment(path, kube_version=None):
    """The kubeadm fragment: --encryption-provider-config and its folder, mounted read-only."""
    folder = posixpath.dirname(path) or "/"
    volume = {"name": "encryption-config", "hostPath": folder, "mountPath": folder,
              "readOnly": True, "pathType": "DirectoryOrCreate"}
    return cluster_configuration([("encryption-provider-config", path)], [volume], kube_version)


def config_path(variables):
    path = (variables.get("ENCRYPTION_CONFIG_PATH") or DEFAULTS["ENCRYPTION_CONFIG_PATH"]).strip()
    problem = node_file_problem(path)
    if problem:
        raise UserError(f"ENCRYPTION_CONFIG_PATH {path!r} {problem}")
    return path

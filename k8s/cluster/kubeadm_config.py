"""What kubeadm recorded about the cluster: its ClusterConfiguration and the nodes' pod CIDRs.

`kubeadm init` uploads its ClusterConfiguration (YAML) to the ConfigMap
kube-system/kubeadm-config, key `ClusterConfiguration`; `networking.podSubnet`
is what `--pod-network-cidr` gave (a comma-separated list on dual-stack
clusters), empty when init ran without it. The controller-manager then runs
with --allocate-node-cidrs and hands each Node a slice of it in
`spec.podCIDRs`; without a podSubnet nodes get none and flannel stops with
"pod cidr not assigned".

Reading costs one GET (the ConfigMap) and one LIST (the nodes). A cluster that
is not kubeadm's (no ConfigMap), or a context that may not read it, is an
answer, not an error: see `Answer`.
"""

import ipaddress
import json
from dataclasses import dataclass

import yaml

CONFIG_MAP = "/api/v1/namespaces/kube-system/configmaps/kubeadm-config"
CONFIG_KEY = "ClusterConfiguration"
NODES_PATH = "/api/v1/nodes"


@dataclass
class Answer:
    """What a read found: `data` (the decoded body), or None and `missing` saying why
    ("not found", or the server's message for a 403)."""

    data: object = None
    missing: str | None = None


def get(cluster, path, **params):
    """The JSON body at `path` as an Answer; 404 and 403 are answers, other failures raise.

    Parameters:
        cluster: a k8s.cluster.Cluster.
        path: the API path of an object or a list.
        params: query parameters (limit=…) for the dynamic client's request.
    """
    from .connection import ApiError

    try:
        response = cluster.call(lambda: cluster.dynamic.request("get", path, serialize=False, **params))
    except ApiError as err:
        if err.status == 404:
            return Answer(missing="not found")
        if err.status == 403:
            return Answer(missing=err.message)
        raise
    return Answer(json.loads(response.data))


def cluster_configuration(cluster):
    """kubeadm's ClusterConfiguration as a dict (Answer.data), or why there is none.

    A ConfigMap whose ClusterConfiguration is not a YAML mapping is an Answer with
    `missing` saying so: the preflight reports it rather than failing on it.
    """
    answer = get(cluster, CONFIG_MAP)
    if answer.data is None:
        return answer
    text = (answer.data.get("data") or {}).get(CONFIG_KEY)
    if text is None:
        return Answer(missing=f"kube-system/kubeadm-config has no {CONFIG_KEY} key")
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as err:
        return Answer(missing=f"kube-system/kubeadm-config: {CONFIG_KEY} is not YAML "
                              f"({str(err).splitlines()[0]})")
    if not isinstance(config, dict):
        return Answer(missing=f"kube-system/kubeadm-config: {CONFIG_KEY} is not a mapping")
    return Answer(config)


def pod_subnets(config):
    """networking.podSubnet of a ClusterConfiguration as a list of strings ([] when unset)."""
    networking = config.get("networking") or {}
    text = str(networking.get("podSubnet") or "")
    return [part.strip() for part in text.split(",") if part.strip()]


def networks(text):
    """"10.244.0.0/16" or a comma-separated list -> [ip_network]; ValueError names a bad one."""
    found = []
    for part in str(text or "").split(","):
        part = part.strip()
        if part:
            try:
                found.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"{part!r} is not a CIDR") from None
    return found


def node_pod_cidrs(cluster):
    """Answer whose data is [(node name, [pod CIDR strings])], one LIST of the nodes.

    spec.podCIDRs (dual-stack aware) wins over the older single spec.podCIDR; a node
    not given one yet has [].
    """
    answer = get(cluster, NODES_PATH)
    if answer.data is None:
        return answer
    result = []
    for node in answer.data.get("items") or []:
        spec = node.get("spec") or {}
        cidrs = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
        result.append(((node.get("metadata") or {}).get("name", "?"), list(cidrs)))
    return Answer(result)

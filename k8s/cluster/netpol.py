"""NetworkPolicy enforcement: is anything in the cluster enforcing the policies?

The API server accepts NetworkPolicy objects whether or not the network plugin
enforces them; flannel alone does not. `enforcement_warning` tells, in one
line, when policies exist in the cluster or in the rendered set while no
enforcing agent has a ready pod. An agent is a DaemonSet, in any namespace,
with a container of one of the known enforcing images (AGENTS), flannel's own
netpol container included. It costs one LIST of DaemonSets across namespaces,
plus one LIST of NetworkPolicies (limit 1) only when the rendered set has none.

`render.py check [COMPONENT…]` renders the components for the cluster's
version and prints that warning (see `register`).
"""

import json

DAEMONSETS_PATH = "/apis/apps/v1/daemonsets"
NETWORK_POLICIES_PATH = "/apis/networking.k8s.io/v1/networkpolicies"

# Agent name -> test of an image's repository path without registry port, tag or
# digest split off ("quay.io/calico/node"). Each is the DaemonSet image that
# enforces NetworkPolicy in that project.
AGENTS = {
    # registry.k8s.io/networking/kube-network-policies (also the -npa/-iptracker tags),
    # alone or as the netpol container of flannel's Helm chart
    "kube-network-policies": lambda path, name: name == "kube-network-policies",
    # calico/node (docker.io, quay.io), also in Canal
    "calico-node": lambda path, name: path.endswith("calico/node"),
    # quay.io/cilium/cilium, the agent (not cilium-envoy or the operator)
    "cilium": lambda path, name: name == "cilium",
    # docker.io/cloudnativelabs/kube-router
    "kube-router": lambda path, name: name == "kube-router",
    # antrea/antrea-agent-ubuntu (and -ubi); antrea/antrea-ubuntu before v2
    "antrea-agent": lambda path, name: name.startswith("antrea-agent") or name == "antrea-ubuntu",
    # weaveworks/weave-npc, the policy controller of the weave-net DaemonSet
    "weave-net": lambda path, name: name == "weave-npc",
}
# Containers recognised by name when their image was mirrored under another name.
AGENT_CONTAINERS = {"kube-network-policies": "kube-network-policies", "calico-node": "calico-node",
                    "cilium-agent": "cilium", "antrea-agent": "antrea-agent", "weave-npc": "weave-net"}


def agent_of(image, container_name=""):
    """The known enforcing agent an image (or its container's name) belongs to, or None."""
    path = (image or "").split("@", 1)[0]
    head, _, last = path.rpartition("/")
    name = last.split(":", 1)[0]
    path = f"{head}/{name}" if head else name
    for agent, matches in AGENTS.items():
        if matches(path, name):
            return agent
    return AGENT_CONTAINERS.get(container_name)


def agents_in(daemonset):
    """Agent names found in a DaemonSet's pod template (containers and init containers)."""
    spec = ((daemonset.get("spec") or {}).get("template") or {}).get("spec") or {}
    found = []
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        agent = agent_of(container.get("image"), container.get("name", ""))
        if agent and agent not in found:
            found.append(agent)
    return found


def _data(obj):
    """The object's dict, for RenderedObjects and plain dicts alike."""
    return obj.data if hasattr(obj, "data") else obj


def _where(daemonset):
    meta = daemonset.get("metadata") or {}
    return f"{meta.get('namespace') or '?'}/{meta.get('name') or '?'}"


def _list(cluster, path, **params):
    from .connection import ApiError

    try:
        response = cluster.call(lambda: cluster.dynamic.request("get", path, serialize=False, **params))
    except ApiError as err:
        if err.status != 403:
            raise
        return None, err.message
    return json.loads(response.data).get("items") or [], None


def enforcement(cluster, objects, daemonsets=None):
    """(warning, note): warning is one line or None; note says what was found when all is well.

    Parameters:
        cluster: a k8s.cluster.Cluster with rights to list DaemonSets in all namespaces.
        objects: the rendered set (RenderedObjects or dicts).
        daemonsets: the DaemonSets of every namespace when the caller has listed them
            already (preflight has), so one run lists them once; None lists them here.
    """
    objects = list(objects)
    rendered = [_data(o) for o in objects]
    policies = sum(1 for d in rendered if d.get("kind") == "NetworkPolicy")
    if policies:
        subject = (f"{policies} NetworkPolic{'ies' if policies != 1 else 'y'} in the rendered set "
                   f"{'are' if policies != 1 else 'is'}")
    else:
        existing, forbidden = _list(cluster, NETWORK_POLICIES_PATH, limit=1)
        if forbidden:
            return f"cannot tell whether NetworkPolicies are enforced: {forbidden}", None
        if not existing:
            return None, "no NetworkPolicies rendered or in the cluster"
        subject = "the cluster's NetworkPolicies are"

    forbidden = None
    if daemonsets is None:
        daemonsets, forbidden = _list(cluster, DAEMONSETS_PATH)
    if forbidden:
        return f"cannot tell whether NetworkPolicies are enforced: {forbidden}", None
    ready, stalled = [], []
    for ds in daemonsets:
        agents = agents_in(ds)
        if not agents:
            continue
        count = int((ds.get("status") or {}).get("numberReady") or 0)
        (ready if count > 0 else stalled).append((ds, agents, count))
    if ready:
        ds, agents, count = ready[0]
        return None, (f"NetworkPolicies are enforced by {', '.join(agents)} (DaemonSet {_where(ds)}, "
                      f"{count} ready pod{'s' if count != 1 else ''})")

    if stalled:
        ds, agents, _ = stalled[0]
        reason = f"DaemonSet {_where(ds)} ({', '.join(agents)}) has no ready pods"
    else:
        coming = [o for o in objects if _data(o).get("kind") == "DaemonSet" and agents_in(_data(o))]
        if coming:
            component = getattr(coming[0], "component", None)
            reason = (f"their agent, DaemonSet {_where(_data(coming[0]))}, is not in the cluster yet "
                      f"({f'make {component}' if component else 'apply it first'})")
        else:
            reason = ("no NetworkPolicy agent runs in the cluster (flannel alone does not enforce "
                      "them: set FLANNEL_NETPOL=true and run make flannel)")
    return f"{subject} not enforced: {reason}", None


def enforcement_warning(cluster, objects):
    """One line when NetworkPolicies are in force (or about to be) but nothing enforces them, else None.

    Parameters:
        cluster: a k8s.cluster.Cluster (admin context: it lists DaemonSets in all namespaces).
        objects: the rendered set (RenderedObjects or dicts). With a NetworkPolicy among
            them this is one request (LIST DaemonSets); without, the cluster's own
            NetworkPolicies are looked up first (LIST, limit 1).

    A context that may not list DaemonSets (403) gets a "cannot tell" line, not an error.
    """
    return enforcement(cluster, objects)[0]

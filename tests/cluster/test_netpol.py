"""NetworkPolicy that is enforced: flannel's agent, the network-policy component, `render.py check`.

Rendering uses the repository's own Makefile.vars (as test_cluster_components
does), so the defaults users get are the ones tested. What the cluster runs is
read from a real control plane of this module's own (see `plane`).
"""

import copy
import os
import subprocess
import sys

import pytest

from k8s.core import components, emit, order, render, validate
from k8s.cluster import netpol
from k8s.cluster.connection import Cluster
from k8s.errors import UserError

from ..conftest import ROOT
from ..realcluster import api_client, wait_for
from .test_cluster_components import MANIFESTS, VERSIONS, WRITE_VERBS, repo_values

AGENT_IMAGE = "registry.k8s.io/networking/kube-network-policies"
ADMIN_CONTEXT = "kubernetes-admin@kubernetes"


def build(version, names, **overrides):
    """Objects of the named components (and what they depend on), validated for `version`."""
    values = repo_values(KUBE_VERSION=version, **overrides)
    found = order.component_order(components.discover(MANIFESTS, values))
    wanted = set(names)
    for c in reversed(found):  # dependencies come first in `found`
        if c.name in wanted:
            wanted.update(c.depends)
    selected = [c for c in found if c.name in wanted and c.supports(version)]
    objects = render.render_components(selected, values)
    report = validate.validate([(o.data, o.source) for o in objects], version)
    return objects, report


def find(objects, kind, name=None, component=None):
    return [o for o in objects if o.kind == kind and (name is None or o.name == name)
            and (component is None or o.component == component)]


# --- flannel and its agent -----------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("enabled", ["true", "false"])
def test_flannel_with_and_without_the_agent_validates_strictly_on_every_version(version, enabled):
    objects, report = build(version, ["flannel"], FLANNEL_NETPOL=enabled)
    assert [str(e) for e in report.errors] == []
    assert report.unvalidated == []
    agent = [o.ref for o in objects if o.name == "kube-network-policies"]
    if enabled == "true":
        assert sorted(agent) == ["ClusterRole/kube-network-policies", "ClusterRoleBinding/kube-network-policies",
                                 "DaemonSet/kube-network-policies", "ServiceAccount/kube-network-policies"]
    else:
        assert agent == []
    assert find(objects, "DaemonSet", "kube-flannel-ds")  # flannel itself either way


def test_the_agent_is_on_by_default():
    assert repo_values()["FLANNEL_NETPOL"] == "true"
    objects, _ = build(VERSIONS[-1], ["flannel"])
    assert find(objects, "DaemonSet", "kube-network-policies")


@pytest.fixture(scope="module")
def agent():
    objects, _ = build(VERSIONS[-1], ["flannel"], FLANNEL_NETPOL="true")
    return {o.kind: o for o in objects if o.name == "kube-network-policies"}


def test_the_agent_cluster_role_only_reads_what_its_informers_watch(agent):
    rules = agent["ClusterRole"].data["rules"]
    as_set = {(group, resource, frozenset(rule["verbs"]))
              for rule in rules for group in rule["apiGroups"] for resource in rule["resources"]}
    assert as_set == {("", "pods", frozenset({"list", "watch"})),
                      ("", "namespaces", frozenset({"list", "watch"})),
                      ("networking.k8s.io", "networkpolicies", frozenset({"list", "watch"}))}
    for rule in rules:
        assert not set(rule["verbs"]) & WRITE_VERBS, rule
        assert "*" not in rule["resources"] and "*" not in rule["apiGroups"], rule
        assert "secrets" not in rule["resources"], rule
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule, rule


def test_the_agent_has_its_own_account_bound_to_its_own_role(agent):
    binding = agent["ClusterRoleBinding"].data
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": "kube-network-policies"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kube-network-policies",
                                    "namespace": "kube-flannel"}]
    assert agent["ServiceAccount"].namespace == "kube-flannel"
    pod = agent["DaemonSet"].data["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "kube-network-policies"


def test_the_agent_daemonset_carries_the_upstream_facts(agent):
    ds = agent["DaemonSet"].data
    assert agent["DaemonSet"].namespace == "kube-flannel"
    # its own selector: DaemonSet selectors must not overlap flannel's app=flannel
    assert ds["spec"]["selector"] == {"matchLabels": {"app": "kube-network-policies"}}
    pod = ds["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert {"operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    [container] = pod["containers"]
    version = repo_values()["VERSION_KUBE_NETWORK_POLICIES"]
    assert container["image"] == f"{AGENT_IMAGE}:{version}"
    assert version.startswith("v") and version != "latest"
    assert container["command"] == ["/bin/netpol"]
    assert "--hostname-override=$(MY_NODE_NAME)" in container["args"]
    assert "--nfqueue-id=98" in container["args"]
    assert container["env"][0]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert container["resources"]["requests"] == {"cpu": "100m", "memory": "50Mi"}
    # upstream's install.yaml runs it privileged with NET_ADMIN; two capabilities suffice
    assert container["securityContext"]["privileged"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["NET_ADMIN", "SYS_ADMIN"]}
    volumes = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"]}
    assert volumes == {"nri-plugin": "/var/run/nri", "netns": "/var/run/netns"}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["netns"]["mountPropagation"] == "HostToContainer"


def test_flannel_netpol_takes_only_true_or_false():
    with pytest.raises(UserError, match="FLANNEL_NETPOL_must_be_true_or_false"):
        build(VERSIONS[-1], ["flannel"], FLANNEL_NETPOL="yes")


# --- the network-policy component ------------------------------------------------

def policies(**overrides):
    objects, report = build(VERSIONS[-1], ["network-policy"], **overrides)
    assert [str(e) for e in report.errors] == []
    found = find(objects, "NetworkPolicy")
    assert all(o.component == "network-policy" and o.namespace == "worker" for o in found)
    return {o.name: o.data["spec"] for o in found}


INGRESS = {
    "default-deny-ingress": {"podSelector": {}, "policyTypes": ["Ingress"]},
    "allow-ingress-same-namespace": {"podSelector": {}, "policyTypes": ["Ingress"],
                                     "ingress": [{"from": [{"podSelector": {}}]}]},
    "allow-ingress-from-ingress-nginx": {
        "podSelector": {}, "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {
            "matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]}]},
}
DNS_ONLY = {
    "default-deny-egress": {"podSelector": {}, "policyTypes": ["Egress"]},
    "allow-egress-dns": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]},
    "allow-egress-same-namespace": {"podSelector": {}, "policyTypes": ["Egress"],
                                    "egress": [{"to": [{"podSelector": {}}]}]},
}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("egress", ["open", "dns-only"])
def test_network_policy_validates_strictly_on_every_version(version, egress):
    objects, report = build(version, ["network-policy"], NETPOL_EGRESS=egress,
                            NETPOL_EGRESS_ALLOW="192.0.2.0/24")
    assert [str(e) for e in report.errors] == []
    assert find(objects, "NetworkPolicy")


def test_the_component_depends_on_the_namespace():
    values = repo_values()
    [component] = [c for c in components.discover(MANIFESTS, values) if c.name == "network-policy"]
    assert component.depends == ["namespace"]
    assert component.namespace == values["K8S_NAMESPACE"]


def test_open_egress_is_the_default_and_only_ingress_is_restricted():
    assert repo_values()["NETPOL_EGRESS"] == "open"
    assert policies() == INGRESS


def test_dns_only_egress_allows_cluster_dns_and_the_namespace():
    assert policies(NETPOL_EGRESS="dns-only", NETPOL_EGRESS_ALLOW="") == {**INGRESS, **DNS_ONLY}


def test_dns_only_egress_allows_each_listed_cidr_in_order():
    found = policies(NETPOL_EGRESS="dns-only", NETPOL_EGRESS_ALLOW=" 10.0.0.0/8  192.168.1.10/32 2001:db8::/32 ")
    assert found == {**INGRESS, **DNS_ONLY, "allow-egress-cidrs": {
        "podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [
            {"ipBlock": {"cidr": "10.0.0.0/8"}}, {"ipBlock": {"cidr": "192.168.1.10/32"}},
            {"ipBlock": {"cidr": "2001:db8::/32"}}]}]}}


def test_the_egress_allow_list_is_ignored_while_egress_is_open():
    assert policies(NETPOL_EGRESS="open", NETPOL_EGRESS_ALLOW="10.0.0.0/8") == INGRESS


@pytest.mark.parametrize("overrides, name", [
    ({"NETPOL_EGRESS": "closed"}, "NETPOL_EGRESS_must_be_open_or_dns_only"),
    ({"NETPOL_EGRESS": "dns-only", "NETPOL_EGRESS_ALLOW": "10.0.0.1"}, "NETPOL_EGRESS_ALLOW_takes_CIDRs"),
])
def test_bad_egress_settings_are_an_error(overrides, name):
    with pytest.raises(UserError, match=name):
        build(VERSIONS[-1], ["network-policy"], **overrides)


# --- which DaemonSets enforce ---------------------------------------------------

@pytest.mark.parametrize("image, container, agent", [
    (f"{AGENT_IMAGE}:v1.1.1", "x", "kube-network-policies"),
    (f"{AGENT_IMAGE}:v1.1.1-npa-v1alpha2", "x", "kube-network-policies"),
    (f"mirror.example:5000/k8s/kube-network-policies@sha256:{'a' * 64}", "x", "kube-network-policies"),
    ("docker.io/calico/node:v3.30.0", "x", "calico-node"),
    ("quay.io/calico/node", "x", "calico-node"),
    ("quay.io/cilium/cilium:v1.18.0@sha256:" + "b" * 64, "x", "cilium"),
    ("docker.io/cloudnativelabs/kube-router:v2.6.0", "x", "kube-router"),
    ("antrea/antrea-agent-ubuntu:v2.4.0", "x", "antrea-agent"),
    ("antrea/antrea-ubuntu:v1.15.0", "x", "antrea-agent"),
    ("weaveworks/weave-npc:2.8.1", "x", "weave-net"),
    ("mirror.example/netpol:v1", "kube-network-policies", "kube-network-policies"),  # flannel chart's container
    ("ghcr.io/flannel-io/flannel:v0.28.9", "kube-flannel", None),
    ("quay.io/cilium/operator-generic:v1.18.0", "cilium-operator", None),
    ("quay.io/calico/node-driver-registrar:v3.30.0", "x", None),
    ("weaveworks/weave-kube:2.8.1", "weave", None),
    ("registry.k8s.io/kube-proxy:v1.33.0", "kube-proxy", None),
])
def test_agents_are_recognised_by_image_or_container_name(image, container, agent):
    assert netpol.agent_of(image, container) == agent


# --- enforcement_warning against a real control plane -------------------------------
#
# Whether policies are enforced is a question about the whole cluster: any DaemonSet of
# an agent with a ready pod, in any namespace, or any NetworkPolicy at all, changes the
# answer. The session's control plane is shared with tests that install the whole
# install set (flannel's agent included) or apply NetworkPolicies, so these tests run on
# a control plane of their own (same harness, two simulated nodes that make every
# scheduled pod Running and Ready) and delete what each of them created.

@pytest.fixture(scope="module")
def plane(tmp_path_factory):
    from ..controlplane.harness import ControlPlane

    plane = ControlPlane(tmp_path_factory.mktemp("netpol-plane"), nodes=("kube1", "kube2"))
    plane.start()
    yield plane
    plane.stop()


class Objects:
    """Objects a test creates on `plane` (as the admin), deleted again at its end."""

    def __init__(self, plane):
        self.plane = plane
        self.api = api_client(plane)
        self.created = []

    def create(self, obj):
        from kubernetes import utils

        namespace = obj["metadata"].get("namespace")
        if namespace and self.plane.get(f"/api/v1/namespaces/{namespace}", check=False) is None:
            utils.create_from_dict(self.api, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        utils.create_from_dict(self.api, obj)
        self.created.append(obj)
        return obj

    def daemonset(self, ds, ready=True):
        """Create a DaemonSet and wait until its controller wrote the status: `ready` pods on
        both nodes, or (ready=False: it selects no node) a status of no ready pods."""
        if not ready:
            ds = copy.deepcopy(ds)
            ds["spec"]["template"]["spec"]["nodeSelector"] = {"example.com/no-such-node": "true"}
        self.create(ds)
        path = f"/apis/apps/v1/namespaces/{ds['metadata']['namespace']}/daemonsets/{ds['metadata']['name']}"

        def settled():
            status = self.plane.get(path).get("status") or {}
            if ready:
                return status.get("numberReady") == 2
            return status.get("observedGeneration") == 1 and status.get("desiredNumberScheduled") == 0

        wait_for(settled, what=f"DaemonSet {ds['metadata']['name']}'s status")
        return ds

    def delete_all(self):
        """Delete what the test created, and wait until it is gone. Namespaces stay: empty, they
        change no answer, and deleting one takes the namespace controller seconds."""
        kept = [o for o in reversed(self.created) if o["kind"] != "Namespace"]
        if kept:
            kubectl(self.plane, "delete", "-f", "-", "--ignore-not-found", "--wait=true", "--timeout=120s",
                    stdin=emit.to_yaml(kept))
        self.created.clear()


def kubectl(plane, *args, stdin=None):
    result = subprocess.run(["kubectl", "--kubeconfig", plane.kubeconfig, *args], input=stdin,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def objects(plane):
    found = Objects(plane)
    yield found
    found.delete_all()


@pytest.fixture
def proxy(plane):
    from ..controlplane.faults import FaultProxy

    with FaultProxy(plane) as proxy:
        yield proxy


@pytest.fixture
def cluster(proxy, tmp_path):
    with Cluster(proxy.kubeconfig(tmp_path / "kubeconfig"), ADMIN_CONTEXT) as cluster:
        cluster.version()  # discovery, as in every connected run, before the counted requests
        proxy.clear()
        yield cluster


def daemonset(name, namespace, image, container="agent"):
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": container, "image": image}]}}}}


POLICY = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
          "metadata": {"name": "default-deny-ingress", "namespace": "worker"},
          "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
FLANNEL = daemonset("kube-flannel-ds", "kube-flannel", "ghcr.io/flannel-io/flannel:v0.28.9", "kube-flannel")


def test_a_ready_agent_means_no_warning_in_one_request(proxy, cluster, objects):
    objects.daemonset(FLANNEL)
    objects.daemonset(daemonset("kube-network-policies", "kube-flannel", f"{AGENT_IMAGE}:v1.1.1"))
    proxy.clear()
    assert netpol.enforcement(cluster, [POLICY]) == (None, (
        "NetworkPolicies are enforced by kube-network-policies (DaemonSet kube-flannel/kube-network-policies, "
        "2 ready pods)"))
    assert [(r.method, r.path) for r in proxy.requests()] == [("GET", "/apis/apps/v1/daemonsets")]


def test_flannel_alone_is_a_warning(cluster, objects):
    objects.daemonset(FLANNEL)
    warning = netpol.enforcement_warning(cluster, [POLICY])
    assert warning == ("1 NetworkPolicy in the rendered set is not enforced: no NetworkPolicy agent "
                       "runs in the cluster (flannel alone does not enforce them: set FLANNEL_NETPOL=true "
                       "and run make flannel)")
    assert "\n" not in warning


def test_an_agent_without_ready_pods_is_a_warning_naming_it(plane, cluster, objects):
    objects.daemonset(daemonset("calico-node", "calico-system", "quay.io/calico/node:v3.30.0"), ready=False)
    status = plane.get("/apis/apps/v1/namespaces/calico-system/daemonsets/calico-node")["status"]
    assert status.get("numberReady", 0) == 0
    assert netpol.enforcement_warning(cluster, [POLICY, POLICY]) == (
        "2 NetworkPolicies in the rendered set are not enforced: DaemonSet calico-system/calico-node "
        "(calico-node) has no ready pods")


def test_flannel_charts_netpol_container_counts(cluster, objects):
    ds = daemonset("kube-flannel-ds", "kube-flannel", "ghcr.io/flannel-io/flannel:v0.28.9", "kube-flannel")
    ds["spec"]["template"]["spec"]["containers"].append(
        {"name": "kube-network-policies", "image": f"{AGENT_IMAGE}:v1.0.0"})
    objects.daemonset(ds)
    assert netpol.enforcement_warning(cluster, [POLICY]) is None


def test_the_rendered_agent_not_yet_applied_is_named(cluster):
    objects, _ = build(VERSIONS[-1], ["flannel", "network-policy"], FLANNEL_NETPOL="true")
    warning = netpol.enforcement_warning(cluster, objects)
    assert warning.startswith("3 NetworkPolicies in the rendered set are not enforced: ")
    assert "DaemonSet kube-flannel/kube-network-policies" in warning and "make flannel" in warning


def test_without_policies_rendered_the_clusters_own_are_looked_up(proxy, cluster, objects):
    objects.daemonset(FLANNEL)
    proxy.clear()
    assert netpol.enforcement(cluster, []) == (None, "no NetworkPolicies rendered or in the cluster")
    assert [(r.method, r.path, r.query) for r in proxy.requests()] == [
        ("GET", "/apis/networking.k8s.io/v1/networkpolicies", "limit=1")]

    objects.create(POLICY)
    warning = netpol.enforcement_warning(cluster, [{"apiVersion": "v1", "kind": "ConfigMap"}])
    assert warning.startswith("the cluster's NetworkPolicies are not enforced: no NetworkPolicy agent")


def test_a_context_that_may_not_list_daemonsets_gets_a_line_not_an_error(plane, objects, tmp_path):
    objects.daemonset(FLANNEL)
    kubeconfig = plane.user_kubeconfig(tmp_path / "demo.conf", "demo-user")  # no RBAC of its own at all
    with Cluster(str(kubeconfig), "demo-user@kubernetes") as cluster:
        warning = netpol.enforcement_warning(cluster, [POLICY])
        nothing_rendered = netpol.enforcement_warning(cluster, [])
    assert warning.startswith("cannot tell whether NetworkPolicies are enforced: ")
    assert 'User "demo-user" cannot list resource "daemonsets"' in warning
    assert nothing_rendered.startswith("cannot tell whether NetworkPolicies are enforced: ")
    assert 'cannot list resource "networkpolicies"' in nothing_rendered
    assert "\n" not in warning + nothing_rendered


# --- render.py check ---------------------------------------------------------------

def check(plane, *args, **env):
    full = {k: v for k, v in os.environ.items() if k not in ("VARS_FILE", "MAKEFLAGS", "MAKELEVEL")}
    full.update(KUBECONFIG=plane.kubeconfig, ADMIN_CTX=ADMIN_CONTEXT, **env)
    return subprocess.run([sys.executable, os.path.join(ROOT, "render.py"), "check", *args],
                          cwd=ROOT, env=full, capture_output=True, text=True)


def policy_lines(text):
    """The NetworkPolicy enforcement lines of `check`'s output, without the other preflight checks'."""
    return [line for line in text.splitlines() if "NetworkPolic" in line]


def test_check_prints_the_one_line_warning(plane, objects):
    objects.daemonset(FLANNEL)
    result = check(plane, FLANNEL_NETPOL="false")
    assert result.returncode == 0, result.stderr
    assert policy_lines(result.stdout) == []
    assert policy_lines(result.stderr) == [
        "warning: 3 NetworkPolicies in the rendered set are not enforced: no NetworkPolicy agent runs in "
        "the cluster (flannel alone does not enforce them: set FLANNEL_NETPOL=true and run make flannel)"]


def test_check_is_quiet_when_an_agent_is_ready(plane, objects):
    objects.daemonset(daemonset("kube-network-policies", "kube-flannel", f"{AGENT_IMAGE}:v1.1.1"))
    result = check(plane)
    assert result.returncode == 0, result.stderr
    assert policy_lines(result.stderr) == []
    assert policy_lines(result.stdout) == [
        "NetworkPolicies are enforced by kube-network-policies (DaemonSet kube-flannel/kube-network-policies, "
        "2 ready pods)"]


def test_check_of_components_without_policies_asks_the_cluster(plane):
    result = check(plane, "namespace")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["no NetworkPolicies rendered or in the cluster"]


def test_the_shipped_agent_rolls_out_is_recognised_and_may_read_only_what_it_watches(plane, objects, tmp_path):
    """make flannel on a real cluster: the agent's DaemonSet rolls out on every node, `check`
    names it, and the API server's RBAC lets its ServiceAccount list and watch exactly pods,
    namespaces and NetworkPolicies."""
    rendered, _ = build(VERSIONS[-1], ["flannel"], FLANNEL_NETPOL="true")
    env = {k: v for k, v in os.environ.items() if k not in ("VARS_FILE", "MAKEFLAGS", "MAKELEVEL")}
    env.update(KUBECONFIG=plane.kubeconfig, ADMIN_CTX=ADMIN_CONTEXT)
    objects.created.extend(o.data for o in rendered)  # deleted afterwards, namespace included
    applied = subprocess.run([sys.executable, os.path.join(ROOT, "render.py"), "apply", "flannel", "--wait",
                              "--timeout", "120"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    status = plane.get("/apis/apps/v1/namespaces/kube-flannel/daemonsets/kube-network-policies")["status"]
    assert (status["desiredNumberScheduled"], status["numberReady"]) == (2, 2)
    result = check(plane)
    assert result.returncode == 0 and policy_lines(result.stderr) == [], result.stderr
    assert policy_lines(result.stdout) == [
        "NetworkPolicies are enforced by kube-network-policies (DaemonSet kube-flannel/kube-network-policies, "
        "2 ready pods)"]

    account = "system:serviceaccount:kube-flannel:kube-network-policies"

    def can(verb, resource, *extra):
        found = subprocess.run(["kubectl", "--kubeconfig", plane.kubeconfig, "auth", "can-i", verb, resource,
                                "--all-namespaces", f"--as={account}", *extra], capture_output=True, text=True)
        assert found.stdout.strip() in ("yes", "no"), found.stdout + found.stderr
        return found.stdout.strip() == "yes"

    for resource in ("pods", "namespaces", "networkpolicies.networking.k8s.io"):
        assert can("list", resource) and can("watch", resource), resource
        assert not can("get", resource), resource  # informers only: list and watch
    for verb, resource in (("create", "pods"), ("delete", "pods"), ("list", "secrets"), ("list", "nodes"),
                           ("patch", "networkpolicies.networking.k8s.io"), ("list", "daemonsets.apps")):
        assert not can(verb, resource), (verb, resource)

"""The preflight (k8s.cluster.preflight) of `render.py check`, `install` and `apply`, on the
session's real control plane, which looks like kubeadm's (tests.controlplane.harness:
kubeadm-config with podSubnet POD_CIDR, kubelet-config without serverTLSBootstrap, node pod
CIDRs allocated by the controller-manager).

Commands run in this process (conftest.in_process) against the repository's own
manifests and Makefile.vars; `install` and `apply` go through the fault proxy, which
records every request, so "nothing written" is what the server saw.
"""

import copy
import json
import sys
import types

import pytest
import yaml
from kubernetes import client

from ..conftest import ROOT, in_process
from ..controlplane.harness import POD_CIDR
from ..realcluster import api_client, own_nodes, unique, writes  # noqa: F401 (own_nodes: a fixture)

ADMIN_CONTEXT = "kubernetes-admin@kubernetes"


def _stand_in_serving_certs():
    """k8s.cluster.serving_certs as its contract says, for as long as it is not in the tree:
    serving_mode(cluster) -> (mode, why) from kube-system/kubelet-config's serverTLSBootstrap."""
    from k8s.cluster.kubeadm_config import get

    def serving_mode(cluster):
        answer = get(cluster, "/api/v1/namespaces/kube-system/configmaps/kubelet-config")
        if answer.data is None:
            return "unknown", f"kube-system/kubelet-config: {answer.missing}"
        config = yaml.safe_load((answer.data.get("data") or {}).get("kubelet") or "") or {}
        if config.get("serverTLSBootstrap") is True:
            return "bootstrap", "kubelet-config has serverTLSBootstrap: true"
        return "self-signed", "kubelet-config has no serverTLSBootstrap"

    module = types.ModuleType("k8s.cluster.serving_certs")
    module.serving_mode = serving_mode
    return module


@pytest.fixture(autouse=True)
def serving_certs(monkeypatch):
    """The stand-in as k8s.cluster.serving_certs while the real module is not there."""
    try:
        import k8s.cluster.serving_certs  # noqa: F401 (the real one, once it exists)
    except ImportError:
        monkeypatch.setitem(sys.modules, "k8s.cluster.serving_certs", _stand_in_serving_certs())


@pytest.fixture
def env(control_plane, monkeypatch):
    """The repository as a user runs it, on the control plane; METRICS_SERVER_INSECURE_TLS=auto."""
    monkeypatch.chdir(ROOT)
    for name in ("VARS_FILE", "POD_CIDR", "DASHBOARD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KUBECONFIG", control_plane.kubeconfig)
    monkeypatch.setenv("ADMIN_CTX", ADMIN_CONTEXT)
    monkeypatch.setenv("METRICS_SERVER_INSECURE_TLS", "auto")
    return monkeypatch


@pytest.fixture
def proxied(env, fault_proxy, tmp_path):
    """Commands go through the fault proxy (its kubeconfig's context is the admin's)."""
    env.setenv("KUBECONFIG", fault_proxy.kubeconfig(tmp_path / "kubeconfig"))
    fault_proxy.clear()
    return fault_proxy


def run(capfd, *argv):
    return in_process(argv, capfd)


def errors(result):
    return [line for line in result.err.splitlines() if line.startswith("error: ")]


@pytest.fixture
def config_map(control_plane):
    """Change a kube-system ConfigMap's one data key for the test; restored afterwards."""
    core = client.CoreV1Api(api_client(control_plane))
    saved = {}

    def change(name, key, edit):
        original = core.read_namespaced_config_map(name, "kube-system").data
        saved.setdefault(name, copy.deepcopy(original))
        data = yaml.safe_load(original[key])
        edit(data)
        core.patch_namespaced_config_map(name, "kube-system", {"data": {key: yaml.safe_dump(data)}})

    yield change
    for name, data in saved.items():
        core.patch_namespaced_config_map(name, "kube-system", {"data": data})


# --- the harness is a kubeadm cluster ---------------------------------------------------

def test_the_control_plane_carries_kubeadms_config_maps_and_node_pod_cidrs(control_plane):
    data = control_plane.get("/api/v1/namespaces/kube-system/configmaps/kubeadm-config")["data"]
    cluster = yaml.safe_load(data["ClusterConfiguration"])
    assert (cluster["kind"], cluster["networking"]["podSubnet"]) == ("ClusterConfiguration", POD_CIDR)
    assert cluster["kubernetesVersion"] == control_plane.get("/version")["gitVersion"]
    kubelet = yaml.safe_load(control_plane.get("/api/v1/namespaces/kube-system/configmaps/kubelet-config")
                             ["data"]["kubelet"])
    assert kubelet["kind"] == "KubeletConfiguration" and "serverTLSBootstrap" not in kubelet
    nodes = control_plane.get("/api/v1/nodes")["items"]
    assert all(n["spec"]["podCIDR"].startswith("10.244.") for n in nodes if n["metadata"]["name"].startswith("kube"))


# --- 1. the pod network ---------------------------------------------------------------

def test_a_pod_cidr_mismatch_stops_install_with_one_line_before_any_write(proxied, env, capfd):
    env.setenv("POD_CIDR", "10.32.0.0/12")
    result = run(capfd, "install")
    assert result.code == 1, result.err
    assert errors(result) == [
        f"error: pod network: POD_CIDR=10.32.0.0/12 but the cluster's podSubnet is {POD_CIDR}: pass "
        f"--pod-network-cidr=10.32.0.0/12 to kubeadm init, or set POD_CIDR to the cluster's podSubnet "
        f"({POD_CIDR})"]
    assert writes(proxied) == []
    assert result.out == ""


def test_a_matching_pod_cidr_passes(env, capfd):
    result = run(capfd, "check", "flannel")
    assert result.code == 0, result.err
    line = next(line for line in result.out.splitlines() if line.startswith("pod network: "))
    assert line.startswith(f"pod network: podSubnet {POD_CIDR} matches POD_CIDR; ")
    assert line.endswith(" have a pod CIDR inside it") and not line.startswith("pod network: podSubnet; 0 of")
    assert errors(result) == []


def test_no_pod_subnet_is_an_error(env, capfd, config_map):
    config_map("kubeadm-config", "ClusterConfiguration", lambda c: c["networking"].pop("podSubnet"))
    result = run(capfd, "check", "flannel")
    assert result.code == 1
    assert errors(result) == [
        'error: pod network: the cluster has no podSubnet (kubeadm init ran without --pod-network-cidr): '
        'the controller-manager allocates no node pod CIDRs and flanneld fails with "pod cidr not assigned"; '
        f'kubeadm init needs --pod-network-cidr={POD_CIDR} (a running cluster: kube-controller-manager '
        f'--allocate-node-cidrs=true --cluster-cidr={POD_CIDR})']


def test_a_dual_stack_pod_subnet_matches_its_ipv4_half(env, capfd, config_map):
    config_map("kubeadm-config", "ClusterConfiguration",
               lambda c: c["networking"].update(podSubnet=f"{POD_CIDR},fd00:10:244::/56"))
    result = run(capfd, "check", "flannel")
    assert result.code == 0, result.err
    assert f"pod network: podSubnet {POD_CIDR},fd00:10:244::/56 matches POD_CIDR; " in result.out


def test_a_node_pod_cidr_outside_pod_cidr_is_an_error(env, capfd, control_plane, own_nodes):
    core = client.CoreV1Api(api_client(control_plane))
    name = unique("outside")
    own_nodes.names.append(name)
    core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                      "spec": {"podCIDR": "10.99.0.0/24", "podCIDRs": ["10.99.0.0/24"]}})
    result = run(capfd, "check", "flannel")
    assert result.code == 1
    assert errors(result) == [
        f"error: pod network: node pod CIDRs outside POD_CIDR={POD_CIDR}: {name} 10.99.0.0/24 "
        "(kube-controller-manager's --cluster-cidr must be POD_CIDR)"]


def test_a_cluster_without_kubeadm_config_gets_a_note(env, capfd, control_plane):
    core = client.CoreV1Api(api_client(control_plane))
    saved = core.read_namespaced_config_map("kubeadm-config", "kube-system")
    core.delete_namespaced_config_map("kubeadm-config", "kube-system")
    try:
        result = run(capfd, "check", "flannel")
    finally:
        core.create_namespaced_config_map("kube-system", {"metadata": {"name": "kubeadm-config"},
                                                          "data": saved.data})
    assert result.code == 0, result.err
    assert ("pod network: podSubnet not checked (no ConfigMap kube-system/kubeadm-config, not a kubeadm "
            "cluster?); ") in result.out


# --- 2. versions ------------------------------------------------------------------------

def test_a_component_outside_its_version_range_named_explicitly_is_an_error(proxied, capfd, control_plane):
    version = ".".join(control_plane.get("/version")[k].rstrip("+") for k in ("major", "minor"))
    result = run(capfd, "apply", "pod-security")
    assert result.code == 1
    assert errors(result) == [f"error: pod-security: needs Kubernetes <= 1.24, not {version}: it cannot be "
                              "applied (see manifests/pod-security/component.yaml)"]
    assert writes(proxied) == []


def test_a_component_outside_its_range_not_named_is_a_note(env, capfd):
    result = run(capfd, "check")
    assert "pod-security: skipped, needs Kubernetes <= 1.24, not " in result.out
    assert not any("pod-security" in line for line in errors(result))


def added_args(diff_text):
    """The metrics-server Deployment's container args as `diff` shows it created: its added lines."""
    return [line.strip().lstrip("+- ").strip('"') for line in diff_text.splitlines()
            if line.startswith("+") and line.lstrip("+ ").startswith("- ")]


# --- 3. metrics-server and the kubelets' serving certificates --------------------------

def test_auto_renders_kubelet_insecure_tls_on_self_signed_kubelets(env, capfd):
    result = run(capfd, "diff", "metrics-server")
    assert result.code in (0, 1), result.err
    assert "--kubelet-insecure-tls" in added_args(result.out)


def test_auto_verifies_when_kubelets_bootstrap_their_serving_certificates(env, capfd, config_map):
    config_map("kubelet-config", "kubelet", lambda c: c.update(serverTLSBootstrap=True))
    result = run(capfd, "diff", "metrics-server")
    assert result.code in (0, 1), result.err
    assert "--kubelet-use-node-status-port" in added_args(result.out)
    assert "--kubelet-insecure-tls" not in added_args(result.out)
    check = run(capfd, "check", "metrics-server")
    assert check.code == 0, check.err
    assert check.out.splitlines()[0].startswith("metrics-server: verifies kubelet serving certificates, because "
                                                "kubelets serve certificates the cluster CA signed (")


def test_check_says_which_mode_and_why(env, capfd):
    result = run(capfd, "check", "metrics-server")
    assert result.code == 0, result.err
    line = result.out.splitlines()[0]
    assert line.startswith("metrics-server: --kubelet-insecure-tls, because kubelets serve self-signed "
                           "certificates (")
    assert line.endswith("); make kubelet_serving_certs turns on verified serving certificates")


def test_explicit_false_on_self_signed_kubelets_is_an_error_and_nothing_is_written(proxied, capfd, env):
    env.setenv("METRICS_SERVER_INSECURE_TLS", "false")
    result = run(capfd, "apply", "metrics-server")
    assert result.code == 1
    (line,) = errors(result)
    assert line.startswith("error: metrics-server: METRICS_SERVER_INSECURE_TLS=false but kubelets serve "
                           "self-signed certificates (")
    assert "metrics-server would never become ready" in line
    assert writes(proxied) == []


def test_offline_auto_renders_kubelet_insecure_tls(env, capfd, tmp_path):
    env.delenv("KUBECONFIG")
    result = run(capfd, "template", "metrics-server", "--out", str(tmp_path))
    assert result.code == 0, result.err
    (deployment,) = [d for d in yaml.safe_load_all((tmp_path / "metrics-server.yaml").read_text())
                     if d and d["kind"] == "Deployment"]
    assert "--kubelet-insecure-tls" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]


def test_a_value_other_than_auto_true_false_is_one_line(env, capfd):
    env.setenv("METRICS_SERVER_INSECURE_TLS", "yes")
    result = run(capfd, "template", "metrics-server")
    assert (result.code, result.err) == (
        1, "error: METRICS_SERVER_INSECURE_TLS='yes' (environment): not true, false or auto\n")


# --- 4. retired components ------------------------------------------------------------

def test_ingress_nginx_selected_for_install_warns(env, capfd):
    result = run(capfd, "check", "ingress-nginx")
    assert result.code == 0, result.err
    assert [line for line in result.err.splitlines() if "ingress-nginx" in line] == [
        "warning: ingress-nginx is retired upstream: no releases or security fixes since March 2026 "
        "(component ingress-nginx); its successor is Gateway API: GATEWAY_API=true, make gateway-api "
        "(NGINX Gateway Fabric)"]


def test_kubernetes_dashboard_selected_warns_and_headlamp_does_not(env, capfd):
    env.setenv("DASHBOARD", "kubernetes-dashboard")
    archived = run(capfd, "check", "dashboard")
    assert "warning: kubernetes-dashboard is archived upstream" in archived.err
    env.setenv("DASHBOARD", "headlamp")
    headlamp = run(capfd, "check", "dashboard")
    assert "kubernetes-dashboard" not in headlamp.err


def test_a_running_ingress_nginx_controller_warns_even_when_not_selected(env, capfd, control_plane):
    core = client.CoreV1Api(api_client(control_plane))
    apps = client.AppsV1Api(api_client(control_plane))
    ns = unique("old-ingress")
    core.create_namespace({"metadata": {"name": ns}})
    try:
        image = "registry.local:5000/ingress-nginx/controller:v1.12.1@sha256:" + "0" * 64  # mirrored, pinned
        apps.create_namespaced_deployment(ns, {
            "metadata": {"name": "controller"},
            "spec": {"selector": {"matchLabels": {"app": "c"}}, "template": {
                "metadata": {"labels": {"app": "c"}},
                "spec": {"containers": [{"name": "controller", "image": image}]}}}})
        result = run(capfd, "check", "namespace")
        assert result.code == 0, result.err
        assert (f"(running as Deployment {ns}/controller); its successor is Gateway API"
                in result.err), result.err
    finally:
        apps.delete_namespaced_deployment("controller", ns)  # gone now; the namespace takes a while
        core.delete_namespace(ns)
    assert "ingress-nginx" not in run(capfd, "check", "namespace").err


# --- cost ---------------------------------------------------------------------------------

def test_check_output_is_one_line_per_check_and_json_keeps_the_policy_line(env, capfd):
    result = run(capfd, "check", "flannel", "metrics-server", "-o", "json")
    report = json.loads(result.out)
    assert result.code == 0, result.err
    by_check = {}
    for f in report["findings"]:
        by_check.setdefault(f["check"], []).append(f)
    assert sorted(by_check) == ["metrics-tls", "network-policies", "pod-network"]
    assert all(len(found) == 1 for found in by_check.values())
    (policies,) = by_check["network-policies"]
    assert report[policies["level"]] == policies["text"]  # the keys `check -o json` had before


def test_the_preflight_costs_a_handful_of_requests(proxied, capfd):
    result = run(capfd, "check", "flannel", "metrics-server")
    assert result.code == 0, result.err
    seen = [(r.method, r.path) for r in proxied.requests()]
    preflight = [s for s in seen if s[1] in (
        "/api/v1/namespaces/kube-system/configmaps/kubeadm-config", "/api/v1/nodes",
        "/api/v1/namespaces/kube-system/configmaps/kubelet-config", "/apis/apps/v1/deployments",
        "/apis/apps/v1/daemonsets", "/apis/networking.k8s.io/v1/networkpolicies")]
    assert sorted(preflight) == sorted([
        ("GET", "/api/v1/namespaces/kube-system/configmaps/kubeadm-config"), ("GET", "/api/v1/nodes"),
        ("GET", "/api/v1/namespaces/kube-system/configmaps/kubelet-config"),
        ("GET", "/apis/apps/v1/deployments"), ("GET", "/apis/apps/v1/daemonsets"),
        # none rendered: the NetworkPolicy check asks whether the cluster has any (there are
        # none, so it need not look for their agent)
        ("GET", "/apis/networking.k8s.io/v1/networkpolicies")]), seen
    assert len(seen) <= len(preflight) + 4, seen  # + the version and discovery

"""The test control plane is what it claims to be, and the checks only a real server answers.

The first tests hold the harness to its word (a v1.37.2 apiserver that no request leaves
this machine from, nodes that behave like kubelets for the controllers); the others run
the toolkit against it where the stand-in could only agree with its author: server-side
apply conflicts between field managers, and a CRD with its custom resources in one run.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from .conftest import CONTROL_PLANE_NODES, ROOT
from .controlplane.nodes import RENEW_EVERY


def kubectl(plane, *args, stdin=None):
    return subprocess.run(["kubectl", "--kubeconfig", plane.kubeconfig, *args], input=stdin,
                          capture_output=True, text=True)


def eventually(check, timeout=60, every=0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


# --- the harness --------------------------------------------------------------------------------

def test_a_real_apiserver_of_the_pinned_release(control_plane):
    version = control_plane.get("/version")
    assert (version["gitVersion"], version["major"], version["minor"]) == ("v1.37.2", "1", "37")
    assert control_plane.get("/readyz") == "ok"


@pytest.mark.skipif(os.geteuid() != 0, reason="the network namespace needs root")
def test_the_apiserver_has_no_network_but_loopback(control_plane):
    assert control_plane.isolate
    pid = control_plane.processes["kube-apiserver"].pid
    with open(f"/proc/{pid}/net/dev") as f:
        interfaces = [line.split(":")[0].strip() for line in f.readlines()[2:]]
    with open(f"/proc/{pid}/net/route") as f:
        routes = f.readlines()[1:]
    assert (interfaces, routes) == (["lo"], [])


def test_nodes_register_ready_with_kubeadm_labels(control_plane):
    nodes = {n["metadata"]["name"]: n for n in control_plane.get("/api/v1/nodes")["items"]}
    assert set(CONTROL_PLANE_NODES) <= set(nodes)
    for name in CONTROL_PLANE_NODES:
        ready = {c["type"]: c["status"] for c in nodes[name]["status"]["conditions"]}["Ready"]
        assert ready == "True" and nodes[name]["spec"].get("podCIDR"), name
        assert nodes[name]["metadata"]["labels"]["kubernetes.io/hostname"] == name
    assert "node-role.kubernetes.io/control-plane" in nodes["kube1"]["metadata"]["labels"]
    assert not nodes["kube1"]["spec"].get("taints")  # tainting is a test's own choice


def test_nodes_keep_renewing_their_leases(control_plane):
    """Without renewals the node lifecycle controller marks every node NotReady after 40 s."""
    path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/kube2"
    first = control_plane.get(path)["spec"]["renewTime"]
    assert eventually(lambda: control_plane.get(path)["spec"]["renewTime"] != first, timeout=RENEW_EVERY + 5)
    with open(os.path.join(control_plane.workdir, "nodes.log")) as f:
        assert "failed" not in f.read()


def test_controllers_and_simulated_kubelets_run_workloads_and_finish_jobs(control_plane):
    ns = "harness-workloads"
    assert kubectl(control_plane, "create", "namespace", ns).returncode == 0
    kubectl(control_plane, "-n", ns, "create", "deployment", "web", "--image=registry.k8s.io/pause:3.10",
            "--replicas=3")
    kubectl(control_plane, "-n", ns, "create", "job", "once", "--image=registry.k8s.io/pause:3.10")
    rolled = kubectl(control_plane, "-n", ns, "rollout", "status", "deployment/web", "--timeout=60s")
    assert rolled.returncode == 0, rolled.stderr
    done = kubectl(control_plane, "-n", ns, "wait", "job/once", "--for=condition=Complete", "--timeout=60s")
    assert done.returncode == 0, done.stderr
    pods = json.loads(kubectl(control_plane, "-n", ns, "get", "pods", "-o", "json").stdout)["items"]
    ips = [p["status"]["podIP"] for p in pods if p["status"]["phase"] == "Running"]
    assert len(ips) == 3 and all(ip.startswith("10.244.") for ip in ips)

    # Namespace deletion: the namespace controller deletes the pods, the nodes let them go.
    assert kubectl(control_plane, "delete", "namespace", ns, "--wait=false").returncode == 0
    assert eventually(lambda: control_plane.get(f"/api/v1/namespaces/{ns}", check=False) is None, timeout=90)


def test_the_audit_log_records_requests(control_plane):
    kubectl(control_plane, "get", "namespaces")
    with open(control_plane.audit_log) as f:
        events = [json.loads(line) for line in f]
    assert events and all(e["kind"] == "Event" and e["apiVersion"] == "audit.k8s.io/v1" for e in events)
    assert any(e["user"]["username"] == "kubernetes-admin" for e in events)


# --- server-side apply against the real field manager ------------------------------------------

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: $SSA_MODE
"""


@pytest.fixture
def ssa_project(project, control_plane):
    project.write("Makefile.vars", "export K8S_NAMESPACE ?= ssa-conflicts\nexport SSA_MODE ?= fast\n")
    project.write("manifests/settings/component.yaml", "description: one ConfigMap\nnamespace: ssa-conflicts\n")
    project.write("manifests/settings/10-settings.yaml", CONFIGMAP)
    kubectl(control_plane, "create", "namespace", "ssa-conflicts")
    yield project
    kubectl(control_plane, "delete", "namespace", "ssa-conflicts", "--wait=false")


def test_a_field_another_manager_changed_is_a_conflict_until_forced(ssa_project, control_plane):
    env = {"KUBECONFIG": control_plane.kubeconfig}
    first = ssa_project.run("apply", "settings", env=env)
    assert first.returncode == 0 and "configmap/settings created" in first.stdout, first.stderr

    # someone else takes the field over, as `kubectl apply --server-side --force-conflicts` does
    other = kubectl(control_plane, "-n", "ssa-conflicts", "apply", "--server-side", "--force-conflicts",
                    "--field-manager=someone-else", "-f", "-",
                    stdin=CONFIGMAP.replace("$SSA_MODE", "slow"))
    assert other.returncode == 0, other.stderr

    refused = ssa_project.run("apply", "settings", env=env)
    assert refused.returncode != 0, refused.stdout
    failed = [line for line in refused.stdout.splitlines() if line.startswith("configmap/settings failed")]
    assert failed and 'conflict with "someone-else": .data.mode' in failed[0], refused.stdout
    assert "--force-conflicts" in failed[0]
    assert "Traceback" not in refused.stderr
    assert kubectl(control_plane, "-n", "ssa-conflicts", "get", "configmap", "settings",
                   "-o", "jsonpath={.data.mode}").stdout == "slow"

    forced = ssa_project.run("apply", "settings", "--force-conflicts", env=env)
    assert forced.returncode == 0 and "configmap/settings configured" in forced.stdout, forced.stderr
    assert kubectl(control_plane, "-n", "ssa-conflicts", "get", "configmap", "settings",
                   "-o", "jsonpath={.data.mode}").stdout == "fast"
    again = ssa_project.run("apply", "settings", env=env)
    assert again.returncode == 0 and "configmap/settings unchanged" in again.stdout, again.stderr


# --- a CRD and its custom resources in one run ---------------------------------------------------

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.harness.example.com
spec:
  group: harness.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, minimum: 1}
"""
WIDGET = """\
apiVersion: harness.example.com/v1
kind: Widget
metadata:
  name: first
spec:
  size: $WIDGET_SIZE
"""


def test_a_crd_and_its_custom_resources_install_in_one_run(project, control_plane):
    project.write("Makefile.vars", "export K8S_NAMESPACE ?= crd-one-run\nexport WIDGET_SIZE ?= 3\n")
    project.write("manifests/widgets/component.yaml", "description: a CRD and one of its objects\n"
                                                      "namespace: crd-one-run\n")
    project.write("manifests/widgets/10-namespace.yaml",
                  "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: crd-one-run\n")
    project.write("manifests/widgets/20-crd.yaml", CRD)
    project.write("manifests/widgets/30-widget.yaml", WIDGET)
    env = {"KUBECONFIG": control_plane.kubeconfig}
    try:
        done = project.run("apply", "widgets", env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "widget.harness.example.com/first created" in done.stdout
        stored = json.loads(kubectl(control_plane, "-n", "crd-one-run", "get", "widgets.harness.example.com", "first",
                                    "-o", "json").stdout)
        assert stored["spec"] == {"size": 3}
        again = project.run("apply", "widgets", env=env)
        assert again.returncode == 0 and again.stdout.strip().splitlines()[-1] == "3 unchanged", again.stdout

        # the CRD's own schema, enforced by the real server, refuses what it must
        bad = project.run("apply", "widgets", env={**env, "WIDGET_SIZE": "0"})
        assert bad.returncode != 0 and "Traceback" not in bad.stderr
        assert "widget" in bad.stderr.lower() and "spec.size" in bad.stderr, bad.stderr
    finally:
        kubectl(control_plane, "delete", "namespace", "crd-one-run", "--wait=false")
        kubectl(control_plane, "delete", "crd", "widgets.harness.example.com", "--wait=false")


def test_the_toolkit_reads_the_live_server_version(project, control_plane):
    project.write("manifests/empty/component.yaml", "description: nothing\n")
    project.write("manifests/empty/10-cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
    shown = subprocess.run([sys.executable, os.path.join(ROOT, "render.py"), "diff", "empty"], cwd=project.root,
                           env={**os.environ, "KUBECONFIG": control_plane.kubeconfig, "K8S_NAMESPACE": "default"},
                           capture_output=True, text=True)
    assert shown.returncode in (0, 1) and "Traceback" not in shown.stderr, shown.stderr


# --- what blocks a namespace's deletion is named -----------------------------------------------

def test_a_namespace_held_by_an_unavailable_aggregated_api_is_named(project, control_plane):
    """The namespace controller will not finish a namespace while an APIService is unavailable,
    as metrics-server's is on a kubeadm cluster whose kubelet certificates it cannot verify."""
    apiservice = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                  "metadata": {"name": "v1alpha1.stuck.harness.example.com"},
                  "spec": {"group": "stuck.harness.example.com", "version": "v1alpha1", "groupPriorityMinimum": 10,
                           "versionPriority": 10, "insecureSkipTLSVerify": True,
                           "service": {"name": "nothing-here", "namespace": "default"}}}
    project.write("manifests/doomed/component.yaml", "description: a namespace\n")
    project.write("manifests/doomed/10-namespace.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n"
                                                        "  name: held-by-apiservice\n")
    env = {"KUBECONFIG": control_plane.kubeconfig}
    assert project.run("apply", "doomed", env=env).returncode == 0
    assert kubectl(control_plane, "apply", "-f", "-", stdin=json.dumps(apiservice)).returncode == 0
    try:
        deleted = project.run("delete", "doomed", "--timeout", "20", "--yes", env=env)
        assert deleted.returncode != 0 and "Traceback" not in deleted.stderr
        error = next(line for line in deleted.stdout.splitlines() if line.startswith("  doomed: failed"))
        assert "namespace/held-by-apiservice" in error and "stuck.harness.example.com/v1alpha1" in error, error
    finally:
        kubectl(control_plane, "delete", "apiservice", apiservice["metadata"]["name"])
    assert eventually(lambda: control_plane.get("/api/v1/namespaces/held-by-apiservice", check=False) is None)


# --- webhook backends the apiserver really calls -------------------------------------------------

WEBHOOK_NAMESPACE = "webhook-backend"


def webhook_objects(ca_bundle, replicas):
    labels = {"app": "gate"}
    return [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": WEBHOOK_NAMESPACE, "labels": {"webhook-test": "on"}}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "gate", "namespace": WEBHOOK_NAMESPACE},
         "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": {
             "metadata": {"labels": labels,
                          "annotations": {"controlplane.test/serve": f"gate.{WEBHOOK_NAMESPACE}.svc"}},
             "spec": {"containers": [{"name": "gate", "image": "registry.k8s.io/pause:3.10",
                                      "ports": [{"containerPort": 8443}]}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "gate", "namespace": WEBHOOK_NAMESPACE},
         "spec": {"selector": labels, "ports": [{"port": 443, "targetPort": 8443}]}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
         "metadata": {"name": "harness-gate"},
         "webhooks": [{"name": "gate.harness.example.com", "admissionReviewVersions": ["v1"],
                       "sideEffects": "None", "failurePolicy": "Fail", "timeoutSeconds": 5,
                       "namespaceSelector": {"matchLabels": {"webhook-test": "on"}},
                       "clientConfig": {"caBundle": ca_bundle,
                                        "service": {"name": "gate", "namespace": WEBHOOK_NAMESPACE}},
                       "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                                  "resources": ["configmaps"]}]}]},
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="backends live in the apiserver's network namespace (root)")
def test_a_webhook_is_called_only_once_its_backend_pod_is_ready(control_plane):
    """What the install engine must wait for: until the backend's pod is Ready, every object
    the webhook intercepts is refused; then the apiserver calls the backend for real."""
    import base64

    with open(os.path.join(control_plane.pki, "ca.crt"), "rb") as f:
        ca_bundle = base64.b64encode(f.read()).decode()

    def apply(replicas):
        items = {"apiVersion": "v1", "kind": "List", "items": webhook_objects(ca_bundle, replicas)}
        done = kubectl(control_plane, "apply", "-f", "-", stdin=json.dumps(items))
        assert done.returncode == 0, done.stderr

    def configmap(name, **labels):
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}
        return kubectl(control_plane, "-n", WEBHOOK_NAMESPACE, "create", "-f", "-", stdin=json.dumps(body))

    try:
        apply(replicas=0)
        refused = configmap("early")
        assert refused.returncode != 0 and 'failed calling webhook "gate.harness.example.com"' in refused.stderr
        apply(replicas=1)
        rolled = kubectl(control_plane, "-n", WEBHOOK_NAMESPACE, "rollout", "status", "deployment/gate",
                         "--timeout=60s")
        assert rolled.returncode == 0, rolled.stderr
        assert configmap("allowed").returncode == 0
        denied = configmap("denied", **{"controlplane.test/deny": "the-gate-said-no"})
        assert denied.returncode != 0 and "the-gate-said-no" in denied.stderr, denied.stderr
    finally:
        kubectl(control_plane, "delete", "validatingwebhookconfiguration", "harness-gate")
        kubectl(control_plane, "delete", "namespace", WEBHOOK_NAMESPACE, "--wait=false")

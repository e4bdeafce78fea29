"""The apply engine against the session's real control plane, driven as a user drives it.

render.py runs in a subprocess with KUBECONFIG pointing at the fault proxy in front of
the real kube-apiserver (tests.controlplane): the proxy's request log shows what the
engine sent, the server itself what it stores. The control plane is shared, so each
test's namespace, CRD group and components are named after the test, and removed
when it ends.
"""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

from k8s.cluster import applyset
from k8s.core import order
from k8s.errors import UserError
from k8s.core.render import RenderedObject, Source

from ..conftest import ROOT
from ..controlplane.harness import kubeconfig_text

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget}}
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
              size: {{type: integer}}
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
"""

# Relative path -> text; {base}, {app}, {namespace} and {group} stand for the test's own names
# (App.write), so literal braces are doubled.
APP = {
    "manifests/{base}/component.yaml": "namespace: {namespace}\n",
    "manifests/{base}/10-namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n",
    "manifests/{base}/20-crd.yaml": CRD,
    "manifests/{app}/component.yaml": "depends: [{base}]\nnamespace: {namespace}\n",
    "manifests/{app}/10-widget.yaml": "apiVersion: {group}/v1\nkind: Widget\nmetadata:\n"
                                      "  name: w\nspec:\n  size: 3\n",
    "manifests/{app}/20-config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"
                                      "data:\n  greeting: $GREETING\n",
    "manifests/{app}/30-secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n"
                                      "stringData:\n  password: $PASSWORD\n",
    "manifests/{app}/40-deployment.yaml": DEPLOYMENT,
}
VARS = ("export GREETING ?= hello\nexport PASSWORD ?= s3cret-marker\n"
        "export ADMIN_CTX ?= kubernetes-admin@kubernetes\n")
WRITES = ("POST", "PUT", "PATCH", "DELETE")


@dataclass
class App:
    """The names one test's copy of the demo app uses on the shared control plane."""

    namespace: str
    group: str   # the Widget CRD's API group
    base: str    # component: the namespace and the CRD
    app: str     # component: a Widget, a ConfigMap, a Secret and a Deployment

    @classmethod
    def named_after(cls, test_name):
        """Names unique to the test; the hash keeps truncated names apart."""
        tag = hashlib.sha256(test_name.encode()).hexdigest()[:6]
        slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower().removeprefix("test_"))[:40].strip("-")
        namespace = f"{slug}-{tag}"
        return cls(namespace, f"{namespace}.example.com", f"base-{tag}", f"app-{tag}")

    @property
    def components(self):
        return [self.base, self.app]

    @property
    def crd(self):
        return f"widgets.{self.group}"

    def path(self, kind, name=None):
        """The API path of one of the app's objects."""
        ns = f"/api/v1/namespaces/{self.namespace}"
        return {"Namespace": ns,
                "CustomResourceDefinition": f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{self.crd}",
                "ConfigMap": f"{ns}/configmaps/{name or 'settings'}",
                "Secret": f"{ns}/secrets/creds",
                "Widget": f"/apis/{self.group}/v1/namespaces/{self.namespace}/widgets/w",
                "Deployment": f"/apis/apps/v1/namespaces/{self.namespace}/deployments/web"}[kind]

    def write(self, project, rel, text):
        """Write one manifest, with the test's names filled in."""
        names = {"base": self.base, "app": self.app, "namespace": self.namespace, "group": self.group}
        return project.write(rel.format(**names), text.format(**names))


def write_app(project, app):
    project.write("Makefile.vars", VARS)
    for rel, text in APP.items():
        app.write(project, rel, text)


def kubectl(plane, *args):
    """kubectl as the cluster admin; its stdout."""
    result = subprocess.run(["kubectl", "--kubeconfig", plane.kubeconfig, *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def remove(plane, app):
    """Delete what a test applied; the namespace terminates in the background."""
    kubectl(plane, "delete", f"namespace/{app.namespace}", f"customresourcedefinition/{app.crd}",
            "--ignore-not-found", "--wait=false")


def stored(plane, app, kind, name=None):
    """The object as the real server stores it, or None."""
    return plane.get(app.path(kind, name), check=False)


def wait_until(condition, timeout=30, what="the condition"):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return value


@pytest.fixture
def app(project, control_plane, fault_proxy, request, tmp_path):
    """The demo app written into `project`, talking to the control plane through the fault proxy."""
    names = App.named_after(request.node.name)
    write_app(project, names)
    project.env = {"KUBECONFIG": fault_proxy.kubeconfig(tmp_path / "kubeconfig")}
    yield names
    remove(control_plane, names)


def run(project, *args, env=None):
    return project.run(*args, env={**project.env, **(env or {})})


def real_writes(proxy):
    """Writes the server carried out: neither dry runs nor reads."""
    return [r for r in proxy.requests() if r.method in WRITES and "dryRun" not in r.query]


def settled(plane, app):
    """The Deployment's rollout is over and its controller has nothing left to write."""
    data = stored(plane, app, "Deployment")
    status = data.get("status") or {}
    progressing = [c for c in status.get("conditions") or [] if c["type"] == "Progressing"]
    return (status.get("observedGeneration") == data["metadata"]["generation"]
            and status.get("availableReplicas") == status.get("readyReplicas") == 2
            and progressing and progressing[0]["reason"] == "NewReplicaSetAvailable")


def versions(plane, app):
    kinds = ("Namespace", "CustomResourceDefinition", "ConfigMap", "Secret", "Widget", "Deployment")
    return {kind: stored(plane, app, kind)["metadata"]["resourceVersion"] for kind in kinds}


def test_first_apply_creates_in_order_and_second_changes_nothing(project, app, control_plane, fault_proxy):
    result = run(project, "apply", *app.components)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"namespace/{app.namespace} created",
        f"customresourcedefinition.apiextensions.k8s.io/{app.crd} created",
        "configmap/settings created",
        "secret/creds created",
        f"widget.{app.group}/w created",
        "deployment.apps/web created",
        f"  {app.base}: ready",
        f"  {app.app}: ready",
        "6 created",
    ]
    # The namespace went before anything inside it, the CRD before its CR.
    patches = [r.path for r in fault_proxy.requests(method="PATCH") if "/configmaps/applyset-" not in r.path]
    assert patches[0] == app.path("Namespace")
    assert patches.index(app.path("CustomResourceDefinition")) < patches.index(app.path("Widget"))
    assert stored(control_plane, app, "Widget")["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "k8s-toolkit", "k8s-toolkit/component": app.app,
        "applyset.kubernetes.io/part-of": applyset.set_id(app.app)}

    # The real controllers keep writing status until the rollout is over: let them finish.
    wait_until(lambda: settled(control_plane, app), what="the rollout of deployment/web")
    before = versions(control_plane, app)
    fault_proxy.clear()
    again = run(project, "apply", *app.components)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == "6 unchanged"
    assert all(line.endswith(" unchanged") for line in again.stdout.splitlines()[:-1]
               if not line.startswith("  "))
    assert versions(control_plane, app) == before


def test_runs_in_quick_succession_tell_changed_from_unchanged(project, app, control_plane, fault_proxy):
    """The answer alone decides (no LIST before the PATCH): runs less than a second apart,
    with and without a change, dry runs included, and the controllers still rolling out."""
    def results(*extra, env=None):
        """display -> result of each object line, and the summary line."""
        done = run(project, "apply", *app.components, *extra, env=env)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        objects = [line.split(" ", 1) for line in lines[:-1] if not line.startswith("  ")]
        return dict(objects), lines[-1]

    assert run(project, "apply", *app.components).returncode == 0
    for greeting in ("hi", "hey", "hello"):
        changed, summary = results(env={"GREETING": greeting})
        assert changed.pop("configmap/settings") == "configured"
        assert set(changed.values()) == {"unchanged"} and summary == "1 configured, 5 unchanged"
        same, summary = results(env={"GREETING": greeting})
        assert set(same.values()) == {"unchanged"} and summary == "6 unchanged"
    fault_proxy.clear()
    dry, summary = results("--dry-run", env={"GREETING": "dry"})
    assert dry.pop("configmap/settings") == "configured (server dry run)"
    assert set(dry.values()) == {"unchanged (server dry run)"}, dry
    assert real_writes(fault_proxy) == []
    assert stored(control_plane, app, "ConfigMap")["data"] == {"greeting": "hello"}


def test_requests_per_object_stay_within_budget(project, app, fault_proxy):
    assert run(project, "apply", *app.components).returncode == 0
    first = fault_proxy.requests()
    fault_proxy.clear()
    assert run(project, "apply", *app.components).returncode == 0
    second = fault_proxy.requests()
    # One PATCH per object and nothing else per object: discovery (the version, the group
    # list, then aggregated discovery of /api and /apis: every kind at once), the one LIST of
    # kube-system's ConfigMaps (the ApplySet parents), and the preflight's fixed two: LIST
    # Deployments and DaemonSets for retired components (k8s.cluster.preflight; these
    # components select neither flannel nor metrics-server, which would add their GETs). The
    # first run also writes the two parents, waits for the CRD and reads discovery again for
    # its new kind.
    assert len([r for r in second if r.method == "PATCH"]) == 6
    assert len(second) <= 6 + 1 + 4 + 2, [(r.method, r.path) for r in second]
    assert len(first) <= 6 + 1 + 4 + 2 + 2 + 2 + 2, [(r.method, r.path) for r in first]


def test_diff_shows_exactly_the_changed_objects_and_masks_secrets(project, app, control_plane, fault_proxy):
    assert run(project, "apply", *app.components).returncode == 0
    same = run(project, "diff")
    assert (same.returncode, same.stdout, same.stderr.strip()) == (0, "", "no changes")

    assert run(project, "diff", "--exit-code").returncode == 0

    fault_proxy.clear()
    changed = run(project, "diff", env={"GREETING": "bonjour", "PASSWORD": "n3w-marker"})
    assert changed.returncode == 0, changed.stderr  # changes are not an error ...
    assert run(project, "diff", "--exit-code", env={"GREETING": "bonjour"}).returncode == 1  # ... but CI can ask
    as_json = run(project, "diff", "-o", "json", env={"GREETING": "bonjour", "PASSWORD": "n3w-marker"})
    found = json.loads(as_json.stdout)
    assert sorted(c["name"] for c in found["changed"]) == ["creds", "settings"] and found["errors"] == []
    assert "marker" not in as_json.stdout
    assert changed.stderr.strip() == "2 objects would change"
    assert "-  greeting: hello\n+  greeting: bonjour\n" in changed.stdout
    assert "+++ b/secret/creds" in changed.stdout and "+++ b/configmap/settings" in changed.stdout
    assert "marker" not in changed.stdout + changed.stderr
    assert "*** (after)" in changed.stdout
    assert fault_proxy.requests(method="PATCH")  # the dry runs went to the server ...
    assert real_writes(fault_proxy) == []         # ... and nothing else did
    assert stored(control_plane, app, "ConfigMap")["data"]["greeting"] == "hello"


def test_delete_runs_in_reverse_order_and_waits_for_the_namespace(project, app, control_plane):
    assert run(project, "apply", *app.components).returncode == 0
    result = run(project, "delete", *app.components, "--yes")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    deleted = [line.split()[0] for line in lines[:-1] if line.endswith(" deleted") and not line.startswith("  ")]
    assert deleted[0] == "deployment.apps/web"
    assert deleted[-2:] == [f"customresourcedefinition.apiextensions.k8s.io/{app.crd}",
                            f"namespace/{app.namespace}"]
    assert lines[-3:-1] == [f"  {app.app}: deleted", f"  {app.base}: deleted"]  # dependents first
    assert stored(control_plane, app, "Namespace") is None
    again = run(project, "delete", app.app, "--yes")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == "4 not found"


def test_prune_deletes_only_labelled_objects_that_are_gone(project, app, control_plane):
    assert run(project, "apply", *app.components).returncode == 0
    kubectl(control_plane, "create", "configmap", "not-ours", "-n", app.namespace)
    os.remove(os.path.join(project.root, f"manifests/{app.app}/20-config.yaml"))
    result = run(project, "apply", *app.components, "--prune")
    assert result.returncode == 0, result.stderr
    assert "configmap/settings pruned" in result.stdout.splitlines()
    assert stored(control_plane, app, "ConfigMap") is None
    assert stored(control_plane, app, "ConfigMap", "not-ours") is not None


def test_passing_faults_are_retried(project, app, control_plane, fault_proxy):
    fault_proxy.fail(method="PATCH", path=r"/configmaps/settings$", status=500, times=2)
    fault_proxy.fail(method="PATCH", path=r"/secrets/creds$", status=429, retry_after=1, times=1)
    fault_proxy.fail(method="PATCH", path=r"/deployments/web$", drop=True, times=1)
    result = run(project, "apply", *app.components)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "6 created"
    assert [r.status for r in fault_proxy.requests(method="PATCH", path=r"/configmaps/settings$")] == [500, 500, 201]
    assert [r.status for r in fault_proxy.requests(method="PATCH", path=r"/secrets/creds$")] == [429, 201]
    assert [r.fault for r in fault_proxy.requests(method="PATCH", path=r"/deployments/web$")] == ["drop", None]
    assert stored(control_plane, app, "Deployment") is not None


def test_a_5xx_storm_beyond_the_retry_budget_fails_the_object(project, app, fault_proxy):
    fault_proxy.fail(method="PATCH", path=r"/configmaps/settings$", status=503)
    result = run(project, "apply", *app.components, "--retry-for", "2")
    assert result.returncode == 1
    assert any(line.startswith("configmap/settings failed: ") and "still failing after retrying for 2s" in line
               for line in result.stdout.splitlines()), result.stdout
    assert len(fault_proxy.requests(method="PATCH", path=r"/configmaps/settings$")) >= 2


def test_a_422_fails_its_component_after_the_current_tier_and_says_what_was_not_applied(
        project, app, control_plane):
    # What only the real server's validation refuses: one key in both data and binaryData.
    app.write(project, "manifests/{app}/20-config.yaml",
              "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  both: x\n"
              "binaryData:\n  both: eA==\n")
    result = run(project, "apply", *app.components)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith("configmap/settings failed: ") and "(422 Invalid)" in line
               and "both" in line for line in lines), lines
    assert "secret/creds created" in lines  # same tier: already under way
    assert "deployment.apps/web not applied" in lines
    assert f"  {app.base}: ready" in lines
    assert any(line.startswith(f"  {app.app}: failed (configmap/settings failed: ") for line in lines), lines
    assert lines[-1] == "3 created, 1 failed, 2 not applied"
    assert stored(control_plane, app, "Deployment") is None


def test_a_rollout_that_never_finishes_times_out_naming_the_object(project, app):
    # No node carries this label: the pods stay Pending, the rollout never ends.
    app.write(project, "manifests/{app}/40-deployment.yaml", DEPLOYMENT.replace(
        "    spec:\n", "    spec:\n      nodeSelector: {{example.com/no-such-node: 'true'}}\n"))
    result = run(project, "apply", *app.components, "--wait", "--timeout", "2")
    assert result.returncode == 1
    assert f"  {app.app}: failed (timed out after 2s waiting for deployment.apps/web (" in result.stdout


def test_json_report(project, app):
    result = run(project, "apply", *app.components, "-o", "json")
    report = json.loads(result.stdout)
    assert report["summary"] == {"created": 6}
    assert report["objects"][0] == {"kind": "Namespace", "apiVersion": "v1", "name": app.namespace,
                                    "namespace": None, "component": app.base, "result": "created",
                                    "message": ""}


def test_unreachable_cluster_is_one_line_naming_server_and_context(project, tmp_path):
    """No server at all: nothing of the control plane is needed."""
    path = tmp_path / "kc"
    path.write_text(kubeconfig_text("http://127.0.0.1:9", b"", "kubernetes-admin", token="unused"))
    names = App.named_after("unreachable")
    write_app(project, names)
    result = project.run("apply", names.base, env={"KUBECONFIG": str(path)})
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: cannot reach the API server http://127.0.0.1:9 (context kubernetes-admin@kubernetes): "
        "Connection refused"]


def test_nothing_is_written_when_render_fails(project, app, fault_proxy):
    app.write(project, "manifests/{app}/50-bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: $NOPE\n")
    result = run(project, "apply", *app.components)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: manifests/{app.app}/50-bad.yaml:4:9: undefined variable NOPE")
    assert [r for r in fault_proxy.requests() if r.method in WRITES] == []


def test_an_interrupted_run_converges_when_run_again(project, app, control_plane, fault_proxy):
    fault_proxy.slow(delay=0.3)
    env = {**os.environ, **project.env}
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "render.py"), "apply", *app.components,
                                "--parallel", "1"], cwd=project.root, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    inside = f"/api/v1/namespaces/{app.namespace}/"
    wait_until(lambda: fault_proxy.requests(method="PATCH", path="^" + re.escape(inside)),
               timeout=20, what="the first PATCH inside the namespace")
    process.send_signal(signal.SIGKILL)
    process.wait()
    fault_proxy.clear()
    assert stored(control_plane, app, "Deployment") is None
    result = run(project, "apply", *app.components)
    assert result.returncode == 0, result.stderr
    assert "deployment.apps/web created" in result.stdout.splitlines()
    assert stored(control_plane, app, "Deployment") is not None


# --- ordering, without a server ---------------------------------------------

def obj(kind, name, component="c", api_version="v1", **metadata):
    data = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, **metadata}}
    return RenderedObject(data, component, Source("f.yaml", 1, 0, ""))


def test_tiers_follow_components_then_kind_ranks():
    objects = [obj("Deployment", "d", api_version="apps/v1"), obj("ConfigMap", "c"),
               obj("Namespace", "n"), obj("Gizmo", "g", api_version="example.com/v1"),
               obj("Service", "s"), obj("ValidatingWebhookConfiguration", "v",
                                        api_version="admissionregistration.k8s.io/v1"),
               obj("ConfigMap", "first", component="base")]
    tiers = order.tiers(objects, ["base", "c"])
    assert [[o.name for o in t] for t in tiers] == [["first"], ["n"], ["c"], ["s"], ["g"], ["d"], ["v"]]


def test_explicit_dependencies_move_an_object_after_its_target():
    a = obj("ConfigMap", "a", annotations={"k8s-toolkit/depends-on": "Deployment/d"})
    d = obj("Deployment", "d", api_version="apps/v1")
    assert [[o.name for o in t] for t in order.tiers([a, d], ["c"])] == [["d"], ["a"]]
    b = obj("ConfigMap", "b", annotations={"k8s-toolkit/depends-on": "ConfigMap/c"})
    c = obj("ConfigMap", "c", annotations={"k8s-toolkit/depends-on": "ConfigMap/b"})
    with pytest.raises(UserError, match="annotations form a cycle"):
        order.tiers([b, c], ["c"])
    with pytest.raises(UserError, match="'Secret/x' is not an object of this run"):
        order.tiers([obj("ConfigMap", "e", annotations={"k8s-toolkit/depends-on": "Secret/x"})], ["c"])


def test_a_dry_run_summary_counts_what_the_server_simulated():
    from k8s.cluster.apply import DRY_RUN, Outcome, Run

    cm = RenderedObject({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}, "app",
                        Source("a.yaml", 1, 0, ""))
    run = Run([Outcome(cm, f"configured {DRY_RUN}"), Outcome(cm, f"unchanged {DRY_RUN}"),
               Outcome(cm, f"configured {DRY_RUN}")])
    assert run.summary() == "2 configured (server dry run), 1 unchanged (server dry run)"
    assert Run().summary() == "nothing to do"

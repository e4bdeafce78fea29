"""The apply engine against the API server stand-in, driven as a user drives it.

render.py runs in a subprocess with KUBECONFIG pointing at the stand-in on
127.0.0.1; the stand-in's request log shows what the engine sent.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from k8s import order
from k8s.errors import UserError
from k8s.render import RenderedObject, Source

from .apiserver import ApiServer, write_kubeconfig
from .conftest import ROOT

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
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
              size: {type: integer}
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
"""

APP = {
    "manifests/base/component.yaml": "namespace: demo\n",
    "manifests/base/10-namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n",
    "manifests/base/20-crd.yaml": CRD,
    "manifests/app/component.yaml": "depends: [base]\nnamespace: demo\n",
    "manifests/app/10-widget.yaml": "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n"
                                    "  name: w\nspec:\n  size: 3\n",
    "manifests/app/20-config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"
                                    "data:\n  greeting: $GREETING\n",
    "manifests/app/30-secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n"
                                    "stringData:\n  password: $PASSWORD\n",
    "manifests/app/40-deployment.yaml": DEPLOYMENT,
}
VARS = ("export GREETING ?= hello\nexport PASSWORD ?= s3cret-marker\n"
        "export ADMIN_CTX ?= kubernetes-admin@kubernetes\n")


def write_app(project):
    project.write("Makefile.vars", VARS)
    for rel, text in APP.items():
        project.write(rel, text)


@pytest.fixture
def cluster(project, tmp_path):
    with ApiServer(version="1.31.2") as server:
        server.kubeconfig(tmp_path / "kubeconfig")
        write_app(project)
        project.env = {"KUBECONFIG": str(tmp_path / "kubeconfig")}
        yield server


def run(project, *args, env=None):
    return project.run(*args, env={**project.env, **(env or {})})


def real_writes(server):
    return [r for r in server.writes() if not r.dry_run]


def test_first_apply_creates_in_order_and_second_changes_nothing(project, cluster):
    result = run(project, "apply", "base", "app")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        "namespace/demo created",
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created",
        "configmap/settings created",
        "secret/creds created",
        "widget.example.com/w created",
        "deployment.apps/web created",
        "6 created",
    ]
    # The namespace went before anything inside it, the CRD before its CR.
    patches = [r.path for r in cluster.requests if r.method == "PATCH"]
    assert patches[0] == "/api/v1/namespaces/demo"
    assert patches.index("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com") \
        < patches.index("/apis/example.com/v1/namespaces/demo/widgets/w")
    assert cluster.get("Widget", "w", "demo")["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "k8s-toolkit", "k8s-toolkit/component": "app"}

    # The stand-in's controllers write status a moment after the apply: let them finish.
    cluster.wait_for(lambda: (cluster.get("Deployment", "web", "demo").get("status") or {}).get("observedGeneration"))
    versions = {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in cluster.objects()}
    cluster.clear_requests()
    again = run(project, "apply", "base", "app")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == "6 unchanged"
    assert all(line.endswith(" unchanged") for line in again.stdout.splitlines()[:-1])
    assert versions == {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in cluster.objects()}


def test_requests_per_object_stay_within_budget(project, cluster):
    assert run(project, "apply", "base", "app").returncode == 0
    first = len(cluster.requests)
    cluster.clear_requests()
    assert run(project, "apply", "base", "app").returncode == 0
    # One PATCH per object, one LIST per kind and namespace, discovery once, and the
    # waits for the CRD and the namespace on the first run only.
    patches = [r for r in cluster.requests if r.method == "PATCH"]
    assert len(patches) == 6
    assert len(cluster.requests) <= 6 + 6 + 7, [(r.method, r.path) for r in cluster.requests]
    assert first <= 6 + 6 + 7 + 6, first


def test_diff_shows_exactly_the_changed_objects_and_masks_secrets(project, cluster):
    assert run(project, "apply", "base", "app").returncode == 0
    same = run(project, "diff")
    assert (same.returncode, same.stdout, same.stderr.strip()) == (0, "", "no changes")

    cluster.clear_requests()
    changed = run(project, "diff", env={"GREETING": "bonjour", "PASSWORD": "n3w-marker"})
    assert changed.returncode == 1, changed.stderr
    assert changed.stderr.strip() == "2 objects would change"
    assert "-  greeting: hello\n+  greeting: bonjour\n" in changed.stdout
    assert "+++ b/secret/creds" in changed.stdout and "+++ b/configmap/settings" in changed.stdout
    assert "marker" not in changed.stdout + changed.stderr
    assert "*** (after)" in changed.stdout
    assert real_writes(cluster) == []
    assert cluster.get("ConfigMap", "settings", "demo")["data"]["greeting"] == "hello"


def test_delete_runs_in_reverse_order_and_waits_for_the_namespace(project, cluster):
    assert run(project, "apply", "base", "app").returncode == 0
    result = run(project, "delete", "base", "app")
    assert result.returncode == 0, result.stderr
    deleted = [line.split()[0] for line in result.stdout.splitlines()[:-1] if line.endswith(" deleted")]
    assert deleted[0] == "deployment.apps/web"
    assert deleted[-2:] == ["customresourcedefinition.apiextensions.k8s.io/widgets.example.com",
                            "namespace/demo"]
    assert cluster.get("Namespace", "demo") is None
    again = run(project, "delete", "app")
    assert again.returncode == 0
    assert again.stdout.splitlines()[-1] == "4 not found"


def test_prune_deletes_only_labelled_objects_that_are_gone(project, cluster):
    assert run(project, "apply", "base", "app").returncode == 0
    cluster.seed({"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": "not-ours", "namespace": "demo"}})
    os.remove(os.path.join(project.root, "manifests/app/20-config.yaml"))
    result = run(project, "apply", "base", "app", "--prune")
    assert result.returncode == 0, result.stderr
    assert "configmap/settings pruned" in result.stdout.splitlines()
    assert cluster.get("ConfigMap", "settings", "demo") is None
    assert cluster.get("ConfigMap", "not-ours", "demo") is not None


def test_passing_faults_are_retried(project, cluster):
    cluster.faults.error(500, times=2, method="PATCH", path=r"/configmaps/settings$")
    cluster.faults.throttle(times=1, retry_after=1, method="PATCH", path=r"/secrets/creds$")
    cluster.faults.drop(times=1, method="PATCH", path=r"/deployments/web$")
    result = run(project, "apply", "base", "app")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "6 created"
    statuses = [r.status for r in cluster.requests if r.path.endswith("/configmaps/settings")
                and r.method == "PATCH"]
    assert statuses == [500, 500, 201]


def test_a_5xx_storm_beyond_the_retry_budget_fails_the_object(project, cluster):
    cluster.faults.error(503, times=None, method="PATCH", path=r"/configmaps/settings$")
    result = run(project, "apply", "base", "app")
    assert result.returncode == 1
    assert any(line.startswith("configmap/settings failed: ") and "still failing after 6 retries" in line
               for line in result.stdout.splitlines()), result.stdout


def test_a_422_stops_after_the_current_tier_and_says_what_was_not_applied(project, cluster):
    cluster.faults.invalid(lambda o: o.get("kind") == "ConfigMap", field="data",
                           message="data is not acceptable")
    result = run(project, "apply", "base", "app")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith("configmap/settings failed: ") and "data is not acceptable" in line
               for line in lines), lines
    assert "secret/creds created" in lines  # same tier: already under way
    assert "deployment.apps/web not applied" in lines
    assert lines[-1].startswith("3 created, 1 failed, 2 not applied; stopped after tier")
    assert cluster.get("Deployment", "web", "demo") is None


def test_a_rollout_that_never_finishes_times_out_naming_the_object(project, cluster):
    cluster.never_ready("Deployment", "web", namespace="demo")
    result = run(project, "apply", "base", "app", "--wait", "--timeout", "1")
    assert result.returncode == 1
    assert "timed out after 1s waiting for deployment.apps/web (" in result.stdout.splitlines()[-1]


def test_json_report(project, cluster):
    result = run(project, "apply", "base", "app", "-o", "json")
    report = json.loads(result.stdout)
    assert report["summary"] == {"created": 6}
    assert report["objects"][0] == {"kind": "Namespace", "apiVersion": "v1", "name": "demo",
                                    "namespace": None, "component": "base", "result": "created",
                                    "message": ""}


def test_unreachable_cluster_is_one_line_naming_server_and_context(project, tmp_path):
    write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:9")
    write_app(project)
    result = project.run("apply", "base", env={"KUBECONFIG": str(tmp_path / "kc")})
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: cannot reach the API server http://127.0.0.1:9 (context kubernetes-admin@kubernetes): "
        "Connection refused"]


def test_nothing_is_written_when_render_fails(project, cluster):
    project.write("manifests/app/50-bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: $NOPE\n")
    result = run(project, "apply", "base", "app")
    assert result.returncode == 1
    assert result.stderr.startswith("error: manifests/app/50-bad.yaml:4:9: undefined variable NOPE")
    assert cluster.writes() == []


def test_an_interrupted_run_converges_when_run_again(project, cluster):
    cluster.faults.latency(0.3)
    env = {**os.environ, **project.env}
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "render.py"), "apply", "base", "app",
                                "--parallel", "1"], cwd=project.root, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not any(r.method == "PATCH" and r.path.startswith("/api/v1/namespaces/demo/")
                  for r in cluster.requests) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    cluster.faults.clear()
    assert cluster.get("Deployment", "web", "demo") is None
    result = run(project, "apply", "base", "app")
    assert result.returncode == 0, result.stderr
    assert "deployment.apps/web created" in result.stdout.splitlines()
    assert cluster.get("Deployment", "web", "demo") is not None


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
    from k8s.apply import DRY_RUN, Outcome, Run

    cm = RenderedObject({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}, "app",
                        Source("a.yaml", 1, 0, ""))
    run = Run([Outcome(cm, f"configured {DRY_RUN}"), Outcome(cm, f"unchanged {DRY_RUN}"),
               Outcome(cm, f"configured {DRY_RUN}")])
    assert run.summary() == "2 configured (server dry run), 1 unchanged (server dry run)"
    assert Run().summary() == "nothing to do"

"""`render.py install` as a graph on the real control plane: readiness for every kind,
failure isolation, webhooks whose backends must be up first.

The simulated kubelets (tests.controlplane.nodes) play the containers: a pod that mounts
a missing Secret stays in ContainerCreating, `controlplane.test/fail` makes a container
exit 1, `controlplane.test/creates-secret` makes a Job's pod write a Secret, and
`controlplane.test/serve` puts a real admission webhook backend behind a Ready pod.
"""

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import time

import pytest

from ..conftest import ROOT
from .test_apply import CRD

VARS = "export ADMIN_CTX ?= kubernetes-admin@kubernetes\n"


def names(request):
    tag = hashlib.sha256(request.node.name.encode()).hexdigest()[:6]
    return f"inst-{tag}"


def kubectl(plane, *args, check=True, stdin_text=None):
    result = subprocess.run(["kubectl", "--kubeconfig", plane.kubeconfig, *args], input=stdin_text,
                            capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def component(project, name, depends=(), namespace=None, **files):
    lines = []
    if depends:
        lines.append(f"depends: [{', '.join(depends)}]")
    if namespace:
        lines.append(f"namespace: {namespace}")
    project.write(f"manifests/{name}/component.yaml", "\n".join(lines) + "\n")
    for file_name, text in files.items():
        project.write(f"manifests/{name}/{file_name}.yaml", text)


def namespace_yaml(name, **labels):
    label_text = "".join(f"\n    {k}: {v}" for k, v in labels.items())
    return f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}" + (
        f"\n  labels:{label_text}" if labels else "") + "\n"


def job_yaml(name, annotations):
    notes = "".join(f"\n        {k}: {json.dumps(v)}" for k, v in annotations.items())
    return f"""\
apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
  backoffLimit: 0
  template:
    metadata:
      annotations:{notes}
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: registry.k8s.io/pause:3.10
"""


def deployment_yaml(name, annotations=None, secret=None, port=None):
    template_meta = f"labels: {{app: {name}}}"
    if annotations:
        template_meta += "\n      annotations:" + "".join(f"\n        {k}: {json.dumps(v)}"
                                                     for k, v in annotations.items())
    ports = f"\n        ports:\n        - containerPort: {port}" if port else ""
    mount = volume = ""
    if secret:
        mount = "\n        volumeMounts:\n        - name: certs\n          mountPath: /certs"
        volume = f"\n      volumes:\n      - name: certs\n        secret:\n          secretName: {secret}"
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      {template_meta}
    spec:
      containers:
      - name: main
        image: registry.k8s.io/pause:3.10{ports}{mount}{volume}
"""


@pytest.fixture
def cluster_project(project, control_plane, request):
    project.write("Makefile.vars", VARS)
    project.env = {"KUBECONFIG": control_plane.kubeconfig}
    made = []
    yield project, names(request), made
    for ns in made:
        kubectl(control_plane, "delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)


def install(project, *args):
    start = time.monotonic()
    result = project.run("install", *args, env=project.env)
    return result, time.monotonic() - start


def test_a_failed_job_fails_its_component_and_dependents_only(cluster_project, control_plane):
    project, tag, made = cluster_project
    ns = f"{tag}-ns"
    made.append(ns)
    component(project, f"{tag}-base", namespace=ns, **{"10-ns": namespace_yaml(ns)})
    component(project, f"{tag}-broken", depends=[f"{tag}-base"], namespace=ns,
              **{"10-job": job_yaml("migrate", {"controlplane.test/fail": "schema v7 missing"})})
    component(project, f"{tag}-after", depends=[f"{tag}-broken"], namespace=ns,
              **{"10-cm": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: after\n"})
    component(project, f"{tag}-other", depends=[f"{tag}-base"], namespace=ns,
              **{"10-deploy": deployment_yaml("other")})
    result, _ = install(project, "--timeout", "60")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert re.search(rf"{tag}-broken: failed \(job\.batch/migrate failed: BackoffLimitExceeded.*"
                     rf"pod migrate-\w+: Error, exit code 1, schema v7 missing", out), out
    assert f"{tag}-after: skipped (needs {tag}-broken, which failed)" in out
    assert f"{tag}-other: ready" in out and f"{tag}-base: ready" in out
    assert "configmap/after not applied" in out
    assert kubectl(control_plane, "-n", ns, "get", "configmap", "after", check=False).returncode != 0
    assert kubectl(control_plane, "-n", ns, "get", "deployment", "other").returncode == 0


@pytest.mark.parametrize("command", ["install", "apply"])
def test_a_deployment_waits_for_the_secret_its_job_creates_and_a_webhook_for_its_backend(
        cluster_project, control_plane, command):
    """ingress-nginx's shape: the controller mounts a Secret only the certgen Job writes, and
    its admission webhook refuses what it intercepts until the controller's pod is Ready.
    One install must get through, and the dependent's object really passes the webhook;
    `apply` waits for no rollout, but still for the webhook's backend."""
    if os.geteuid() != 0:
        pytest.skip("webhook backends live in the apiserver's network namespace (root)")
    project, tag, made = cluster_project
    ns, user_ns = f"{tag}-gate", f"{tag}-user"
    made += [ns, user_ns]
    with open(os.path.join(control_plane.pki, "ca.crt"), "rb") as f:
        ca_bundle = base64.b64encode(f.read()).decode()
    webhook = f"""\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: {tag}-gate
webhooks:
- name: gate.{tag}.example.com
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 5
  namespaceSelector:
    matchLabels: {{gate: {tag}}}
  clientConfig:
    caBundle: {ca_bundle}
    service: {{name: gate, namespace: {ns}}}
  rules:
  - apiGroups: [""]
    apiVersions: [v1]
    operations: [CREATE]
    resources: [configmaps]
"""
    service = ("apiVersion: v1\nkind: Service\nmetadata:\n  name: gate\nspec:\n  selector: {app: gate}\n"
               "  ports:\n  - port: 443\n    targetPort: 8443\n")
    component(project, f"{tag}-gate", namespace=ns, **{
        "10-ns": namespace_yaml(ns), "20-svc": service, "40-webhook": webhook,
        "30-deploy": deployment_yaml("gate", {"controlplane.test/serve": f"gate.{ns}.svc"},
                                     secret="gate-admission", port=8443),
        "35-job": job_yaml("certgen", {"controlplane.test/creates-secret": "gate-admission"})})
    component(project, f"{tag}-user", depends=[f"{tag}-gate"], namespace=user_ns, **{
        "10-ns": namespace_yaml(user_ns, gate=tag),
        "20-cm": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: passes\n"})
    try:
        if command == "install":
            result, _ = install(project, "--timeout", "90")
        else:
            result = project.run("apply", f"{tag}-gate", f"{tag}-user", "--timeout", "90", env=project.env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"{tag}-gate: ready" in result.stdout and f"{tag}-user: ready" in result.stdout
        assert kubectl(control_plane, "-n", user_ns, "get", "configmap", "passes").returncode == 0
        # the backend really judges what it intercepts: one it is told to deny is refused
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "nope", "labels": {"controlplane.test/deny": "gate-says-no"}}}
        denied = subprocess.run(["kubectl", "--kubeconfig", control_plane.kubeconfig, "-n", user_ns, "create",
                                 "-f", "-"], input=json.dumps(body), capture_output=True, text=True, timeout=60)
        assert denied.returncode != 0 and "gate-says-no" in denied.stderr, denied.stderr
    finally:
        kubectl(control_plane, "delete", "validatingwebhookconfiguration", f"{tag}-gate", "--ignore-not-found",
                check=False)


def test_a_timeout_is_kept_and_progress_says_why_a_pod_is_not_ready(cluster_project, control_plane):
    """A pod whose Secret never comes: every 10 s a line says what the component waits for, down
    to kubelet's reason, and the timeout comes when it was asked for, naming the same."""
    project, tag, made = cluster_project
    ns = f"{tag}-ns"
    made.append(ns)
    component(project, f"{tag}-stuck", namespace=ns, **{
        "10-ns": namespace_yaml(ns), "20-deploy": deployment_yaml("stuck", secret="never-made")})
    result, elapsed = install(project, "--timeout", "12")
    assert result.returncode == 1
    assert 12 <= elapsed < 40, elapsed
    why = r'pod stuck-[a-z0-9]+-[a-z0-9]+ ContainerCreating: MountVolume\.SetUp failed: secret "never-made" not found'
    progress = [line for line in result.stdout.splitlines() if line.startswith(f"{tag}-stuck: 1")]
    assert len(progress) == 1 and re.search(rf"waiting for deployment\.apps/stuck \(0/1 ready.*: {why}\)",
                                            progress[0]), result.stdout
    assert re.search(rf"{tag}-stuck: failed \(timed out after 12s waiting for deployment\.apps/stuck "
                     rf"\(0/1 ready.*: {why}\)\)", result.stdout), result.stdout


def test_dry_runs_of_install_and_delete_change_nothing(cluster_project, control_plane):
    project, tag, made = cluster_project
    ns = f"{tag}-ns"
    made.append(ns)
    config = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  level: {level}\n"
    component(project, f"{tag}-app", namespace=ns, **{"10-ns": namespace_yaml(ns),
                                                      "20-cm": config.format(level="low")})
    result, _ = install(project)
    assert result.returncode == 0, result.stdout + result.stderr
    before = json.loads(kubectl(control_plane, "-n", ns, "get", "configmap", "settings", "-o", "json").stdout)

    project.write(f"manifests/{tag}-app/20-cm.yaml", config.format(level="high"))
    result, _ = install(project, "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "configmap/settings configured (server dry run)" in result.stdout.splitlines()
    assert f"namespace/{ns} unchanged (server dry run)" in result.stdout.splitlines()

    result = project.run("delete", f"{tag}-app", "--dry-run", env=project.env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "configmap/settings deleted (server dry run)" in result.stdout.splitlines()
    after = json.loads(kubectl(control_plane, "-n", ns, "get", "configmap", "settings", "-o", "json").stdout)
    assert after["data"] == {"level": "low"}
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert kubectl(control_plane, "get", "namespace", ns, "-o", "jsonpath={.status.phase}").stdout == "Active"


def test_the_summary_names_what_install_left_out_and_why(cluster_project, control_plane):
    project, tag, made = cluster_project
    ns = f"{tag}-ns"
    made.append(ns)
    component(project, f"{tag}-app", namespace=ns, **{"10-ns": namespace_yaml(ns)})
    project.write(f"manifests/{tag}-old/component.yaml", f"namespace: {ns}\nmaxVersion: '1.20'\n")
    project.write(f"manifests/{tag}-old/10-cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: old\n")
    project.write(f"manifests/{tag}-db/component.yaml", f"namespace: {ns}\nrequiresSecret: db-creds\n")
    project.write(f"manifests/{tag}-db/10-cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: db\n")
    result, _ = install(project)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert f"  {tag}-app: ready" in lines
    assert f"  {tag}-old: skipped (needs Kubernetes <= 1.20)" in lines
    assert f"  {tag}-db: skipped (Secret {ns}/db-creds does not exist yet)" in lines


def test_delete_goes_dependents_first_and_waits_for_finalizers(cluster_project, control_plane):
    project, tag, made = cluster_project
    ns = f"{tag}-ns"
    made.append(ns)
    component(project, f"{tag}-base", namespace=ns, **{"10-ns": namespace_yaml(ns)})
    component(project, f"{tag}-app", depends=[f"{tag}-base"], namespace=ns, **{
        "10-cm": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n"
                 "  finalizers: [example.com/hold]\n"})
    result, _ = install(project)
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        result = project.run("delete", f"{tag}-base", f"{tag}-app", "--timeout", "3", "--yes", env=project.env)
        assert result.returncode == 1
        lines = result.stdout.splitlines()
        assert f"  {tag}-app: failed (timed out after 3s waiting for configmap/held (still terminating))" in lines
        assert f"  {tag}-base: skipped (needs {tag}-app, which failed)" in lines  # its namespace is kept
        assert kubectl(control_plane, "get", "namespace", ns, "-o", "jsonpath={.status.phase}").stdout == "Active"
    finally:
        kubectl(control_plane, "-n", ns, "patch", "configmap", "held", "--type=merge",
                "-p", '{"metadata":{"finalizers":null}}', check=False)


def test_delete_asks_first_naming_dependents_and_bound_claims(cluster_project, control_plane):
    project, tag, made = cluster_project
    ns = f"{tag}-ns"
    made.append(ns)
    volume = (f"apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: {tag}-pv\nspec:\n"
              "  capacity: {storage: 1Gi}\n  accessModes: [ReadWriteOnce]\n  storageClassName: ''\n"
              f"  hostPath: {{path: /srv/{tag}}}\n  claimRef: {{namespace: {ns}, name: data}}\n")
    claim = ("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\nspec:\n"
             "  accessModes: [ReadWriteOnce]\n  storageClassName: ''\n  resources: {requests: {storage: 1Gi}}\n"
             f"  volumeName: {tag}-pv\n")
    component(project, f"{tag}-base", namespace=ns, **{"10-ns": namespace_yaml(ns), "20-pv": volume,
                                                       "30-pvc": claim})
    component(project, f"{tag}-app", depends=[f"{tag}-base"], namespace=ns,
              **{"10-cm": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n"})
    result, _ = install(project)
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        deadline = time.monotonic() + 30
        while kubectl(control_plane, "-n", ns, "get", "pvc", "data", "-o", "jsonpath={.status.phase}").stdout \
                != "Bound":
            assert time.monotonic() < deadline, "the PV controller never bound the claim"
            time.sleep(0.5)
        refused = project.run("delete", f"{tag}-base", env=project.env)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert f"these components depend on it and stay, broken: {tag}-app" in refused.stderr
        assert f"namespace {ns} goes with its bound PersistentVolumeClaims: data" in refused.stderr
        assert "add --yes (YES=1 through make)" in refused.stderr
        assert kubectl(control_plane, "get", "namespace", ns, "-o", "jsonpath={.status.phase}").stdout == "Active"
    finally:
        kubectl(control_plane, "delete", "pv", f"{tag}-pv", "--wait=false", "--ignore-not-found", check=False)


def test_prune_finds_every_kind_a_component_applied_and_spares_what_moved(cluster_project, control_plane):
    """The ApplySet inventory: a custom resource and a PriorityClass the component dropped are
    pruned (no fixed list of kinds names them); a ConfigMap that moved to another component stays."""
    project, tag, made = cluster_project
    ns, group = f"{tag}-ns", f"{tag}.example.com"
    made.append(ns)
    crd = CRD.format(group=group)
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"
    component(project, f"{tag}-base", namespace=ns, **{"10-ns": namespace_yaml(ns), "20-crd": crd})
    component(project, f"{tag}-app", depends=[f"{tag}-base"], namespace=ns, **{
        "10-widget": f"apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: w\n",
        "20-prio": f"apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: {tag}-prio\nvalue: 10\n",
        "30-stays": cm.format(name="stays"), "40-moving": cm.format(name="moving")})
    component(project, f"{tag}-other", depends=[f"{tag}-base"], namespace=ns,
              **{"10-cm": cm.format(name="other")})
    try:
        result, _ = install(project)
        assert result.returncode == 0, result.stdout + result.stderr
        parent = json.loads(kubectl(control_plane, "-n", "kube-system", "get", "configmap", f"applyset-{tag}-app",
                                    "-o", "json").stdout)
        assert parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"] == \
            f"ConfigMap,PriorityClass.scheduling.k8s.io,Widget.{group}"

        for name in ("10-widget", "20-prio", "40-moving"):
            os.remove(os.path.join(project.root, "manifests", f"{tag}-app", f"{name}.yaml"))
        project.write(f"manifests/{tag}-other/20-moving.yaml", cm.format(name="moving"))
        result = project.run("apply", f"{tag}-app", f"{tag}-other", "--prune", env=project.env)
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        assert f"widget.{group}/w pruned" in lines and f"priorityclass.scheduling.k8s.io/{tag}-prio pruned" in lines
        assert not any(line.startswith("configmap/moving pruned") for line in lines), lines
        moved = json.loads(kubectl(control_plane, "-n", ns, "get", "configmap", "moving", "-o", "json").stdout)
        assert moved["metadata"]["labels"]["k8s-toolkit/component"] == f"{tag}-other"
        assert kubectl(control_plane, "get", "priorityclass", f"{tag}-prio", check=False).returncode != 0
        parent = json.loads(kubectl(control_plane, "-n", "kube-system", "get", "configmap", f"applyset-{tag}-app",
                                    "-o", "json").stdout)
        assert parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"] == "ConfigMap"

        result = project.run("delete", f"{tag}-app", f"{tag}-other", f"{tag}-base", "--yes", env=project.env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert kubectl(control_plane, "-n", "kube-system", "get", "configmap", f"applyset-{tag}-app",
                       check=False).returncode != 0  # the parent goes with its set
    finally:
        kubectl(control_plane, "delete", "priorityclass", f"{tag}-prio", "--ignore-not-found", check=False)
        kubectl(control_plane, "delete", "crd", f"widgets.{group}", "--ignore-not-found", "--wait=false", check=False)
        for name in ("app", "other", "base"):
            kubectl(control_plane, "-n", "kube-system", "delete", "configmap", f"applyset-{tag}-{name}",
                    "--ignore-not-found", check=False)


def test_an_install_from_before_applysets_is_adopted_and_its_leftovers_pruned(cluster_project, control_plane):
    """Objects an earlier version applied carry only managed-by and component labels and
    have no set: the next apply adopts them into the component's ApplySet, and a prune
    still finds what that earlier install left behind, while another tool's look-alike
    (the component label without managed-by) is never touched."""
    project, tag, made = cluster_project
    ns = f"{tag}-ns"
    made.append(ns)
    app = f"{tag}-app"
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: " + ns + "\n  labels:\n{labels}"
    old_labels = f"    app.kubernetes.io/managed-by: k8s-toolkit\n    k8s-toolkit/component: {app}\n"
    kubectl(control_plane, "create", "namespace", ns)
    for name, labels in (("kept", old_labels), ("dropped", old_labels),
                         ("foreign", f"    k8s-toolkit/component: {app}\n")):
        kubectl(control_plane, "apply", "--server-side", "--field-manager", "k8s-toolkit", "-f", "-",
                stdin_text=cm.format(name=name, labels=labels))
    component(project, app, namespace=ns, **{"10-kept": cm.format(name="kept", labels="    a: b\n")})

    result = project.run("apply", app, env=project.env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "configmap/kept configured" in result.stdout.splitlines()
    kept = json.loads(kubectl(control_plane, "-n", ns, "get", "configmap", "kept", "-o", "json").stdout)
    assert kept["metadata"]["labels"]["applyset.kubernetes.io/part-of"].startswith("applyset-")
    try:
        result = project.run("apply", app, "--prune", env=project.env)
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        assert "configmap/dropped pruned" in lines and not any("foreign" in line for line in lines), lines
        assert kubectl(control_plane, "-n", ns, "get", "configmap", "foreign", check=False).returncode == 0
        assert kubectl(control_plane, "-n", ns, "get", "configmap", "dropped", check=False).returncode != 0
        parent = json.loads(kubectl(control_plane, "-n", "kube-system", "get", "configmap", f"applyset-{app}",
                                    "-o", "json").stdout)
        assert parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"] == "ConfigMap"
    finally:
        kubectl(control_plane, "-n", "kube-system", "delete", "configmap", f"applyset-{app}",
                "--ignore-not-found", check=False)


def run_on_a_terminal(project, args, env):
    """render.py with its standard output on a pseudo-terminal; (exit code, what the terminal got)."""
    import pty
    import select

    primary, secondary = pty.openpty()
    full = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "render.py"), *args], cwd=project.root,
                               env={**full, **env, "TERM": "xterm", "COLUMNS": "160"},
                               stdout=secondary, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.close(secondary)
    seen = b""
    while True:
        ready, _, _ = select.select([primary], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            seen += chunk
        elif process.poll() is not None:
            break
    os.close(primary)
    return process.wait(timeout=60), seen.decode("utf-8", "replace")


@pytest.mark.parametrize("no_color", [False, True])
def test_a_terminal_gets_a_live_board_unless_no_color(cluster_project, control_plane, no_color):
    project, tag, made = cluster_project
    ns = f"{tag}-ns"
    made.append(ns)
    component(project, f"{tag}-app", namespace=ns, **{
        "10-ns": namespace_yaml(ns), "20-deploy": deployment_yaml("web", {"controlplane.test/delay": "2"})})
    env = {**project.env, **({"NO_COLOR": "1"} if no_color else {})}
    code, screen = run_on_a_terminal(project, ["install", "--timeout", "60"], env)
    assert code == 0, screen
    assert "deployment.apps/web created" in screen and f"  {tag}-app: ready" in screen
    if no_color:
        assert "\x1b[" not in screen  # plain lines: no cursor movement, no colour
    else:
        assert "\x1b[" in screen and "waiting for deployment.apps/web" in screen  # the board's row, redrawn


def test_a_fatal_error_ends_the_graph_after_the_components_under_way():
    """graph.run's `fatal`: nothing starts after it, what runs finishes, then it is raised;
    any other exception fails its own component only."""
    import threading

    from k8s.cluster import graph

    started, release = [], threading.Event()

    class Fatal(Exception):
        pass

    def work(name):
        started.append(name)
        if name == "slow":
            release.wait(5)
            return True, ""
        if name == "bad":
            release.set()
            raise Fatal("the server's answer cannot be used")
        if name == "broken":
            raise ValueError("only mine")
        return True, ""

    depends = {"slow": [], "bad": [], "after": ["bad"], "later": ["slow"]}
    with pytest.raises(Fatal, match="cannot be used"):
        graph.run(depends, work, parallel=2, fatal=(Fatal,))
    assert sorted(started) == ["bad", "slow"]  # "later" and "after" never started

    results = graph.run({"broken": [], "fine": [], "next": ["broken"]}, work, fatal=(Fatal,))
    assert {n: r.state for n, r in results.items()} == {"broken": "failed", "fine": "ready", "next": "skipped"}

"""make kubeconfig and make untaint_master against the session's real control plane.

Each test works in a user namespace of its own, made by the toolkit's own `namespace`
component (service accounts, Role, bindings), so the token `make kubeconfig` asks the
real TokenRequest API for is checked by using it. Requests are counted through the
fault proxy's log or the apiserver's audit log.
"""

import base64
import json
import os
import stat
import subprocess
import sys
import time
import uuid

import pytest
import yaml

from ..conftest import ROOT

KUBECTL = "/usr/bin/kubectl"
CONTROL_PLANE_TAINT = "node-role.kubernetes.io/control-plane"


def make(target, env, *extra):
    full = {k: v for k, v in os.environ.items() if k not in ("VARS_FILE", "MAKEFLAGS", "MAKELEVEL")}
    full.update(env)
    return subprocess.run(["make", "-s", target, *extra], cwd=ROOT, env=full, capture_output=True,
                          text=True, timeout=120)


def render_py(env, *args):
    full = {k: v for k, v in os.environ.items() if k not in ("VARS_FILE", "KUBECONFIG_OUT")}
    full.update(env)
    return subprocess.run([sys.executable, os.path.join(ROOT, "render.py"), *args], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=120)


def kubectl(kubeconfig, *argv, stdin=None, check=True):
    result = subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), *argv], input=stdin,
                            capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def token_path(namespace):
    return f"/api/v1/namespaces/{namespace}/serviceaccounts/{namespace}-user/token"


@pytest.fixture
def user_namespace(control_plane):
    """make(long_lived=False) -> the name of a new user namespace of this test, applied with the
    toolkit's `namespace` component; deleted when the test ends."""
    made = []

    def make_namespace(long_lived=False):
        name = f"access-{uuid.uuid4().hex[:8]}"
        result = render_py({"KUBECONFIG": control_plane.kubeconfig, "K8S_NAMESPACE": name,
                            "LONG_LIVED_USER_TOKEN": "true" if long_lived else "false"}, "apply", "namespace")
        assert result.returncode == 0, result.stdout + result.stderr
        made.append(name)
        return name

    yield make_namespace
    for name in made:
        kubectl(control_plane.kubeconfig, "delete", "namespace", name, "--wait=false", check=False)
        kubectl(control_plane.kubeconfig, "delete", "clusterrolebinding", f"{name}:system-user-binding",
                "--wait=false", check=False)
        kubectl(control_plane.kubeconfig, "delete", "clusterrole", f"{name}:system-user", "--wait=false",
                check=False)


def jwt_claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def audit_events(plane, uri, verb=None):
    with open(plane.audit_log, encoding="utf-8") as f:
        events = [json.loads(line) for line in f]
    return [e for e in events if e.get("requestURI", "").split("?")[0] == uri and (verb is None or e["verb"] == verb)]


def wait_for(check, timeout=30, what="the condition"):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return found


RESTRICTED_POD = {
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe"},
    "spec": {"securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                                 "seccompProfile": {"type": "RuntimeDefault"}},
             "containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10",
                             "securityContext": {"allowPrivilegeEscalation": False,
                                                 "capabilities": {"drop": ["ALL"]}}}]}}


def test_kubeconfig_has_sudo_and_user_contexts_with_a_requested_token(tmp_path, control_plane, user_namespace):
    namespace = user_namespace()
    out = tmp_path / "home" / "config.conf"
    result = make("kubeconfig", {"KUBECONFIG": control_plane.kubeconfig, "KUBECONFIG_OUT": str(out),
                                 "K8S_NAMESPACE": namespace, "USER_TOKEN_HOURS": "2"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith(f"wrote {out} (mode 0600)")
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    config = yaml.safe_load(out.read_text())
    contexts = {c["name"]: c["context"] for c in config["contexts"]}
    assert contexts["sudo"] == {"cluster": "kubernetes", "user": "kubernetes-admin", "namespace": "kube-system"}
    assert contexts["user@kubernetes"] == {"cluster": "kubernetes", "user": "user", "namespace": namespace}
    assert config["current-context"] == "user@kubernetes"
    users = {u["name"]: u["user"] for u in config["users"]}
    assert list(users["user"]) == ["token"]
    token = users["user"]["token"]

    # a token the real TokenRequest API issued: bound to the namespace user, for USER_TOKEN_HOURS
    claims = jwt_claims(token)
    assert claims["sub"] == f"system:serviceaccount:{namespace}:{namespace}-user"
    assert claims["exp"] - claims["iat"] == 2 * 3600
    [request] = wait_for(lambda: audit_events(control_plane, token_path(namespace), verb="create"),
                         what="the TokenRequest's audit event")
    assert request["user"]["username"] == "kubernetes-admin" and request["responseStatus"]["code"] == 201

    # and it works: the user context (current) runs and lists pods in its namespace, nowhere else
    whoami = json.loads(kubectl(out, "auth", "whoami", "-o", "json").stdout)
    assert whoami["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:{namespace}-user"
    kubectl(out, "create", "-f", "-", stdin=json.dumps(RESTRICTED_POD))
    listed = json.loads(kubectl(out, "get", "pods", "-o", "json").stdout)
    assert [p["metadata"]["name"] for p in listed["items"]] == ["probe"]
    assert listed["items"][0]["metadata"]["namespace"] == namespace
    elsewhere = kubectl(out, "get", "pods", "-n", "default", check=False)
    assert elsewhere.returncode == 1 and "Forbidden" in elsewhere.stderr
    # Secrets: listed and created, never read, in the user context
    read = kubectl(out, "get", "secret", "anything", check=False)
    assert read.returncode == 1 and "cannot get resource \"secrets\"" in read.stderr
    # the sudo context is the admin in kube-system
    assert kubectl(out, "--context", "sudo", "get", "pods", "-o", "name").returncode == 0
    assert json.loads(kubectl(out, "--context", "sudo", "auth", "whoami", "-o", "json").stdout)[
        "status"]["userInfo"]["username"] == "kubernetes-admin"

    # the issued token is never written to the audit log
    with open(control_plane.audit_log, "rb") as f:
        log = f.read()
    assert token.encode() not in log and token.split(".")[2].encode() not in log


def test_kubeconfig_with_a_long_lived_token_reads_the_token_secret(tmp_path, control_plane, user_namespace):
    namespace = user_namespace(long_lived=True)
    secret = f"/api/v1/namespaces/{namespace}/secrets/{namespace}-user-token"
    # the token controller fills the Secret the component made
    encoded = wait_for(lambda: (control_plane.get(secret).get("data") or {}).get("token"),
                       what="the token controller")
    out = tmp_path / "config.conf"
    result = make("kubeconfig", {"KUBECONFIG": control_plane.kubeconfig, "KUBECONFIG_OUT": str(out),
                                 "K8S_NAMESPACE": namespace, "LONG_LIVED_USER_TOKEN": "true"})
    assert result.returncode == 0, result.stderr
    users = {u["name"]: u["user"] for u in yaml.safe_load(out.read_text())["users"]}
    assert users["user"] == {"token": base64.b64decode(encoded).decode()}
    assert "exp" not in jwt_claims(users["user"]["token"])  # a token that never expires
    assert audit_events(control_plane, token_path(namespace), verb="create") == []  # no TokenRequest
    whoami = json.loads(kubectl(out, "auth", "whoami", "-o", "json").stdout)
    assert whoami["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:{namespace}-user"
    assert kubectl(out, "get", "pods", "-o", "name").stdout == ""
    with open(control_plane.audit_log, "rb") as f:
        assert users["user"]["token"].encode() not in f.read()


@pytest.fixture
def tainted_node(control_plane):
    """A Node object of this test's own with the control-plane taint and another one. No kubelet
    runs it; the `dedicated` taint keeps other tests' pods off it."""
    name = f"untaint-{uuid.uuid4().hex[:8]}"
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "spec": {"taints": [{"key": CONTROL_PLANE_TAINT, "effect": "NoSchedule"},
                                {"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}}
    kubectl(control_plane.kubeconfig, "create", "-f", "-", stdin=json.dumps(node))
    yield name
    kubectl(control_plane.kubeconfig, "delete", "node", name, "--wait=false", check=False)


def test_untaint_master_removes_only_the_control_plane_taints(control_plane, tainted_node):
    admin = control_plane.kubeconfig
    unnamed = make("untaint_master", {"KUBECONFIG": admin})
    assert unnamed.returncode != 0 and unnamed.stderr.splitlines()[-2:-1] == [
        "error: render.py untaint: the following arguments are required: NODE "
        "(through make: NODE=... make untaint_master)"], unnamed.stderr
    dry = render_py({"KUBECONFIG": admin}, "untaint", tainted_node, "--dry-run")
    assert dry.returncode == 0 and dry.stdout.strip() == (
        f"node/{tainted_node} untainted (server dry run): {CONTROL_PLANE_TAINT}"), dry.stdout + dry.stderr
    assert CONTROL_PLANE_TAINT in [t["key"] for t in control_plane.get(f"/api/v1/nodes/{tainted_node}")["spec"]["taints"]]
    result = make("untaint_master", {"KUBECONFIG": admin, "NODE": tainted_node})
    assert result.returncode == 0, result.stderr
    assert f"warning: pods on {tainted_node} can reach the control plane's credentials" in result.stderr
    assert result.stdout.strip() == f"node/{tainted_node} untainted: {CONTROL_PLANE_TAINT}"
    taints = control_plane.get(f"/api/v1/nodes/{tainted_node}")["spec"]["taints"]
    # (the node lifecycle controller may add node.kubernetes.io/ taints to a node without a kubelet)
    assert [t for t in taints if not t["key"].startswith("node.kubernetes.io/")] == [
        {"key": "dedicated", "value": "db", "effect": "NoSchedule"}]
    again = make("untaint_master", {"KUBECONFIG": admin, "NODE": tainted_node})
    assert again.stdout.strip() == f"node/{tainted_node} has no control-plane taint"
    missing = make("untaint_master", {"KUBECONFIG": admin, "NODE": f"ghost-{uuid.uuid4().hex[:8]}"})
    assert missing.returncode == 2
    assert "not found in the cluster" in missing.stderr
    # the session's real control-plane node kept its role and was never touched
    assert "node-role.kubernetes.io/control-plane" in control_plane.get("/api/v1/nodes/kube1")["metadata"]["labels"]


# --- bad input: one error line, no traceback -------------------------------------

def test_user_token_hours_must_be_a_sane_number_of_hours(tmp_path, fault_proxy):
    from k8s.nodes import access
    from k8s.errors import UserError

    assert access.token_seconds("2") == 7200
    assert access.token_seconds("") == access.token_seconds(None) == 720 * 3600
    for bad in ("abc", "nan", "inf", "-inf", "0", "-1", "0.1", "1e9"):
        with pytest.raises(UserError, match=r"^USER_TOKEN_HOURS must be a number of hours from 0.17 "
                                            r"\(10 minutes\) to 87840, got "):
            access.token_seconds(bad)
    admin = fault_proxy.kubeconfig(tmp_path / "admin.conf")
    result = render_py({"KUBECONFIG": admin, "USER_TOKEN_HOURS": "inf"},
                       "kubeconfig", "--out", str(tmp_path / "out.conf"))
    assert (result.returncode, result.stderr) == (1, "error: USER_TOKEN_HOURS='inf' (environment): not a number "
                                                     "of hours from 0.17 (10 minutes) to 87840\n")
    assert fault_proxy.requests(method="POST") == []
    assert fault_proxy.requests(path=r"/serviceaccounts/") == []
    assert not (tmp_path / "out.conf").exists()


def test_an_admin_context_without_a_user_is_one_line(tmp_path):
    from k8s.nodes import access
    from k8s.errors import UserError

    path = tmp_path / "admin.conf"
    path.write_text("contexts:\n- name: admin\n  context: {cluster: c}\nclusters:\n- name: c\n  cluster: {}\n")
    try:
        access.user_kubeconfig(str(path), "admin", "kubernetes", "worker", "t")
    except UserError as err:
        assert str(err) == f"kubeconfig {path}: context 'admin' has no user"
    else:
        raise AssertionError("no error")


def test_an_out_file_that_cannot_be_written_is_one_line(tmp_path, control_plane, user_namespace):
    namespace = user_namespace()
    env = {"KUBECONFIG": control_plane.kubeconfig, "K8S_NAMESPACE": namespace}
    (tmp_path / "file").write_text("x\n")
    for out, message in ((tmp_path, "is a directory: name the file to write"),
                         (tmp_path / "file" / "kc", f"cannot write it: {tmp_path / 'file'} is not a directory"),
                         ("/proc/no-such-dir/kc", "cannot write it: No such file or directory")):
        result = render_py(env, "kubeconfig", "--out", str(out))
        assert (result.returncode, result.stderr) == (1, f"error: {out}: {message}\n"), out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # no temporary file left behind


def test_untaint_refuses_what_is_not_a_node_name_before_asking_the_api_server(tmp_path, fault_proxy):
    admin = fault_proxy.kubeconfig(tmp_path / "admin.conf")
    for node in ("?watch=1", "", "..", "kube1/x", "Kube1"):
        result = render_py({"KUBECONFIG": admin}, "untaint", node)
        assert result.returncode == 2, (node, result.stderr)
        assert result.stderr.splitlines()[-1].startswith(f"error: NODE: {node!r} is not a node name "
                                                         "(a DNS-1123 subdomain"), result.stderr
    assert fault_proxy.requests(path="/api/v1/nodes") == []
    assert fault_proxy.requests() == []  # not even discovery

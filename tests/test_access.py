"""make kubeconfig and make untaint_master against the API server stand-in."""

import os
import stat

import yaml

from .apiserver import ApiServer
from .conftest import ROOT

TOKEN_PATH = "/api/v1/namespaces/worker/serviceaccounts/worker-user/token"


def make(target, env, *extra):
    import subprocess

    full = {k: v for k, v in os.environ.items() if k not in ("VARS_FILE", "MAKEFLAGS", "MAKELEVEL")}
    full.update(env)
    return subprocess.run(["make", "-s", target, *extra], cwd=ROOT, env=full, capture_output=True,
                          text=True)


def test_kubeconfig_has_sudo_and_user_contexts_with_a_requested_token(tmp_path):
    with ApiServer(version="1.33.1") as server:
        admin = server.kubeconfig(tmp_path / "admin.conf")
        server.emulator[f"post {TOKEN_PATH}"] << {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "status": {"token": "bound-user-token", "expirationTimestamp": "2027-01-01T00:00:00Z"}}
        out = tmp_path / "home" / "config.conf"
        result = make("kubeconfig", {"KUBECONFIG": str(admin), "KUBECONFIG_OUT": str(out),
                                     "USER_TOKEN_HOURS": "2"})
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[0].startswith(f"wrote {out} (mode 0600)")
        assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
        config = yaml.safe_load(out.read_text())
        contexts = {c["name"]: c["context"] for c in config["contexts"]}
        assert contexts["sudo"]["namespace"] == "kube-system"
        assert contexts["user@kubernetes"] == {"cluster": "kubernetes", "user": "user", "namespace": "worker"}
        assert config["current-context"] == "user@kubernetes"
        users = {u["name"]: u["user"] for u in config["users"]}
        assert users["user"] == {"token": "bound-user-token"}
        [request] = server.find_requests(method="POST", path=TOKEN_PATH)
        assert request.body["spec"]["expirationSeconds"] == 7200


def test_kubeconfig_with_a_long_lived_token_reads_the_token_secret(tmp_path):
    import base64

    with ApiServer(version="1.33.1") as server:
        admin = server.kubeconfig(tmp_path / "admin.conf")
        server.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "worker"}})
        server.seed({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
                     "metadata": {"name": "worker-user-token", "namespace": "worker"},
                     "data": {"token": base64.b64encode(b"forever-token").decode()}})
        out = tmp_path / "config.conf"
        result = make("kubeconfig", {"KUBECONFIG": str(admin), "KUBECONFIG_OUT": str(out),
                                     "LONG_LIVED_USER_TOKEN": "true"})
        assert result.returncode == 0, result.stderr
        users = {u["name"]: u["user"] for u in yaml.safe_load(out.read_text())["users"]}
        assert users["user"] == {"token": "forever-token"}


def test_untaint_master_removes_only_the_control_plane_taints(tmp_path):
    with ApiServer(version="1.33.1", nodes=0) as server:
        admin = server.kubeconfig(tmp_path / "admin.conf")
        server.seed({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "kube1"},
                     "spec": {"taints": [
                         {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
                         {"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}})
        result = make("untaint_master", {"KUBECONFIG": str(admin), "NODE": "kube1"})
        assert result.returncode == 0, result.stderr
        assert "warning: pods on kube1 can reach the control plane's credentials" in result.stderr
        assert result.stdout.strip() == "node/kube1 untainted: node-role.kubernetes.io/control-plane"
        assert server.get("Node", "kube1")["spec"]["taints"] == [
            {"key": "dedicated", "value": "db", "effect": "NoSchedule"}]
        again = make("untaint_master", {"KUBECONFIG": str(admin), "NODE": "kube1"})
        assert again.stdout.strip() == "node/kube1 has no control-plane taint"
        missing = make("untaint_master", {"KUBECONFIG": str(admin), "NODE": "ghost"})
        assert missing.returncode == 2
        assert "error: node ghost not found in the cluster" in missing.stderr


# --- bad input: one error line, no traceback -------------------------------------

def render_py(env, *args):
    import subprocess
    import sys

    full = {k: v for k, v in os.environ.items() if k not in ("VARS_FILE", "KUBECONFIG_OUT")}
    full.update(env)
    return subprocess.run([sys.executable, os.path.join(ROOT, "render.py"), *args], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=60)


def test_user_token_hours_must_be_a_sane_number_of_hours(tmp_path):
    import pytest

    from k8s import access
    from k8s.errors import UserError

    assert access.token_seconds("2") == 7200
    assert access.token_seconds("") == access.token_seconds(None) == 720 * 3600
    for bad in ("abc", "nan", "inf", "-inf", "0", "-1", "0.1", "1e9"):
        with pytest.raises(UserError, match=r"^USER_TOKEN_HOURS must be a number of hours from 0.17 "
                                            r"\(10 minutes\) to 87840, got "):
            access.token_seconds(bad)
    with ApiServer(version="1.33.1") as server:
        admin = server.kubeconfig(tmp_path / "admin.conf")
        result = render_py({"KUBECONFIG": str(admin), "USER_TOKEN_HOURS": "inf"},
                           "kubeconfig", "--out", str(tmp_path / "out.conf"))
        assert (result.returncode, result.stderr) == (1, "error: USER_TOKEN_HOURS must be a number of hours "
                                                         "from 0.17 (10 minutes) to 87840, got 'inf'\n")
        assert server.find_requests(method="POST", path=TOKEN_PATH) == []


def test_an_admin_context_without_a_user_is_one_line(tmp_path):
    from k8s import access
    from k8s.errors import UserError

    path = tmp_path / "admin.conf"
    path.write_text("contexts:\n- name: admin\n  context: {cluster: c}\nclusters:\n- name: c\n  cluster: {}\n")
    try:
        access.user_kubeconfig(str(path), "admin", "kubernetes", "worker", "t")
    except UserError as err:
        assert str(err) == f"kubeconfig {path}: context 'admin' has no user"
    else:
        raise AssertionError("no error")


def test_an_out_file_that_cannot_be_written_is_one_line(tmp_path):
    with ApiServer(version="1.33.1") as server:
        admin = server.kubeconfig(tmp_path / "admin.conf")
        server.emulator[f"post {TOKEN_PATH}"] << {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "status": {"token": "t"}}
        (tmp_path / "file").write_text("x\n")
        for out, message in ((tmp_path, "is a directory: name the file to write"),
                             (tmp_path / "file" / "kc", f"cannot write it: {tmp_path / 'file'} is not a directory"),
                             ("/proc/no-such-dir/kc", "cannot write it: No such file or directory")):
            result = render_py({"KUBECONFIG": str(admin)}, "kubeconfig", "--out", str(out))
            assert (result.returncode, result.stderr) == (1, f"error: {out}: {message}\n"), out


def test_untaint_refuses_what_is_not_a_node_name_before_asking_the_api_server(tmp_path):
    with ApiServer(version="1.33.1", nodes=0) as server:
        admin = server.kubeconfig(tmp_path / "admin.conf")
        server.clear_requests()
        for node in ("?watch=1", "", "..", "kube1/x", "Kube1"):
            result = render_py({"KUBECONFIG": str(admin)}, "untaint", node)
            assert result.returncode == 2, (node, result.stderr)
            assert result.stderr.splitlines()[-1].startswith(f"error: NODE: {node!r} is not a node name "
                                                             "(a DNS-1123 subdomain"), result.stderr
        assert server.find_requests(path="/api/v1/nodes") == []

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

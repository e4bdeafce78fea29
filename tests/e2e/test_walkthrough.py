"""The README, followed step by step from a fresh clone, as a new user would.

(`make vendor` is left out: it downloads from the upstream release pages,
which this machine cannot reach; tests/core/test_vendor.py runs it against a local
HTTP server.)

Every step is the make target a user types, run in a `git clone` of this
repository in a temporary folder (so only committed files count) against a real
control plane of its own that `make sandbox` starts, as the README's "Trying it
without a cluster" says, with simulated nodes named as the default K8S_NODES. The clone builds its own .venv on the first step, as
the Quick start promises.
"""

import json
import os
import shutil
import subprocess

import pytest

from ..conftest import ROOT
from ..controlplane import build
from ..controlplane.harness import etcd_get
from ..gpg import kill_agent, new_gpg_home, remove_home

NODES = ["kube1.example.com", "kube2.example.com", "kube3.example.com"]


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    path = tmp_path_factory.mktemp("walkthrough") / "k8s"
    subprocess.run(["git", "clone", "-q", ROOT, str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def env(clone, tmp_path_factory):
    home = new_gpg_home()
    base = {k: v for k, v in os.environ.items()
            if k not in ("VARS_FILE", "MAKEFLAGS", "MAKELEVEL", "KUBECONFIG")
            and not k.startswith(("K8S_", "SOPS_", "PYTEST"))}
    base.update(GNUPGHOME=home, SOPS_KEY_TYPE="ed25519", HOME=str(tmp_path_factory.mktemp("home")),
                # the control plane binaries `make test` built, not a second build under the new HOME
                K8S_TOOLKIT_CONTROLPLANE_CACHE=build.cache_root())
    yield base
    kill_agent(home)
    remove_home(home)


def make(clone, env, *args, **extra):
    result = subprocess.run(["make", "-s", *args], cwd=clone, env={**env, **extra},
                            capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def ok(result):
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_readme_walkthrough(clone, env, tmp_path):
    # Quick start: render with the shipped defaults, no cluster.
    out = ok(make(clone, env, "render"))
    assert "valid for Kubernetes" in out.splitlines()[-1]
    assert sorted(os.listdir(clone / "build"))

    # Secrets: a key, the sops rules, a new encrypted secret.
    out = ok(make(clone, env, "sops_gen_gpg"))
    assert "fingerprint" in out.lower()
    ok(make(clone, env, "sops_gen_gpg"))  # reused, never duplicated
    ok(make(clone, env, "secrets/.sops.yaml"))
    (tmp_path / "pw").write_text("walkthrough-marker-6d2f")
    ok(make(clone, env, "secrets/db.yml", SECRET_ARGS=f"--from-file password={tmp_path / 'pw'}"))
    assert "walkthrough-marker-6d2f" not in (clone / "secrets" / "db.yml").read_text()
    # Once it exists, make neither calls it up to date nor echoes the arguments; set changes a key.
    again = make(clone, env, "secrets/db.yml", SECRET_ARGS="--from-literal password=echo-marker-77b1")
    assert again.returncode != 0 and "exists and is never overwritten" in again.stderr, again.stdout
    assert "echo-marker-77b1" not in again.stdout + again.stderr
    (tmp_path / "pw2").write_text("walkthrough-marker-2nd")
    out = ok(make(clone, env, "secret_set", NAME="db", SET=f"password=@{tmp_path / 'pw2'}"))
    assert "secrets/db.yml: stringData.password set" in out
    assert "walkthrough-marker-2nd" not in (clone / "secrets" / "db.yml").read_text()

    # Hardening for the control plane: files for kubeadm, the etcd key kept encrypted.
    out = ok(make(clone, env, "encryption_key"))
    assert "sops:" in (clone / "secrets" / "etcd-encryption.yml").read_text()
    out = ok(make(clone, env, "encryption_config"))
    assert "encryption-provider-config" in (clone / "build" / "kubeadm" / "cluster-configuration.yaml").read_text()
    ok(make(clone, env, "audit_policy"))
    assert "audit.k8s.io/v1" in (clone / "build" / "kubeadm" / "audit-policy.yaml").read_text()
    ok(make(clone, env, "admission_config"))
    assert (clone / "build" / "kubeadm" / "admission-config.yaml").exists()
    assert not (clone / "build" / "kubeadm-encryption.yaml").exists()

    out = ok(make(clone, env, "sandbox"))
    kubeconfig = str(clone / ".sandbox" / "admin.conf")
    assert f"export KUBECONFIG={kubeconfig}" in out
    try:
        with open(clone / ".sandbox" / "endpoints.json") as f:
            etcd = json.load(f)["etcd"]
        cluster = {"KUBECONFIG": kubeconfig}

        def get(path):
            got = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "get", "--raw", path],
                                 capture_output=True, text=True)
            if "NotFound" in got.stderr:
                return None
            assert got.returncode == 0, got.stderr
            return json.loads(got.stdout)

        # From a fresh cluster, in the README's order: preflight, node labels, data-sync's keys, install.
        out = ok(make(clone, env, "check", **cluster))
        ok(make(clone, env, "node_labels", **cluster))
        assert get(f"/api/v1/nodes/{NODES[0]}")["metadata"]["labels"]["service.data-sync"] == "allow"
        ok(make(clone, env, "data_sync_keys"))
        out = ok(make(clone, env, "install", **cluster))
        assert out.splitlines()[-1].endswith(" created")
        assert "secret/data-sync-ssh created" in out and "  data-sync: ready" in out, out
        for workload in ("ingress-nginx/deployments/ingress-nginx-controller", "headlamp/deployments/headlamp",
                         "kube-system/deployments/metrics-server", "data-sync/statefulsets/data-sync"):
            status = get(f"/apis/apps/v1/namespaces/{workload}")["status"]
            assert status.get("availableReplicas") == status["replicas"], (workload, status)
        again = ok(make(clone, env, "install", **cluster))
        assert again.splitlines()[-1].endswith(" unchanged"), again.splitlines()[-1]
        out = ok(make(clone, env, "secrets", **cluster))
        assert "secret/db created" in out
        assert get("/api/v1/namespaces/worker/secrets/db") is not None
        assert etcd_get(etcd, "/registry/secrets/worker/db").startswith(b"k8s:enc:secretbox:v1:")
        assert get("/api/v1/namespaces/kube-system/secrets/etcd-encryption") is None  # stays local
        out = ok(make(clone, env, "persistent", **cluster))
        assert len(get("/api/v1/persistentvolumes")["items"]) == 3 * (30 + 10 + 3)

        # Nothing to change after all that; one variable changed: exactly its objects.
        same = make(clone, env, "diff", **cluster)
        assert (same.returncode, same.stdout) == (0, ""), same.stderr
        changed = make(clone, env, "diff", LIMIT_CPU_DEFAULT="750m", **cluster)
        assert changed.returncode == 0, changed.stderr  # a change is no error; CI: render.py diff --exit-code
        headers = [line for line in changed.stdout.splitlines() if line.startswith("+++ ")]
        assert headers == ["+++ b/limitrange/default-limits"]
        one = make(clone, env, "diff", C="namespace", LIMIT_CPU_DEFAULT="750m", **cluster)
        assert [line for line in one.stdout.splitlines() if line.startswith("+++ ")] == headers, one.stderr
        refused = make(clone, env, "diff", "local-storage", **cluster)
        assert refused.returncode != 0 and "make diff C=local-storage" in refused.stderr

        # Delete: the namespace controller empties and finalizes the namespace for real. It
        # refuses to finish while an aggregated API is unavailable, as metrics.k8s.io is here
        # (no container runs to serve it): metrics-server goes first, dependents before it.
        out = ok(make(clone, env, "metrics-server", ACTION="delete", YES="1", **cluster))
        assert "apiservice.apiregistration.k8s.io/v1beta1.metrics.k8s.io deleted" in out
        out = ok(make(clone, env, "dashboard", ACTION="delete", YES="1", **cluster))
        assert "namespace/headlamp deleted" in out
        assert get("/api/v1/namespaces/headlamp") is None
        assert get("/apis/rbac.authorization.k8s.io/v1/namespaces/worker/rolebindings/worker-user:dashboard-viewer") \
            is None
    finally:
        down = make(clone, env, "sandbox_down")
    assert down.returncode == 0 and not (clone / ".sandbox").exists(), down.stdout + down.stderr
    shutil.rmtree(clone / ".venv", ignore_errors=True)

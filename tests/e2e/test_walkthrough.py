"""The README, followed step by step from a fresh clone, as a new user would.

(`make vendor` is left out: it downloads from the upstream release pages,
which this machine cannot reach; tests/test_vendor.py runs it against a local
HTTP server.)

Every step is the make target a user types, run in a `git clone` of this
repository in a temporary folder (so only committed files count) against the
API server stand-in. The clone builds its own .venv on the first step, as the
Quick start promises.
"""

import os
import shutil
import subprocess

import pytest

from ..apiserver import ApiServer
from ..conftest import ROOT
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
    base.update(GNUPGHOME=home, SOPS_KEY_TYPE="ed25519", HOME=str(tmp_path_factory.mktemp("home")))
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

    # Hardening for the control plane: files for kubeadm, the etcd key kept encrypted.
    out = ok(make(clone, env, "encryption_key"))
    assert "sops:" in (clone / "secrets" / "etcd-encryption.yml").read_text()
    out = ok(make(clone, env, "encryption_config"))
    assert (clone / "build" / "kubeadm-encryption.yaml").exists()
    ok(make(clone, env, "audit_policy"))
    assert "audit.k8s.io/v1" in (clone / "build" / "audit-policy.yaml").read_text()
    ok(make(clone, env, "admission_config"))
    assert (clone / "build" / "admission-config.yaml").exists()

    with ApiServer(version="1.33.1", nodes=0) as server:
        for node in NODES:
            server.seed({"apiVersion": "v1", "kind": "Node",
                         "metadata": {"name": node, "labels": {"kubernetes.io/hostname": node}}})
        kubeconfig = str(server.kubeconfig(tmp_path / "kubeconfig"))
        cluster = {"KUBECONFIG": kubeconfig}

        out = ok(make(clone, env, "install", **cluster))
        assert out.splitlines()[-1].endswith(" created")
        out = ok(make(clone, env, "check", **cluster))
        out = ok(make(clone, env, "secrets", **cluster))
        assert "secret/db created" in out
        assert server.get("Secret", "db", "worker") is not None
        assert server.get("Secret", "etcd-encryption", "kube-system") is None  # stays local
        out = ok(make(clone, env, "persistent", **cluster))
        pvs = server.objects(kind="PersistentVolume")
        assert len(pvs) == 3 * (30 + 10 + 3)
        ok(make(clone, env, "node_labels", **cluster))
        assert server.get("Node", NODES[0])["metadata"]["labels"]["service.data-sync"] == "allow"

        # Nothing to change after all that; one variable changed: exactly its objects.
        same = make(clone, env, "diff", **cluster)
        assert (same.returncode, same.stdout) == (0, ""), same.stderr
        changed = make(clone, env, "diff", LIMIT_CPU_DEFAULT="750m", **cluster)
        assert changed.returncode != 0
        headers = [line for line in changed.stdout.splitlines() if line.startswith("+++ ")]
        assert headers == ["+++ b/limitrange/default-limits"]

        out = ok(make(clone, env, "dashboard", ACTION="delete", **cluster))
        assert "namespace/headlamp deleted" in out
        assert server.get("Namespace", "headlamp") is None
    shutil.rmtree(clone / ".venv", ignore_errors=True)

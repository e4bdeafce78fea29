"""Shared test set-up: hypothesis profiles and a scratch project tree."""

import gc
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _forget_make_exports():
    """Under `make test` every variable of Makefile.vars is exported into the environment,
    where it would win over each test project's own `?=` defaults: drop them all, so the
    suite sees the same environment whether make or pytest started it."""
    from k8s.core import variables

    names = variables.load_variables(os.path.join(ROOT, "Makefile.vars"), environ={})
    for name in [*names, "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES", "VARS_FILE"]:
        os.environ.pop(name, None)


_forget_make_exports()


def _pin_control_plane_cache():
    """The control plane binaries are found under ~/.cache; tests that give a command another
    HOME must still find them, not start a second build."""
    from tests.controlplane import build

    os.environ.setdefault("K8S_TOOLKIT_CONTROLPLANE_CACHE", build.cache_root())


_pin_control_plane_cache()

# `make test` selects "ci": the fuzzers run their full example counts there.
settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(autouse=True)
def _collectable():
    """render freezes what it built out of the cycle collector, right for a command that
    ends soon; the suite's one long process takes it back after each test."""
    yield
    gc.unfreeze()


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="install -o root on the test node needs root")


@dataclass
class Result:
    """What a command run in this process returned and printed."""

    code: int
    out: str
    err: str


def in_process(argv, capfd, main=None):
    """render.py ARGV run in this process (`main`: cli.main); argparse's exits count as codes."""
    from k8s import cli

    try:
        code = (main or cli.main)(list(argv))
    except SystemExit as exit_:
        code = exit_.code
    out, err = capfd.readouterr()
    return Result(code, out, err)


def examples(ci_count, dev_count=200):
    """Example count for a fuzz test: the full count under the ci profile."""
    return ci_count if os.environ.get("HYPOTHESIS_PROFILE") == "ci" else dev_count


class Project:
    """A scratch checkout: Makefile.vars plus manifests/<component>/ files."""

    def __init__(self, root):
        self.root = str(root)
        self.write("Makefile.vars", "export K8S_NAMESPACE ?= demo\n")
        os.makedirs(os.path.join(self.root, "manifests"), exist_ok=True)

    def write(self, rel, text, mode="w"):
        path = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, mode) as f:
            f.write(textwrap.dedent(text) if isinstance(text, str) else text)
        return path

    def run(self, *args, env=None):
        """render.py ARGS in this project, as a user runs it."""
        full_env = {k: v for k, v in os.environ.items() if k not in ("VARS_FILE", "K8S_NAMESPACE")}
        full_env.update(env or {})
        return subprocess.run([sys.executable, os.path.join(ROOT, "render.py"), *args],
                              cwd=self.root, env=full_env, capture_output=True, text=True)


@pytest.fixture
def project(tmp_path):
    return Project(tmp_path)


# --- the real control plane -------------------------------------------------------------------

CONTROL_PLANE_NODES = ("kube1", "kube2", "kube3")


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory):
    """One real control plane for the session (tests.controlplane): etcd, kube-apiserver with
    the toolkit's EncryptionConfiguration and audit policy, controller-manager, scheduler and
    simulated nodes kube1 (control plane), kube2 and kube3. Tests share it: each works in
    namespaces and objects named after itself."""
    from tests.controlplane.harness import ControlPlane, write_toolkit_configs

    work = tmp_path_factory.mktemp("control-plane")
    encryption_config, audit_policy = write_toolkit_configs(work / "config")
    plane = ControlPlane(work, nodes=CONTROL_PLANE_NODES, control_plane_nodes=CONTROL_PLANE_NODES[:1],
                         encryption_config=encryption_config, audit_policy=audit_policy)
    plane.start()
    yield plane
    plane.stop()


@pytest.fixture
def fault_proxy(control_plane):
    """A fault-injecting proxy in front of the session's control plane (tests.controlplane.faults)."""
    from tests.controlplane.faults import FaultProxy

    with FaultProxy(control_plane) as proxy:
        yield proxy

"""Outages are waited out: an apiserver that goes away mid-run, answers 503 for a while or
asks to be left alone (429 with Retry-After) does not fail the run, and a run cut short
converges when it runs again.

Each test runs `render.py apply` or `install` of a small component (a Namespace, a
ConfigMap and a Secret) against the session's real control plane through the fault proxy,
which takes itself off the network (connections refused, open ones cut) or answers 503
for ten seconds, starting at the ConfigMap's PATCH: discovery and the first writes are
done, the rest of the run is not.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from ..conftest import ROOT
from .test_replies import small_project

UNAVAILABLE = ('{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":'
               '"the server is currently unable to handle the request","reason":"ServiceUnavailable","code":503}')
CONFIGMAP = r"/configmaps/settings$"


@pytest.fixture
def small(project, control_plane, fault_proxy, request, tmp_path):
    """test_replies' small component, with a Secret besides."""
    made = small_project(project, control_plane, fault_proxy, request.node.name, tmp_path, prefix="outages")
    project = next(made)
    project.write(f"manifests/{project.component}/30-secret.yaml",
                  "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  b: '2'\n")
    yield project
    next(made, None)


def run(project, command="apply", env=None):
    args = [command, project.component] if command == "apply" else [command]
    return project.run(*args, env={"KUBECONFIG": project.kubeconfig, **(env or {})})


def stored(plane, project):
    ns = f"/api/v1/namespaces/{project.namespace}"
    return {kind: plane.get(path, check=False) is not None
            for kind, path in (("Namespace", ns), ("ConfigMap", f"{ns}/configmaps/settings"),
                               ("Secret", f"{ns}/secrets/creds"))}


def converged(project):
    """A further run finds everything as it should be."""
    again = run(project)
    assert again.returncode == 0, (again.stdout, again.stderr)
    assert again.stdout.splitlines()[-1] == "3 unchanged", again.stdout


def waiting_lines(result, url):
    return [line for line in result.stderr.splitlines() if line.startswith(f"waiting for {url}: ")]


def test_a_ten_second_refusal_mid_apply_is_waited_out(small, fault_proxy, control_plane):
    # The ConfigMap's PATCH reaches the server, then the connection dies unanswered and the
    # proxy refuses connections for 10 s: the same PATCH again is safe (server-side apply).
    fault_proxy.refuse(10, method="PATCH", path=CONFIGMAP, forward=True)
    began = time.monotonic()
    result = run(small)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert time.monotonic() - began >= 10
    assert "Traceback" not in result.stderr
    lines = waiting_lines(result, fault_proxy.url)
    assert lines and all(", retrying for up to 2m (" in line for line in lines), result.stderr
    assert any(": connection refused, " in line for line in lines), lines
    assert len(lines) <= 3, lines  # at most one every few seconds, however many threads wait
    assert "refuse" in [s.fault for s in fault_proxy.requests(method="PATCH", path=CONFIGMAP)]
    results = [line.rsplit(" ", 1)[-1] for line in result.stdout.splitlines()[:-1] if not line.startswith("  ")]
    assert len(results) == 3 and set(results) <= {"created", "configured"}, result.stdout  # configured: a repeat
    assert stored(control_plane, small) == {"Namespace": True, "ConfigMap": True, "Secret": True}
    converged(small)


def test_a_ten_second_burst_of_503s_mid_install_is_waited_out(small, fault_proxy, control_plane):
    fault_proxy.fail(status=503, body=UNAVAILABLE, seconds=10, starting_at=("PATCH", CONFIGMAP))
    began = time.monotonic()
    result = run(small, "install")
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert time.monotonic() - began >= 10
    assert "Traceback" not in result.stderr
    lines = waiting_lines(result, fault_proxy.url)
    assert lines and all(": 503 Service Unavailable, retrying for up to 2m (" in line for line in lines), \
        result.stderr
    assert len([s for s in fault_proxy.requests() if s.fault == "error"]) >= 3
    assert stored(control_plane, small) == {"Namespace": True, "ConfigMap": True, "Secret": True}
    converged(small)


def test_retry_after_is_honoured(small, fault_proxy):
    fault_proxy.fail(method="PATCH", path=CONFIGMAP, status=429, retry_after=7, times=1,
                     body='{"kind":"Status","apiVersion":"v1","status":"Failure","message":"slow down",'
                          '"reason":"TooManyRequests","code":429}')
    result = run(small)
    assert result.returncode == 0, (result.stdout, result.stderr)
    first, second = fault_proxy.requests(method="PATCH", path=CONFIGMAP)[:2]
    assert (first.status, second.status) == (429, 201)
    assert 7 <= second.at - first.at < 9


def test_the_total_retry_time_is_capped_by_the_environment(small, fault_proxy):
    fault_proxy.fail(method="PATCH", path=CONFIGMAP, status=503, body=UNAVAILABLE)
    began = time.monotonic()
    result = run(small, env={"K8S_TOOLKIT_RETRY_FOR": "3"})
    took = time.monotonic() - began
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("configmap/settings failed")]
    assert failed == ["configmap/settings failed: the server is currently unable to handle the request "
                      "(503, still failing after retrying for 3s)"]
    assert 3 <= took < 15, took
    assert len(fault_proxy.requests(method="PATCH", path=CONFIGMAP)) >= 3


def test_a_server_away_beyond_the_cap_is_one_line(small, fault_proxy):
    fault_proxy.refuse(60, method="GET", path=r"^/api/v1/namespaces/kube-system/configmaps$")
    result = run(small, env={"K8S_TOOLKIT_RETRY_FOR": "3"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith(f"{small.component}: failed")]
    assert failed == [f"{small.component}: failed (cannot reach the API server {fault_proxy.url} (context "
                      "kubernetes-admin@kubernetes): Connection refused (still failing after retrying for 3s))"]


def test_a_bad_retry_time_is_one_line(small):
    result = run(small, env={"K8S_TOOLKIT_RETRY_FOR": "soon"})
    assert (result.returncode, result.stderr.splitlines()) == (
        1, ["error: K8S_TOOLKIT_RETRY_FOR must be a number of seconds (0 or more), got 'soon'"])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_run_interrupted_mid_apply_converges_when_run_again(signum, small, fault_proxy, control_plane):
    # The ConfigMap's PATCH hangs in the proxy: the signal comes while the run waits for it.
    held = fault_proxy.slow(method="PATCH", path=CONFIGMAP, delay=12, times=1)
    env = {k: v for k, v in os.environ.items() if k not in ("VARS_FILE", "K8S_NAMESPACE")}
    env["KUBECONFIG"] = small.kubeconfig
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "render.py"), "apply", small.component],
                               cwd=small.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while held.times != 0:  # the PATCH has reached the proxy
            assert time.monotonic() < deadline and process.poll() is None, "the run never reached the ConfigMap"
            time.sleep(0.1)
        time.sleep(0.5)
        process.send_signal(signum)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0, out
    assert "Traceback" not in err
    again = run(small)
    assert again.returncode == 0, (again.stdout, again.stderr)
    lines = again.stdout.splitlines()
    assert "failed" not in again.stdout and "not applied" not in again.stdout, again.stdout
    assert all(line.split()[-1] in ("created", "configured", "unchanged") for line in lines[:-1]
               if not line.startswith("  ")), lines
    assert stored(control_plane, small) == {"Namespace": True, "ConfigMap": True, "Secret": True}
    converged(small)

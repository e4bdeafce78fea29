"""Benchmark: HTTP requests per object of `make install` on the shipped components.

The test control plane (tests/controlplane, `make controlplane`, three simulated
nodes) runs behind its fault proxy, which counts every request. `make -s install`
of this repository, as a user types it, runs twice: the first install from
nothing, then the re-apply of the same set, where nothing changes. Requests per
object count everything: discovery, ApplySet records, waits. The baseline is
one request per object, the PATCH each object needs; the re-apply must stay
within 1.2 of it (a LIST per kind and namespace before applying, as the engine
did before, made it 1.8).
"""

import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = 1.2

SERVER = """
import os, sys
sys.path.insert(0, sys.argv[1])
from tests.controlplane.faults import FaultProxy
from tests.controlplane.harness import ControlPlane
with ControlPlane(sys.argv[2], nodes=["kube1", "kube2", "kube3"]) as plane, FaultProxy(plane) as proxy:
    print(proxy.kubeconfig(os.path.join(sys.argv[2], "bench.conf")), flush=True)
    for command in sys.stdin:
        print(len(proxy.requests()), flush=True)
        proxy.clear()
"""


def install(env):
    """One `make -s install`; the number of objects it applied."""
    result = subprocess.run(["make", "-s", "install"], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"make install failed:\n{result.stdout}{result.stderr}")
    lines = result.stdout.splitlines()
    counted = [line for line in lines[:-1] if line.endswith((" created", " configured", " unchanged"))]
    return len(counted), lines[-1]


def main():
    with tempfile.TemporaryDirectory() as work:
        server = subprocess.Popen([sys.executable, "-c", SERVER, ROOT, work],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

        def requests_since_last():
            server.stdin.write("count\n")
            server.stdin.flush()
            return int(server.stdout.readline())

        try:
            kubeconfig = server.stdout.readline().strip()
            if not kubeconfig:
                sys.exit("the test control plane did not start (make controlplane)")
            env = {k: v for k, v in os.environ.items() if k not in ("VARS_FILE", "MAKEFLAGS", "MAKELEVEL")}
            env.update(KUBECONFIG=kubeconfig, ADMIN_CTX="kubernetes-admin@kubernetes", NO_COLOR="1",
                       XDG_CACHE_HOME=os.path.join(work, "cache"))
            requests_since_last()
            first_objects, first_summary = install(env)
            first = requests_since_last()
            again_objects, again_summary = install(env)
            again = requests_since_last()
        finally:
            server.stdin.close()
            server.wait(timeout=60)
    print(f"make install, shipped components: {first_objects} objects ({first_summary}), "
          f"{first} requests: {first / first_objects:.2f} per object")
    print(f"make install again ({again_summary}): {again} requests: {again / again_objects:.2f} per object "
          f"against 1 PATCH per object (target <= {TARGET})")


if __name__ == "__main__":
    main()

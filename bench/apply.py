"""Benchmark: applying 500 objects across 5 tiers to a real kube-apiserver.

The test control plane (tests/controlplane: kube-apiserver v1.37.2 and etcd,
built by `make controlplane`) runs behind its fault proxy, which adds 20 ms to
every request, as a cluster across a network would, and counts them. Both run
in a process of their own, so they do not share the engine's interpreter lock.
In one run this reports:
  (a) HTTP requests per object for a first apply and for a re-apply,
      discovery included (target <= 1.05);
  (b) wall time of the engine as shipped (8 parallel requests per tier)
      against the same engine with --parallel 1 (target >= 5x faster).
"""

import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from k8s.core import order  # noqa: E402
from k8s.cluster.apply import Engine  # noqa: E402
from k8s.cluster.connection import Cluster  # noqa: E402
from k8s.core.render import RenderedObject, Source  # noqa: E402

SERVER = """
import os, sys
sys.path.insert(0, sys.argv[1])
from tests.controlplane.faults import FaultProxy
from tests.controlplane.harness import ControlPlane
with ControlPlane(sys.argv[2], nodes=["kube1"]) as plane, FaultProxy(plane) as proxy:
    proxy.slow(delay=float(sys.argv[3]))
    print(proxy.kubeconfig(os.path.join(sys.argv[2], "bench.conf")), flush=True)
    for command in sys.stdin:
        if command.strip() == "count":
            print(len(proxy.requests()), flush=True)
            proxy.clear()
            proxy.slow(delay=float(sys.argv[3]))
"""

PER_TIER = 100
LATENCY = 0.02


def objects(namespace):
    """Their namespace and 500 objects of 5 kinds that go in 5 different tiers."""
    def make(api_version, kind, name, **extra):
        data = {"apiVersion": api_version, "kind": kind,
                "metadata": {"name": name, "namespace": namespace}, **extra}
        return RenderedObject(data, "bench", Source("bench", 1, 0, ""))

    rbac = "rbac.authorization.k8s.io/v1"
    result = [RenderedObject({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
                             "bench", Source("bench", 1, 0, ""))]
    for i in range(PER_TIER):
        result += [
            make("v1", "ServiceAccount", f"sa-{i}"),
            make(rbac, "Role", f"role-{i}", rules=[{"apiGroups": [""], "resources": ["pods"],
                                                   "verbs": ["get"]}]),
            make(rbac, "RoleBinding", f"rb-{i}",
                 roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"role-{i}"},
                 subjects=[{"kind": "ServiceAccount", "name": f"sa-{i}", "namespace": namespace}]),
            make("v1", "ConfigMap", f"cm-{i}", data={"index": str(i)}),
            make("v1", "Service", f"svc-{i}", spec={"ports": [{"port": 80}], "selector": {"app": f"a{i}"}}),
        ]
    return result


def apply_once(kubeconfig, parallel):
    """One run as the CLI does it: a new connection, discovery, LISTs, then the tiers."""
    objs = objects(f"bench-{parallel}")
    with Cluster(kubeconfig, "kubernetes-admin@kubernetes", pool_size=parallel) as cluster:
        engine = Engine(lambda component: cluster, parallel=parallel, out=None)
        start = time.perf_counter()
        run = engine.apply(order.tiers(objs, ["bench"]))
        elapsed = time.perf_counter() - start
    assert not run.failed, run.summary()
    return run, elapsed


def measure(server, parallel):
    """First apply and re-apply (in a namespace of their own); request counts and times."""
    def requests_since_last():
        server.stdin.write("count\n")
        server.stdin.flush()
        return int(server.stdout.readline())

    kubeconfig = server.kubeconfig
    requests_since_last()
    first, t_first = apply_once(kubeconfig, parallel)
    first_requests = requests_since_last()
    again, t_again = apply_once(kubeconfig, parallel)
    again_requests = requests_since_last()
    assert first.count("created") == len(first.outcomes) == 5 * PER_TIER + 1, first.summary()
    assert again.count("unchanged") == 5 * PER_TIER + 1, again.summary()
    return first_requests, again_requests, t_first, t_again


def main():
    import tempfile

    count = 5 * PER_TIER + 1  # and their namespace
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen([sys.executable, "-c", SERVER, ROOT, tmp, str(LATENCY)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            server.kubeconfig = server.stdout.readline().strip()
            req_first, req_again, t_first, t_again = measure(server, parallel=8)
            _, _, t_serial_first, t_serial_again = measure(server, parallel=1)
        finally:
            server.stdin.close()
            server.wait()
    print(f"apply: {count} objects in 5 tiers, {LATENCY * 1000:.0f} ms added latency per request")
    print(f"  requests per object, first apply   {req_first / count:6.3f}   (target <= 1.05)")
    print(f"  requests per object, re-apply      {req_again / count:6.3f}   (target <= 1.05)")
    print(f"  --parallel 1, first apply          {t_serial_first:6.2f} s")
    print(f"  --parallel 8, first apply          {t_first:6.2f} s   "
          f"{t_serial_first / t_first:4.1f}x faster (target >= 5x)")
    print(f"  --parallel 1, re-apply             {t_serial_again:6.2f} s")
    print(f"  --parallel 8, re-apply             {t_again:6.2f} s   "
          f"{t_serial_again / t_again:4.1f}x faster")


if __name__ == "__main__":
    main()

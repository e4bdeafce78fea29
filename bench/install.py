"""Benchmark: `render.py install` against the critical path of its component graph.

On the test control plane (tests/controlplane, `make controlplane`) with three
simulated nodes, eight components: a namespace, a chain of three that depend on
each other, and four that depend only on the namespace. Every workload's pod
takes DELAY seconds to turn Ready (the node agent's `controlplane.test/delay`), so
the longest dependency chain holds CHAIN * DELAY seconds of waiting. Whole
processes, as a user runs them, medians of ROUNDS, alternating:
  (a) `render.py install` against that critical path (target <= 1.2x);
  (b) the same components one at a time, each waited for (`render.py apply C
      --wait` in dependency order: how `make install` ran before the graph),
      against `render.py install`.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DELAY = 3.0
CHAIN = 3
SIDE = 4
ROUNDS = 3

SERVER = """
import sys
sys.path.insert(0, sys.argv[1])
from tests.controlplane.harness import ControlPlane
with ControlPlane(sys.argv[2], nodes=["kube1", "kube2", "kube3"]) as plane:
    print(plane.kubeconfig, flush=True)
    sys.stdin.read()
"""


def deployment(name):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": {
                "metadata": {"labels": {"app": name}, "annotations": {"controlplane.test/delay": str(DELAY)}},
                "spec": {"containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10"}]}}}}


def write_project(folder):
    """The eight components; their namespace is $BENCH_NS, so every run starts afresh."""
    def component(name, depends, objects):
        os.makedirs(os.path.join(folder, "manifests", name))
        with open(os.path.join(folder, "manifests", name, "component.yaml"), "w") as f:
            f.write(json.dumps({"namespace": "$BENCH_NS", "depends": depends}) + "\n")
        for i, obj in enumerate(objects):
            with open(os.path.join(folder, "manifests", name, f"{i}.yaml"), "w") as f:
                f.write(json.dumps(obj) + "\n")

    os.makedirs(folder)
    with open(os.path.join(folder, "Makefile.vars"), "w") as f:
        f.write("export ADMIN_CTX ?= kubernetes-admin@kubernetes\nexport BENCH_NS ?= bench\n")
    component("base", [], [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "$BENCH_NS"}}])
    order = ["base"]
    for i in range(1, CHAIN + 1):
        component(f"chain{i}", [order[-1]], [deployment(f"chain{i}")])
        order.append(f"chain{i}")
    for i in range(1, SIDE + 1):
        component(f"side{i}", ["base"], [deployment(f"side{i}")])
        order.append(f"side{i}")
    return order


def timed(command, folder, env):
    start = time.perf_counter()
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return elapsed


def main():
    render = [sys.executable, os.path.join(ROOT, "render.py")]
    with tempfile.TemporaryDirectory() as work:
        server = subprocess.Popen([sys.executable, "-c", SERVER, ROOT, os.path.join(work, "plane")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            kubeconfig = server.stdout.readline().strip()
            if not kubeconfig:
                sys.exit("the test control plane did not start (make controlplane)")
            folder = os.path.join(work, "project")
            order = write_project(folder)
            env = {**os.environ, "KUBECONFIG": kubeconfig}
            graph, serial = [], []
            for n in range(ROUNDS):
                env["BENCH_NS"] = f"bench-graph-{n}"
                graph.append(timed([*render, "install", "--timeout", "120"], folder, env))
                env["BENCH_NS"] = f"bench-serial-{n}"
                start = time.perf_counter()
                for name in order:
                    timed([*render, "apply", name, "--wait", "--timeout", "120"], folder, env)
                serial.append(time.perf_counter() - start)
        finally:
            server.stdin.close()
            server.wait(timeout=60)
    critical = CHAIN * DELAY
    g, s = statistics.median(graph), statistics.median(serial)
    print(f"install: {g:.1f} s (min {min(graph):.1f}, max {max(graph):.1f}); critical path {critical:.0f} s "
          f"({CHAIN} x {DELAY:g} s): {g / critical:.2f}x (target <= 1.2x)")
    print(f"one component at a time: {s:.1f} s (min {min(serial):.1f}, max {max(serial):.1f}); "
          f"install is {s / g:.2f}x faster")


if __name__ == "__main__":
    main()

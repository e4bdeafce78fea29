"""Benchmark: rendering the node-local PersistentVolumes of 3 nodes.

3 nodes x (30 small + 10 medium pool volumes + 3 named volumes) = 129 PVs, from the
shipped volumes/layout.yaml. In one run:
  (a) render.py's way: read the layout, render every PV, write them to one YAML file,
      against the original way (k8s/scripts/persistent.sh): one shell + `envsubst`
      process per PV over the persistent-item.yaml template, appended to a file (no
      cluster, no `make`, no `uuidgen`: the baseline keeps only its cheapest part);
  (b) the same with schema validation added.
Reported as ratios; each timing is the median of several repetitions.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from k8s.core import emit, validate  # noqa: E402
from k8s.nodes import volumes  # noqa: E402
from k8s.cluster.apply import body  # noqa: E402

NODES = ["kube1.example.com", "kube2.example.com", "kube3.example.com"]
VARIABLES = {"K8S_NODES": " ".join(NODES), "K8S_VOLUMES_PATH": "/var/lib/docker/k8s-volumes",
             "K8S_NAMESPACE": "worker", "POOL_NUM_SMALL": "30", "POOL_SIZE_SMALL": "500Mi",
             "POOL_NUM_MEDIUM": "10", "POOL_SIZE_MEDIUM": "8Gi", "POOL_SIZE_LARGE": "20Gi",
             "NAMED_VOLUMES": "admin backup share", "LOCAL_VOLUMES": "", "DOMAIN": "example.com"}
EXPECTED = len(NODES) * (30 + 10 + 3)

# instantlinux/docker-tools k8s/install/persistent-item.yaml
PERSISTENT_ITEM = """---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: $NAME
  labels:
    volume.group: $GROUP
    volume.id: "$VOLUME_ID"
spec:
  capacity:
    storage: $VOLUME_SIZE
  accessModes:
  - ReadWriteMany
  - ReadWriteOnce
  persistentVolumeReclaimPolicy: Retain
  storageClassName: local-storage
  local:
    path: $VOLUME_ROOT
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions:
        - key: kubernetes.io/hostname
          operator: In
          values:
          - $NODENAME
"""


def median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def original_items():
    """(NAME, VOLUME_ROOT, VOLUME_SIZE, NODENAME, GROUP) in persistent.sh's loop order."""
    path = VARIABLES["K8S_VOLUMES_PATH"]
    items = []
    for node in NODES:
        short = node.split(".")[0]
        for group, count, size in (("pool-s", 30, "500Mi"), ("pool-m", 10, "8Gi")):
            for i in range(1, count + 1):
                vol = f"pv-{size}-{i:04d}"
                items.append((f"{short}-{vol.lower()}", f"{path}/{group}/{vol}", size, node, group))
        for vol in VARIABLES["NAMED_VOLUMES"].split():
            items.append((f"{short}-{vol}", f"{path}/{vol}", "20Gi", node, vol))
    return items


def envsubst_per_pv(template, out):
    """persistent.sh's way: a shell and an envsubst process for every PV."""
    open(out, "w").close()
    for n, (name, root, size, node, group) in enumerate(original_items()):
        env = dict(os.environ, NAME=name, VOLUME_ROOT=root, VOLUME_SIZE=size, NODENAME=node,
                   GROUP=group, VOLUME_ID=f"{n:08x}")
        subprocess.run(["sh", "-c", 'envsubst < "$1" >> "$2"', "sh", template, out], env=env, check=True)


def main(repeat=7):
    with tempfile.TemporaryDirectory() as tmp:
        template = os.path.join(tmp, "persistent-item.yaml")
        with open(template, "w") as f:
            f.write(PERSISTENT_ITEM)
        out_original = os.path.join(tmp, "original.yaml")
        out_render = os.path.join(tmp, "render.yaml")
        directory = os.path.join(ROOT, "volumes")
        version = validate.supported_versions()[-1]

        def render_to_file(check=False):
            layout = volumes.load(directory, VARIABLES)
            objects = volumes.render(layout, layout.nodes)
            assert len(objects) == EXPECTED + len(layout.claims), len(objects)
            if check:
                report = validate.validate([(o.data, o.source) for o in objects], version)
                assert not report.errors, report.errors[:3]
            with open(out_render, "w") as f:
                f.write(emit.to_plain_yaml([body(o) for o in objects]))

        render_to_file(check=True)  # warm caches (imports, schema) as any second call would find them
        t_original = median_time(lambda: envsubst_per_pv(template, out_original), max(1, repeat // 2))
        with open(out_original) as f:
            assert f.read().count("kind: PersistentVolume\n") == EXPECTED
        t_render = median_time(render_to_file, repeat * 3)  # milliseconds: more runs, steadier median
        t_validate = median_time(lambda: render_to_file(check=True), repeat * 3)

    print(f"persistent: {EXPECTED} PersistentVolumes ({len(NODES)} nodes x 30 small + 10 medium + 3 named)")
    print(f"  shell + envsubst per PV (persistent.sh)  {t_original:8.3f} s")
    print(f"  render.py render + write                 {t_render:8.3f} s   "
          f"{t_original / t_render:6.1f}x faster (target >= 50x)")
    print(f"  render.py render + validate + write      {t_validate:8.3f} s   "
          f"{t_original / t_validate:6.1f}x faster")


if __name__ == "__main__":
    main()

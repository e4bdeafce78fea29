"""Node-local volumes: PV rendering, `persistent` against the real control plane
(conftest's `control_plane`), and `persistent-dirs` against a real sshd.

render.py runs in a subprocess as a user runs it.
"""

import argparse
import hashlib
import os
import shlex
import shutil
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from k8s.core import emit, kubeyaml, variables
from k8s.nodes import volumes
from k8s.commands import volumes as volumes_cli
from k8s.cluster.apply import body
from k8s.errors import UserError

from ..conftest import ROOT
from ..realcluster import api_client, cluster_node_names, own_nodes, query, unique, wait_for, writes  # noqa: F401
from ..sshd import sshd, sshd_factory, unprivileged_user  # noqa: F401

VARS = """\
export DOMAIN ?= example.com
export K8S_NODES ?= kube1.$(DOMAIN) kube2.$(DOMAIN) kube3.$(DOMAIN)
export K8S_NAMESPACE ?= demo
export ADMIN_CTX ?= kubernetes-admin@kubernetes
export KUBE_VERSION ?= 1.31
export K8S_VOLUMES_PATH ?= /var/lib/docker/k8s-volumes
export LOCAL_VOLUMES ?=
export NAMED_VOLUMES ?= admin backup share $(LOCAL_VOLUMES)
export POOL_NUM_SMALL ?= 30
export POOL_SIZE_SMALL ?= 500Mi
export POOL_NUM_MEDIUM ?= 10
export POOL_SIZE_MEDIUM ?= 8Gi
"""
NODES = ["kube1.example.com", "kube2.example.com", "kube3.example.com"]
ROOT_PATH = "/var/lib/docker/k8s-volumes"
# Variables a developer's shell may have set that would change what the tests see.
SCRUBBED = ("VARS_FILE", "KUBECONFIG", "DOMAIN", "ADMIN_CTX", "KUBE_VERSION", "NAMED_VOLUMES",
            "LOCAL_VOLUMES", "SSH_CONFIG", "SSH_OPTIONS", "REMOTE_SUDO", "MYTHTV_VOL_SIZE")

# A small layout of the tests' own, so that error lines stay put.
LAYOUT = """\
root: $K8S_VOLUMES_PATH
pools:
- name: pool-s
  count: "$POOL_NUM_SMALL"
  size: "$POOL_SIZE_SMALL"
- name: pool-m
  count: "$POOL_NUM_MEDIUM"
  size: "$POOL_SIZE_MEDIUM"
  mode: "0750"
volumes:
- names: "$NAMED_VOLUMES"
  size: 20Gi
- name: mythtv
  size: 400Gi
  nodes: [kube1, kube3.example.com]
  path: $K8S_VOLUMES_PATH/media/mythtv
  owner: "1234:2345"
  mode: 0775
"""


def cli(project, *args, env=None, prefix=(), cwd=None):
    """render.py ARGS in `project`, with a clean environment plus `env`."""
    full_env = {k: v for k, v in os.environ.items()
                if k not in SCRUBBED and not k.startswith(("K8S_", "POOL_"))}
    full_env.update(getattr(project, "env", None) or {})
    full_env.update(env or {})
    return subprocess.run([*prefix, sys.executable, os.path.join(ROOT, "render.py"), *args],
                          cwd=cwd or project.root,
                          env=full_env, capture_output=True, text=True)


def setup_project(project, layout=None, claims=None, extra_vars=""):
    """Makefile.vars plus volumes/: the shipped files unless `layout`/`claims` are given."""
    project.write("Makefile.vars", VARS + extra_vars)
    os.makedirs(os.path.join(project.root, "volumes"), exist_ok=True)
    for name in ("layout.yaml", "claims.yaml", "nodes.yaml"):
        shutil.copy(os.path.join(ROOT, "volumes", name), os.path.join(project.root, "volumes", name))
    if layout is not None:
        project.write("volumes/layout.yaml", layout)
    if claims is not None:
        project.write("volumes/claims.yaml", claims)


def load(project, **overrides):
    found = variables.load_variables(os.path.join(project.root, "Makefile.vars"), environ=overrides)
    values = {name: v.value for name, v in found.items()}
    return volumes.load(os.path.join(project.root, "volumes"), values), values


def expected_id(node, path):
    return hashlib.sha256(f"{node}\0{path}".encode()).hexdigest()[:12]


# --- rendering ----------------------------------------------------------------

def test_shipped_layout_gives_one_pv_per_volume_per_node(project):
    setup_project(project)
    layout, _ = load(project)
    objects = volumes.render(layout, layout.nodes)
    assert len(objects) == 3 * (30 + 10 + 3)
    assert {o.kind for o in objects} == {"PersistentVolume"}
    for node in NODES:
        short = node.split(".")[0]
        mine = [o for o in objects if o.data["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]
                ["matchExpressions"][0]["values"] == [node]]
        assert [o.name for o in mine] == (
            [f"{short}-pv-500mi-{i:04d}" for i in range(1, 31)] + [f"{short}-pv-8gi-{i:04d}" for i in range(1, 11)]
            + [f"{short}-admin", f"{short}-backup", f"{short}-share"])
        assert [o.data["spec"]["local"]["path"] for o in mine] == (
            [f"{ROOT_PATH}/pool-s/pv-500Mi-{i:04d}" for i in range(1, 31)]
            + [f"{ROOT_PATH}/pool-m/pv-8Gi-{i:04d}" for i in range(1, 11)]
            + [f"{ROOT_PATH}/admin", f"{ROOT_PATH}/backup", f"{ROOT_PATH}/share"])
        assert [o.data["metadata"]["labels"]["volume.group"] for o in mine] == \
            ["pool-s"] * 30 + ["pool-m"] * 10 + ["admin", "backup", "share"]
        assert [o.data["spec"]["capacity"]["storage"] for o in mine] == ["500Mi"] * 30 + ["8Gi"] * 10 + ["20Gi"] * 3
        for o in mine:
            assert o.data["metadata"]["labels"]["volume.id"] == expected_id(node, o.data["spec"]["local"]["path"])
    assert len({o.data["metadata"]["labels"]["volume.id"] for o in objects}) == len(objects)
    assert objects[7].data == {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "kube1-pv-500mi-0008", "labels": {
            "volume.group": "pool-s",
            "volume.id": expected_id("kube1.example.com", f"{ROOT_PATH}/pool-s/pv-500Mi-0008")}},
        "spec": {
            "capacity": {"storage": "500Mi"},
            "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "local-storage",
            "local": {"path": f"{ROOT_PATH}/pool-s/pv-500Mi-0008"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": ["kube1.example.com"]}]}]}},
        },
    }


def test_dry_run_is_byte_identical_across_runs_and_reads_back_as_the_objects(project):
    setup_project(project)
    first = cli(project, "persistent", "--dry-run=client", env={"PYTHONHASHSEED": "1"})
    second = cli(project, "persistent", "--dry-run=client", env={"PYTHONHASHSEED": "2"})
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    layout, _ = load(project)
    bodies = [body(o) for o in volumes.render(layout, layout.nodes)]
    assert [d.data for d in kubeyaml.load_all(first.stdout, "out")] == bodies
    assert first.stdout == emit.to_yaml(bodies)
    labels = bodies[0]["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "k8s-toolkit" and labels["k8s-toolkit/component"] == "persistent"


def test_volumes_on_some_nodes_with_path_owner_mode_and_claims(project):
    setup_project(project, layout=LAYOUT, claims="""\
claims:
- name: share
  volume: share
- name: media
  namespace: media
  volume: mythtv
  node: kube3
  size: 100Gi
  accessModes: [ReadWriteOnce]
- name: scratch
  volume: pool-m
""", extra_vars="export POOL_NUM_SMALL := 2\nexport POOL_NUM_MEDIUM := 1\n")
    layout, _ = load(project)
    objects = volumes.render(layout, layout.nodes)
    pvs = [o for o in objects if o.kind == "PersistentVolume"]
    assert [o.name for o in pvs] == [
        "kube1-pv-500mi-0001", "kube1-pv-500mi-0002", "kube1-pv-8gi-0001", "kube1-admin", "kube1-backup",
        "kube1-share", "kube1-mythtv",
        "kube2-pv-500mi-0001", "kube2-pv-500mi-0002", "kube2-pv-8gi-0001", "kube2-admin", "kube2-backup",
        "kube2-share",
        "kube3-pv-500mi-0001", "kube3-pv-500mi-0002", "kube3-pv-8gi-0001", "kube3-admin", "kube3-backup",
        "kube3-share", "kube3-mythtv"]
    mythtv = {o.name: o.data for o in pvs if o.name.endswith("mythtv")}
    assert mythtv["kube3-mythtv"]["spec"]["local"]["path"] == f"{ROOT_PATH}/media/mythtv"
    assert mythtv["kube3-mythtv"]["spec"]["capacity"] == {"storage": "400Gi"}
    media_id = mythtv["kube3-mythtv"]["metadata"]["labels"]["volume.id"]
    claims = {o.name: o.data for o in objects if o.kind == "PersistentVolumeClaim"}
    assert claims["share"] == {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "share", "namespace": "demo", "labels": {"volume.group": "share"}},
        "spec": {"accessModes": ["ReadWriteMany", "ReadWriteOnce"], "resources": {"requests": {"storage": "20Gi"}},
                 "storageClassName": "local-storage", "selector": {"matchLabels": {"volume.group": "share"}}}}
    assert claims["media"]["metadata"]["namespace"] == "media"
    assert claims["media"]["spec"] == {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "100Gi"}},
        "storageClassName": "local-storage", "selector": {"matchLabels": {"volume.id": media_id}}}
    assert claims["scratch"]["spec"]["selector"] == {"matchLabels": {"volume.group": "pool-m"}}
    assert claims["scratch"]["spec"]["resources"] == {"requests": {"storage": "8Gi"}}

    assert layout.directories("kube2.example.com") == [
        (ROOT_PATH, None, None),
        (f"{ROOT_PATH}/pool-s", 0o700, None), (f"{ROOT_PATH}/pool-s/pv-500Mi-0001", None, None),
        (f"{ROOT_PATH}/pool-s/pv-500Mi-0002", None, None),
        (f"{ROOT_PATH}/pool-m", 0o750, None), (f"{ROOT_PATH}/pool-m/pv-8Gi-0001", None, None),
        (f"{ROOT_PATH}/admin", None, None), (f"{ROOT_PATH}/backup", None, None), (f"{ROOT_PATH}/share", None, None)]
    assert (f"{ROOT_PATH}/media/mythtv", 0o775, "1234:2345") in layout.directories("kube1.example.com")


def test_named_nodes_only_and_short_names(project):
    setup_project(project)
    result = cli(project, "persistent", "kube2", "--dry-run=client")
    assert result.returncode == 0, result.stderr
    names = [d.data["metadata"]["name"] for d in kubeyaml.load_all(result.stdout, "out") if d.data]
    assert len(names) == 43 and all(n.startswith("kube2-") for n in names)
    wrong = cli(project, "persistent", "kube9", "--dry-run=client")
    assert (wrong.returncode, wrong.stderr) == (
        2, "error: node kube9 is not in K8S_NODES (kube1.example.com kube2.example.com kube3.example.com)\n")


def test_quantities():
    assert volumes.parse_quantity("500Mi") == 500 * 2**20
    assert volumes.parse_quantity("1.5G") == 1_500_000_000
    assert volumes.parse_quantity("2e3") == 2000
    assert volumes.parse_quantity("100m") * 10 == 1
    for bad in ("500Mb", "5 Gi", "Gi", "", "-", "1.2.3", "0x10", "5_00Mi", "1iB"):
        assert volumes.parse_quantity(bad) is None, bad


BAD_INPUT = [
    # (case, layout (None: LAYOUT), claims, environment, the one error line)
    ("invalid quantity", None, None, {"POOL_SIZE_SMALL": "500Mb"},
     "POOL_SIZE_SMALL='500Mb' (environment): not a Kubernetes quantity like 500m, 0.5, 256Mi or 8Gi"),
    ("invalid quantity in the layout", LAYOUT.replace('size: "$POOL_SIZE_SMALL"', 'size: "500Mb"'), None, {},
     'volumes/layout.yaml:5: pool pool-s: size "500Mb" is not a Kubernetes quantity such as 500Mi, 8Gi or 1Ti'),
    ("zero size", None, None, {"POOL_SIZE_MEDIUM": "0"},
     'volumes/layout.yaml:8: pool pool-m: size must be more than zero, got "0" (from $POOL_SIZE_MEDIUM)'),
    ("duplicate volume name", None, None, {"LOCAL_VOLUMES": "share"},
     "volumes/layout.yaml:11: duplicate volume name share (from $NAMED_VOLUMES)"),
    ("duplicate across entries", LAYOUT.replace("name: mythtv", "name: admin"), None, {},
     "volumes/layout.yaml:13: duplicate volume name admin (also on line 11)"),
    ("path outside the root", LAYOUT.replace("$K8S_VOLUMES_PATH/media/mythtv", "/mnt/media"), None, {},
     f"volumes/layout.yaml:16: volume mythtv: path /mnt/media is outside K8S_VOLUMES_PATH ({ROOT_PATH})"),
    ("path escaping the root", LAYOUT.replace("/media/mythtv", "/../../etc"), None, {},
     f"volumes/layout.yaml:16: volume mythtv: path {ROOT_PATH}/../../etc (from $K8S_VOLUMES_PATH) is outside "
     f"K8S_VOLUMES_PATH ({ROOT_PATH})"),
    ("path inside another volume", LAYOUT.replace("/media/mythtv", "/share/mythtv"), None, {},
     f"volumes/layout.yaml:13: volume mythtv: path {ROOT_PATH}/share/mythtv is inside volume share"),
    ("relative root", None, None, {"K8S_VOLUMES_PATH": "volumes"},
     "K8S_VOLUMES_PATH='volumes' (environment): not an absolute path like /var/lib/k8s-volumes"),
    ("the root itself", None, None, {"K8S_VOLUMES_PATH": "/"},
     'volumes/layout.yaml:1: root must be an absolute directory other than /, got "/" (from $K8S_VOLUMES_PATH)'),
    ("invalid name", None, None, {"NAMED_VOLUMES": "admin My_Media"},
     "NAMED_VOLUMES='admin My_Media' (environment): not volume names like admin backup (DNS names), space "
     "separated: 'My_Media' is not"),
    ("invalid name in the layout", LAYOUT.replace("name: mythtv", "name: My_Media"), None, {},
     "volumes/layout.yaml:13: invalid volume name 'My_Media': use at most 63 lowercase "
     "letters, digits, '-' and '.', starting and ending with a letter or digit"),
    ("same PV name as a pool volume", None, None, {"LOCAL_VOLUMES": "pv-8gi-0001"},
     "volumes/layout.yaml:11: volume pv-8gi-0001 has the same PersistentVolume name as pv-8Gi-0001 of pool pool-m"),
    ("two pools of one size", None, None, {"POOL_SIZE_MEDIUM": "500Mi"},
     "volumes/layout.yaml:6: pools pool-s and pool-m both hold volumes of size 500Mi: their PersistentVolume "
     "names (pv-500mi-0001, ...) would be the same"),
    ("count", None, None, {"POOL_NUM_SMALL": "thirty"},
     "POOL_NUM_SMALL='thirty' (environment): not a whole number from 0 to 10000"),
    ("decimal mode", LAYOUT.replace("mode: 0775", "mode: 775"), None, {},
     "volumes/layout.yaml:18: volume mythtv: mode 775 is not octal permission bits such as 0700; "
     'write 0775 or "0775"'),
    ("decimal mode that fits", LAYOUT.replace("mode: 0775", "mode: 500"), None, {},
     "volumes/layout.yaml:18: volume mythtv: mode 500 is the decimal number 500 (0764); write permission "
     "bits in octal, such as 0500"),
    ("owner", LAYOUT.replace('"1234:2345"', '"bob;rm -rf /"'), None, {},
     'volumes/layout.yaml:17: volume mythtv: owner "bob;rm -rf /" is not user, user:group or :group'),
    ("unknown field", LAYOUT.replace("  size: 400Gi", "  sise: 400Gi"), None, {},
     "volumes/layout.yaml:14: volume mythtv: unknown field 'sise' (known: name, names, size, nodes, path, mode, "
     "owner)"),
    ("missing field", LAYOUT.replace("  size: 400Gi\n", ""), None, {},
     "volumes/layout.yaml:13: volume mythtv: size nothing is not a Kubernetes quantity such as 500Mi, 8Gi or 1Ti"),
    ("node not in K8S_NODES", LAYOUT.replace("kube3.example.com]", "kube4.example.com]"), None, {},
     "volumes/layout.yaml:15: volume mythtv: node kube4.example.com is not in K8S_NODES "
     "(kube1.example.com kube2.example.com kube3.example.com)"),
    ("empty K8S_NODES", None, None, {"K8S_NODES": ""}, "K8S_NODES is empty: set it to the cluster's node names"),
    ("not a node name", None, None, {"K8S_NODES": "kube1 Kube_2"},
     "K8S_NODES='kube1 Kube_2' (environment): not node names like kube1.example.com (DNS names), space "
     "separated: 'Kube_2' is not"),
    ("claim too large", None, "claims:\n- name: big\n  volume: share\n  size: 1Ti\n", {},
     "volumes/claims.yaml:4: claim big asks for 1Ti, more than the 20Gi of volume share: it would never bind"),
    ("duplicate claim", None, "claims:\n- name: c\n  volume: share\n- name: c\n  volume: admin\n", {},
     "volumes/claims.yaml:4: duplicate claim demo/c (also on line 2)"),
    ("claim on an unknown volume", None, "claims:\n- name: c\n  volume: music\n", {},
     "volumes/claims.yaml:3: claim c: no volume or pool music in volumes/layout.yaml "
     "(known: pool-s, pool-m, admin, backup, share, mythtv)"),
    ("claim on a pool naming a node", None, "claims:\n- name: c\n  volume: pool-s\n  node: kube1\n", {},
     "volumes/claims.yaml:4: claim c: a claim on pool pool-s cannot name a node (its volumes are interchangeable)"),
    ("claim on a node without the volume", None, "claims:\n- name: c\n  volume: mythtv\n  node: kube2\n", {},
     "volumes/claims.yaml:4: claim c: volume mythtv is not on node kube2.example.com"),
    ("a pool too large to render", None, None, {"POOL_NUM_SMALL": "1000000"},
     "POOL_NUM_SMALL='1000000' (environment): not a whole number from 0 to 10000"),
    ("two dots in a name", LAYOUT.replace("name: mythtv", "name: a..b"), None, {},
     "volumes/layout.yaml:13: invalid volume name 'a..b': use at most 63 lowercase "
     "letters, digits, '-' and '.', starting and ending with a letter or digit"),
    ("a dot before a dash", LAYOUT.replace("name: mythtv", "name: c.-d"), None, {},
     "volumes/layout.yaml:13: invalid volume name 'c.-d': use at most 63 lowercase "
     "letters, digits, '-' and '.', starting and ending with a letter or digit"),
    ("a line break in the root", None, None, {"K8S_VOLUMES_PATH": "/var/lib/x\ny"},
     "K8S_VOLUMES_PATH='/var/lib/x\\ny' (environment): not an absolute path like /var/lib/k8s-volumes "
     "(it holds a control character)"),
    ("a control character in a path", LAYOUT.replace("path: $K8S_VOLUMES_PATH/media/mythtv",
                                                     'path: "$K8S_VOLUMES_PATH/media/my\\x1btv"'), None, {},
     f"volumes/layout.yaml:16: volume mythtv: path '{ROOT_PATH}/media/my\\x1btv' (from $K8S_VOLUMES_PATH) "
     "contains a control character"),
    ("an empty name", LAYOUT.replace("name: mythtv", 'name: ""'), None, {},
     "volumes/layout.yaml:13: volumes[1].name is empty"),
    ("an empty path", LAYOUT.replace("path: $K8S_VOLUMES_PATH/media/mythtv", 'path: ""'), None, {},
     "volumes/layout.yaml:16: volume mythtv: path is empty"),
    ("an empty node", None, 'claims:\n- name: c\n  volume: share\n  node: ""\n', {},
     "volumes/claims.yaml:4: claim c: node is empty"),
]


@pytest.mark.parametrize("case,layout,claims,env,message", BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_one_line(project, case, layout, claims, env, message):
    setup_project(project, layout=LAYOUT if layout is None else layout, claims=claims)
    result = cli(project, "persistent", "--dry-run=client", env=env)
    assert (result.returncode, result.stderr) == (1, f"error: {message}\n"), result.stderr
    assert result.stdout == ""


def test_a_missing_layout_is_one_line(project):
    setup_project(project)
    os.remove(os.path.join(project.root, "volumes", "layout.yaml"))
    result = cli(project, "persistent", "--dry-run=client")
    assert (result.returncode, result.stderr) == (1, "error: no volume layout: volumes/layout.yaml not found\n")


def test_the_modules_import_only_the_standard_library_at_start_up():
    code = ("import sys, k8s.nodes.volumes, k8s.commands.volumes, k8s.nodes.labels, k8s.nodes.remote; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('yaml', 'yaml_rs', 'jinja2', 'kubernetes', 'jsonschema_rs', 'urllib3') "
            "or m in ('k8s.core.render', 'k8s.core.kubeyaml', 'k8s.cluster.apply', 'k8s.cluster.connection', 'k8s.core.validate')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert (result.returncode, result.stdout.strip()) == (0, "[]"), result.stderr


def test_register_adds_the_commands():
    from k8s.commands import node_labels

    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command")
    volumes_cli.register(commands)
    node_labels.register(commands)
    assert set(commands.choices) == {"persistent", "persistent-dirs", "node-labels"}
    args = parser.parse_args(["persistent", "kube1", "--check-nodes", "--prune", "--context", "c"])
    assert (args.run, args.nodes, args.check_nodes, args.prune, args.context) == \
        (volumes_cli.cmd_persistent, ["kube1"], True, True, "c")
    args = parser.parse_args(["persistent-dirs", "kube1", "--dry-run"])
    assert (args.run, args.nodes, args.dry_run) == (volumes_cli.cmd_persistent_dirs, ["kube1"], True)
    args = parser.parse_args(["node-labels", "--force-conflicts", "--dry-run"])
    assert (args.run, args.force_conflicts, args.dry_run) == (node_labels.cmd_node_labels, True, "server")
    # the server's dry run even before a NODE; the offline print only by its whole flag
    assert parser.parse_args(["persistent", "--dry-run", "kube1"]).dry_run == "server"
    assert parser.parse_args(["persistent", "--dry-run=client", "kube1"]).dry_run == "client"


# --- persistent against the real control plane --------------------------------------
#
# The session's control plane: each test has three Node objects of its own, with short
# names of their own (so their PersistentVolumes, named after them, are the test's own
# too), and a namespace of its own for claims; all of it deleted afterwards.

class Volumes:
    """A scratch project whose K8S_NODES are three Nodes of this test's own."""

    def __init__(self, project, plane, own_nodes, proxy, kubeconfig):
        self.project, self.plane, self.own_nodes, self.proxy = project, plane, own_nodes, proxy
        tag = unique("v").split("-")[1]
        self.short = [f"kube{i}-{tag}" for i in (1, 2, 3)]
        self.nodes = [f"{s}.example.com" for s in self.short]
        self.namespace = unique("vol")
        for node in self.nodes:
            own_nodes.create(node)
        self.core = client.CoreV1Api(api_client(plane))
        project.env = {"KUBECONFIG": kubeconfig, "K8S_NODES": " ".join(self.nodes), "K8S_NAMESPACE": self.namespace}
        setup_project(project)

    def run(self, *args, env=None):
        return cli(self.project, *args, env=env)

    def pv(self, name):
        return self.plane.get(f"/api/v1/persistentvolumes/{name}", check=False)

    def pvs(self):
        """This test's PersistentVolumes (name -> object), as the API server has them."""
        return {o["metadata"]["name"]: o for o in self.plane.get("/api/v1/persistentvolumes")["items"]
                if o["metadata"]["name"].startswith(tuple(f"{s}-" for s in self.short))}

    def versions(self):
        return {name: o["metadata"]["resourceVersion"] for name, o in self.pvs().items()}

    def create_namespace(self):
        self.core.create_namespace({"metadata": {"name": self.namespace}})

    def cleanup(self):
        try:
            claims = self.core.list_namespaced_persistent_volume_claim(self.namespace).items
        except ApiException:
            claims = []
        for claim in claims:
            self.core.delete_namespaced_persistent_volume_claim(claim.metadata.name, self.namespace)
        # gone before the next test: a `--prune` run deletes every claim of `persistent` it does not render
        wait_for(lambda: not self.core.list_namespaced_persistent_volume_claim(self.namespace).items,
                 what=f"the claims of {self.namespace} to go")
        try:
            self.core.delete_namespace(self.namespace)
        except ApiException as err:
            if err.status != 404:
                raise
        def delete(name):
            try:
                self.core.delete_persistent_volume(name)
            except ApiException as err:
                if err.status != 404:
                    raise

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(delete, self.pvs()))


@pytest.fixture
def cluster(project, control_plane, own_nodes, fault_proxy, tmp_path):  # noqa: F811 (own_nodes: a fixture)
    volumes_ = Volumes(project, control_plane, own_nodes, fault_proxy, fault_proxy.kubeconfig(tmp_path / "kubeconfig"))
    yield volumes_
    volumes_.cleanup()


def all_available(cluster, count):
    """Wait until the PV controller has made each of the test's `count` PVs Available (its status
    write changes their resourceVersion)."""
    wait_for(lambda: (lambda pvs: len(pvs) == count and all(
        (o.get("status") or {}).get("phase") == "Available" for o in pvs.values()))(cluster.pvs()),
        what=f"{count} Available PersistentVolumes")


def binding_is_immediate(plane):
    """Whether a claim of storage class local-storage binds without waiting for a pod: yes
    unless the class exists with volumeBindingMode WaitForFirstConsumer (the local-storage
    component's), which another test may have installed."""
    found = plane.get("/apis/storage.k8s.io/v1/storageclasses/local-storage", check=False)
    return found is None or found.get("volumeBindingMode") != "WaitForFirstConsumer"


def test_apply_creates_every_pv_in_one_run_and_a_second_run_changes_nothing(cluster):
    kube1, kube2, kube3 = cluster.short
    result = cluster.run("persistent", "--check-nodes")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "129 created"
    assert f"persistentvolume/{kube2}-pv-8gi-0010 created" in lines
    stored = cluster.pv(f"{kube3}-share")
    assert stored["spec"]["local"] == {"path": f"{ROOT_PATH}/share"}
    assert stored["metadata"]["labels"]["volume.id"] == expected_id(cluster.nodes[2], f"{ROOT_PATH}/share")
    assert stored["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"] == [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": [cluster.nodes[2]]}]}]
    assert (stored["spec"]["capacity"], stored["spec"]["persistentVolumeReclaimPolicy"],
            stored["spec"]["storageClassName"]) == ({"storage": "20Gi"}, "Retain", "local-storage")
    all_available(cluster, 129)
    versions = cluster.versions()

    cluster.proxy.clear()
    again = cluster.run("persistent", "--check-nodes")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == "129 unchanged"
    assert cluster.versions() == versions
    sent = writes(cluster.proxy)
    assert {r.method for r in sent} == {"PATCH"} and len(sent) == 129
    assert all(query(r).get("fieldManager") == "k8s-toolkit" for r in sent)
    # discovery, the nodes, one LIST of PVs: nothing per object but its PATCH
    reads = [(r.method, r.path) for r in cluster.proxy.requests() if r.method != "PATCH"]
    assert len(reads) <= 6, reads


def test_a_volume_written_by_someone_else_during_the_run_is_unchanged(cluster):
    """A second run changes nothing, even when another writer changes a volume while the run
    applies it (the PV controller does, right after the first run: status Available)."""
    kube1 = cluster.short[0]
    assert cluster.run("persistent", kube1).returncode == 0
    all_available(cluster, 43)
    cluster.proxy.clear()
    cluster.proxy.slow(path=rf"^/api/v1/persistentvolumes/{kube1}-admin$", method="PATCH", delay=2.0)
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED and not k.startswith(("K8S_", "POOL_"))}
    run = subprocess.Popen([sys.executable, os.path.join(ROOT, "render.py"), "persistent", kube1],
                           cwd=cluster.project.root, env={**env, **cluster.project.env},
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: cluster.proxy.requests(method="PATCH", path=r"^/api/v1/persistentvolumes/"),
                 what="the run's first PersistentVolume apply")  # the slowed one is still on its way
        cluster.core.patch_persistent_volume(f"{kube1}-admin", {"metadata": {"annotations": {"example.com/x": "1"}}},
                                             field_manager="someone-else")
        out, err = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode == 0, err
    assert out.splitlines()[-1] == "43 unchanged", out


def test_claims_are_applied_with_the_volumes(cluster):
    kube2 = cluster.short[1]
    cluster.create_namespace()
    cluster.project.write("volumes/claims.yaml", f"claims:\n- name: share\n  volume: share\n  node: {kube2}\n")
    result = cluster.run("persistent", kube2)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "44 created"
    claim = cluster.core.read_namespaced_persistent_volume_claim("share", cluster.namespace)
    share = cluster.pv(f"{kube2}-share")
    assert claim.spec.selector.match_labels == {"volume.id": share["metadata"]["labels"]["volume.id"]}
    # the API server's own label selection: the claim can only ever get that one volume
    chosen = cluster.core.list_persistent_volume(
        label_selector=",".join(f"{k}={v}" for k, v in claim.spec.selector.match_labels.items())).items
    assert [pv.metadata.name for pv in chosen] == [f"{kube2}-share"]
    if binding_is_immediate(cluster.plane):  # the PV controller binds it to that volume
        bound = wait_for(lambda: (lambda c: c.status.phase == "Bound" and c)(
            cluster.core.read_namespaced_persistent_volume_claim("share", cluster.namespace)),
            what="the claim to bind")
        assert bound.spec.volume_name == f"{kube2}-share"
        assert cluster.pv(f"{kube2}-share")["spec"]["claimRef"]["name"] == "share"


def test_check_nodes_names_a_missing_node_and_a_wrong_hostname_label(cluster):
    kube4 = cluster.short[0].replace("kube1", "kube4")
    env = {"K8S_NODES": f"{cluster.nodes[0]} {kube4}.example.com"}
    result = cluster.run("persistent", "--check-nodes", env=env)
    assert (result.returncode, result.stderr) == (1, (
        f"error: node {kube4}.example.com of K8S_NODES is not in the cluster (context kubernetes-admin@kubernetes; "
        f"it has {', '.join(cluster_node_names(cluster.plane))})\n"))
    cluster.own_nodes.create(f"{kube4}.example.com", labels={"kubernetes.io/hostname": kube4})
    result = cluster.run("persistent", "--check-nodes", env=env)
    assert (result.returncode, result.stderr) == (1, (
        f"error: node {kube4}.example.com has label kubernetes.io/hostname={kube4}: its volumes, which select "
        f"kubernetes.io/hostname={kube4}.example.com, could never be used\n"))
    assert writes(cluster.proxy) == []
    assert cluster.pvs() == {}


def test_a_dry_run_is_the_servers_and_changes_nothing(cluster):
    kube1 = cluster.short[0]
    cluster.proxy.clear()
    dry = cluster.run("persistent", kube1, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[-1] == "43 created (server dry run)"
    assert cluster.pvs() == {}
    assert writes(cluster.proxy) and all(query(r).get("dryRun") == "All" for r in writes(cluster.proxy))

    assert cluster.run("persistent", kube1).returncode == 0
    all_available(cluster, 43)  # the PV controller's status write is done
    versions = cluster.versions()
    cluster.proxy.clear()
    dry = cluster.run("persistent", kube1, "--prune", "--dry-run", env={"POOL_NUM_SMALL": "28"})
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[-1] == "41 unchanged (server dry run), 2 pruned (server dry run)"
    assert all(query(r).get("dryRun") == "All" for r in writes(cluster.proxy))
    assert cluster.versions() == versions


def test_prune_deletes_volumes_gone_from_the_layout_but_keeps_bound_ones_and_other_nodes(cluster):
    kube1, kube2, kube3 = cluster.short
    assert cluster.run("persistent").returncode == 0
    all_available(cluster, 129)  # see test_a_volume_written_by_someone_else_during_the_run_is_unchanged
    # a claim bound to kube1's last small volume by name, as the PV controller binds it
    cluster.create_namespace()
    cluster.core.create_namespaced_persistent_volume_claim(cluster.namespace, {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-storage",
                 "volumeName": f"{kube1}-pv-500mi-0030", "resources": {"requests": {"storage": "500Mi"}}}})
    wait_for(lambda: (cluster.pv(f"{kube1}-pv-500mi-0030").get("status") or {}).get("phase") == "Bound",
             what="the PV controller to bind the claim")
    result = cluster.run("persistent", kube1, kube2, "--prune", env={"POOL_NUM_SMALL": "28"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sorted(line for line in lines if line.endswith(" pruned") and "/" in line) == [
        f"persistentvolume/{kube1}-pv-500mi-0029 pruned", f"persistentvolume/{kube2}-pv-500mi-0029 pruned",
        f"persistentvolume/{kube2}-pv-500mi-0030 pruned"]
    assert (f"persistentvolume/{kube1}-pv-500mi-0030 kept: no longer in the layout but bound to claim "
            f"{cluster.namespace}/data") in lines
    assert lines[-1] == "82 unchanged, 3 pruned"
    pruned = {f"{kube1}-pv-500mi-0029", f"{kube2}-pv-500mi-0029", f"{kube2}-pv-500mi-0030"}
    # deleted, and gone once the pv-protection controller has taken its finalizer off
    for pv in filter(None, map(cluster.pv, pruned)):
        assert pv["metadata"].get("deletionTimestamp"), pv["metadata"]["name"]
    remaining = wait_for(lambda: (lambda found: not pruned & set(found) and found)(cluster.pvs()),
                         what="the pruned volumes to go")
    assert f"{kube3}-pv-500mi-0030" in remaining and f"{kube1}-pv-500mi-0030" in remaining
    assert len(remaining) == 129 - 3
    assert cluster.pv(f"{kube1}-pv-500mi-0030")["status"]["phase"] == "Bound"
    deletes = cluster.proxy.requests(method="DELETE")
    assert sorted(r.path.rsplit("/", 1)[1] for r in deletes) == [
        f"{kube1}-pv-500mi-0029", f"{kube2}-pv-500mi-0029", f"{kube2}-pv-500mi-0030"]


# --- persistent-dirs against a real sshd --------------------------------------------

def small_tree(project, root, layout=LAYOUT):
    setup_project(project, layout=layout, extra_vars="export POOL_NUM_SMALL := 3\nexport POOL_NUM_MEDIUM := 2\n")
    return {"K8S_VOLUMES_PATH": str(root)}


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_persistent_dirs_creates_the_tree_over_one_connection(project, tmp_path, sshd):
    root = tmp_path / "k8s-volumes"
    layout = LAYOUT if os.geteuid() == 0 else LAYOUT.replace('  owner: "1234:2345"\n', "")
    env = {**small_tree(project, root, layout), **sshd.variables(), "REMOTE_SUDO": ""}
    result = cli(project, "persistent-dirs", "kube1", env=env)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"kube1.example.com: 12 directories under {root}\n"
    assert sshd.accepted(1) == 1
    found = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    assert found == ["admin", "backup", "media", "media/mythtv", "pool-m", "pool-m/pv-8Gi-0001",
                     "pool-m/pv-8Gi-0002", "pool-s", "pool-s/pv-500Mi-0001", "pool-s/pv-500Mi-0002",
                     "pool-s/pv-500Mi-0003", "share"]
    assert (mode(root / "pool-s"), mode(root / "pool-m"), mode(root / "media" / "mythtv")) == (0o700, 0o750, 0o775)
    if os.geteuid() == 0:
        info = os.stat(root / "media" / "mythtv")
        assert (info.st_uid, info.st_gid) == (1234, 2345)
    # kube2 has no mythtv volume; a second run changes nothing and still succeeds
    assert cli(project, "persistent-dirs", "kube2", env=env).returncode == 0
    os.chmod(root / "pool-s", 0o755)
    assert cli(project, "persistent-dirs", "kube1", env=env).returncode == 0
    assert mode(root / "pool-s") == 0o700


def test_remote_sudo_wraps_every_command_and_ssh_options_work_without_a_config(project, tmp_path, sshd):
    root = tmp_path / "vols"
    log = tmp_path / "sudo.log"
    wrapper = tmp_path / "fake sudo"
    wrapper.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$*\" >> {shlex.quote(str(log))}\nexec \"$@\"\n")
    wrapper.chmod(0o755)
    options = shlex.join([*sshd.options, "-o", "HostName=127.0.0.1"])
    env = {**small_tree(project, root, LAYOUT.replace('  owner: "1234:2345"\n', "")),
           "SSH_OPTIONS": options, "REMOTE_SUDO": f"{shlex.quote(str(wrapper))}"}
    result = cli(project, "persistent-dirs", "kube3.example.com", env=env)
    assert (result.returncode, result.stderr) == (0, "")
    calls = log.read_text().splitlines()
    assert [c.split()[0] for c in calls] == ["mkdir", "chmod", "chmod", "chmod"]
    assert calls[1] == f"chmod 0700 -- {root}/pool-s"
    assert (root / "media" / "mythtv").is_dir() and mode(root / "pool-m") == 0o750


def test_paths_are_quoted_so_values_cannot_inject_commands(project, tmp_path, sshd):
    marker = tmp_path / "injected"
    root = tmp_path / f"it's $(touch {marker}1) `touch {marker}2`; touch {marker}3 \"x\" \\ * & touch {marker}4"
    env = {**small_tree(project, root), **sshd.variables(), "REMOTE_SUDO": ""}
    if os.geteuid() != 0:
        project.write("volumes/layout.yaml", LAYOUT.replace('  owner: "1234:2345"\n', ""))
    result = cli(project, "persistent-dirs", "kube1", env=env)
    assert (result.returncode, result.stderr) == (0, "")
    assert (root / "pool-s" / "pv-500Mi-0003").is_dir() and (root / "media" / "mythtv").is_dir()
    assert not any(os.path.exists(f"{marker}{i}") for i in range(1, 5))


def test_dry_run_prints_the_command_and_connects_nowhere(project, tmp_path, sshd):
    env = {**small_tree(project, "/srv/vol umes"), **sshd.variables()}
    result = cli(project, "persistent-dirs", "kube2", "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    argv = shlex.split(result.stdout)
    assert argv[:3] == ["ssh", "-F", sshd.config]
    assert argv[-3:-1] == ["--", "kube2.example.com"]
    assert shlex.split(argv[-1])[:5] == ["sudo", "mkdir", "-p", "--", "/srv/vol umes/pool-s/pv-500Mi-0001"]
    assert "BatchMode=yes" in argv
    assert sshd.accepted() == 0 and not os.path.exists("/srv/vol umes")


def test_ssh_failures_name_the_host_and_the_exit_status(project, tmp_path, sshd_factory):
    server = sshd_factory()
    env = {**small_tree(project, tmp_path / "v"), **server.variables(), "REMOTE_SUDO": "false"}
    result = cli(project, "persistent-dirs", "kube1", env=env)
    assert (result.returncode, result.stderr) == (
        1, "error: ssh kube1.example.com: remote command failed (exit status 1)\n")
    port = server.port
    server.stop()
    env = {**env, "SSH_CONFIG": "", "REMOTE_SUDO": "",
           "SSH_OPTIONS": f"-F /dev/null -o HostName=127.0.0.1 -p {port}"}
    result = cli(project, "persistent-dirs", "kube1", env=env)
    assert (result.returncode, result.stderr) == (1, (
        f"error: ssh kube1.example.com: ssh failed (exit status 255): ssh: connect to host 127.0.0.1 port {port}: "
        "Connection refused\n"))
    assert cli(project, "persistent-dirs", env=env).stderr == (
        "error: name the node to set up (NODE=kube1.example.com make persistent_dirs), or --all for every node "
        "of K8S_NODES\n")


def test_all_nodes(project, tmp_path, sshd):
    env = {**small_tree(project, tmp_path / "v", LAYOUT.replace('  owner: "1234:2345"\n', "")),
           **sshd.variables(), "REMOTE_SUDO": ""}
    result = cli(project, "persistent-dirs", "--all", env=env)
    assert result.returncode == 0, result.stderr
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == NODES
    assert sshd.accepted(3) == 3


@pytest.mark.skipif(os.geteuid() != 0 or unprivileged_user() is None,
                    reason="needs root and an unprivileged account with a login shell")
def test_as_an_unprivileged_user(project, sshd_factory):
    server = sshd_factory(user=unprivileged_user())
    home = os.path.join(server.dir, "project")  # readable by that user, unlike pytest's tmp_path
    os.makedirs(os.path.join(home, "volumes"))
    project.root = home
    setup_project(project, layout=LAYOUT.replace('  owner: "1234:2345"\n', ""),
                  extra_vars="export POOL_NUM_SMALL := 1\nexport POOL_NUM_MEDIUM := 1\n")
    root = os.path.join(server.dir, "vols")
    uid = __import__("pwd").getpwnam(server.user).pw_uid
    for path in [home, *(os.path.join(d, n) for d, ds, fs in os.walk(home) for n in ds + fs)]:
        os.chown(path, uid, -1)
    env = {**server.variables(), **server.user_env(), "REMOTE_SUDO": "", "K8S_VOLUMES_PATH": root,
           "PYTHONDONTWRITEBYTECODE": "1"}
    result = cli(project, "persistent-dirs", "kube1", env=env, prefix=server.as_user)
    assert (result.returncode, result.stderr) == (0, "")
    assert os.stat(os.path.join(root, "pool-s", "pv-500Mi-0001")).st_uid == uid
    assert mode(os.path.join(root, "pool-s")) == 0o700


def test_remote_argv_and_sudo_words():
    from k8s.nodes import remote

    assert remote.ssh_argv("kube1", "true", {}) == [
        "ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "--", "kube1", "true"]
    assert remote.ssh_argv("n", "c", {"SSH_CONFIG": "/c f", "SSH_OPTIONS": "-p 2222 -i '/k y'"})[:7] == [
        "ssh", "-F", "/c f", "-p", "2222", "-i", "/k y"]
    assert (remote.sudo_words({}), remote.sudo_words({"REMOTE_SUDO": ""}),
            remote.sudo_words({"REMOTE_SUDO": "sudo -n"})) == (["sudo"], [], ["sudo", "-n"])
    with pytest.raises(UserError, match="not a host name"):
        remote.ssh_argv("-oProxyCommand=touch /tmp/x", "true", {})
    with pytest.raises(UserError, match="SSH_OPTIONS: No closing quotation"):
        remote.ssh_options({"SSH_OPTIONS": "-i 'x"})


def test_mkdir_command_quotes_every_path(project):
    setup_project(project, layout=LAYOUT, extra_vars="export POOL_NUM_SMALL := 1\nexport POOL_NUM_MEDIUM := 1\n")
    layout, _ = load(project, K8S_VOLUMES_PATH="/srv/a b")
    command = volumes.mkdir_command(layout, "kube1.example.com", ["sudo"])
    assert command == (
        "sudo mkdir -p -- '/srv/a b/pool-s/pv-500Mi-0001' '/srv/a b/pool-m/pv-8Gi-0001' '/srv/a b/admin' "
        "'/srv/a b/backup' '/srv/a b/share' '/srv/a b/media/mythtv' "
        "&& sudo chown 1234:2345 -- '/srv/a b/media/mythtv' "
        "&& sudo chmod 0700 -- '/srv/a b/pool-s' && sudo chmod 0750 -- '/srv/a b/pool-m' "
        "&& sudo chmod 0775 -- '/srv/a b/media/mythtv'")

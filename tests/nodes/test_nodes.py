"""`render.py node-labels` and `render.py untaint` against the real control plane
(conftest's `control_plane`): server-side apply of labels only, the control-plane taints.

The control plane is the session's: each test labels Node objects of its own, named
kube1..kube3 under a DOMAIN of its own (so volumes/nodes.yaml's `kube1.$DOMAIN` names
them), created through the admin API and deleted afterwards; the session's kube1..kube3
are never touched. render.py runs in a subprocess through the fault proxy, which passes
every request on to the real API server and records it. State is read back from the
API server itself.
"""

import json
import os
import subprocess
import sys

import pytest
from kubernetes import client

from k8s.nodes import labels as nodes

from ..conftest import ROOT
from ..realcluster import (api_client, base_labels, cluster_node_names, own_nodes,  # noqa: F401 (own_nodes: a fixture)
                          query, unique, wait_for, writes)
from .test_volumes import SCRUBBED, cli, setup_project

MANAGER = "k8s-toolkit-node-labels"
CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


class Labelled:
    """A scratch project whose volumes/nodes.yaml names three Nodes of this test's own."""

    def __init__(self, project, own_nodes, proxy, kubeconfig):
        self.project, self.own_nodes, self.proxy = project, own_nodes, proxy
        self.domain = f"{unique('nl')}.example.com"
        self.names = [f"kube{i}.{self.domain}" for i in (1, 2, 3)]
        for name in self.names:
            own_nodes.create(name)
        project.env = {"KUBECONFIG": kubeconfig, "DOMAIN": self.domain}
        setup_project(project)

    def run(self, *args, env=None):
        return cli(self.project, *args, env=env)

    def node(self, i):
        """Node kube<i> as the API server has it."""
        return self.own_nodes.get(self.names[i - 1])

    def labels(self, i):
        return self.node(i)["metadata"].get("labels") or {}

    def applied(self, i):
        """This toolkit's managedFields entries on node kube<i>, time included."""
        return [e for e in self.node(i)["metadata"].get("managedFields") or [] if e["manager"] == MANAGER]

    def write_map(self, text):
        self.project.write("volumes/nodes.yaml", text)

    def base(self, i):
        """The labels a node of this test was created with."""
        return base_labels(self.names[i - 1])


@pytest.fixture
def labelled(project, own_nodes, fault_proxy, tmp_path):  # noqa: F811 (own_nodes: a fixture)
    return Labelled(project, own_nodes, fault_proxy, fault_proxy.kubeconfig(tmp_path / "kubeconfig"))


def kubectl_label(control_plane, node, values):
    """What `kubectl label node NODE key=value` does: an update under its own manager."""
    client.CoreV1Api(api_client(control_plane)).patch_node(node, {"metadata": {"labels": values}},
                                                          field_manager="kubectl-label")


def test_shipped_map_labels_every_node_and_a_second_run_changes_nothing(labelled):
    n1, n2, n3 = labelled.names
    result = labelled.run("node-labels")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"node/{n1} configured: +service.data-sync=allow",
        f"node/{n2} configured: +service.data-sync=allow",
        f"node/{n3} configured: +service.data-sync=allow",
        "3 configured"]
    assert labelled.labels(2) == {**labelled.base(2), "service.data-sync": "allow"}
    assert [(e["operation"], e["fieldsV1"]) for e in labelled.applied(2)] == [
        ("Apply", {"f:metadata": {"f:labels": {"f:service.data-sync": {}}}})]
    before = {i: (labelled.labels(i), labelled.applied(i)) for i in (1, 2, 3)}
    labelled.proxy.clear()
    again = labelled.run("node-labels")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [f"node/{n} unchanged" for n in labelled.names] + ["3 unchanged"]
    # the server stored nothing new of ours: labels and this manager's entry, its time included
    assert {i: (labelled.labels(i), labelled.applied(i)) for i in (1, 2, 3)} == before
    sent = writes(labelled.proxy)
    assert sorted(r.path for r in sent) == [f"/api/v1/nodes/{n}" for n in labelled.names]
    assert all(r.method == "PATCH" and query(r).get("fieldManager") == MANAGER and "dryRun" not in query(r)
               for r in sent)
    # one LIST of the nodes, nothing read per node
    assert [r.path for r in labelled.proxy.requests(method="GET", path=r"^/api/v1/nodes")] == ["/api/v1/nodes"]


def test_a_node_written_by_someone_else_during_the_run_is_still_unchanged(labelled, control_plane):
    """A kubelet's heartbeat or a controller writes a node between the LIST and the apply:
    the apply changes nothing of ours, so the node is unchanged, not "configured: no label
    changed, only who manages them" (what comparing resourceVersions said)."""
    assert labelled.run("node-labels").returncode == 0
    labelled.proxy.clear()
    labelled.proxy.slow(path=r"^/api/v1/nodes/", method="PATCH", delay=2.0)
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED and not k.startswith(("K8S_", "POOL_"))}
    run = subprocess.Popen([sys.executable, os.path.join(ROOT, "render.py"), "node-labels"],
                           cwd=labelled.project.root, env={**env, **labelled.project.env},
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: labelled.proxy.requests(method="GET", path=r"^/api/v1/nodes$"), what="the LIST of nodes")
        core = client.CoreV1Api(api_client(control_plane))
        for name in labelled.names:  # a write that is not ours, while our PATCHes wait in the proxy
            core.patch_node(name, {"metadata": {"annotations": {"example.com/heartbeat": "1"}}},
                            field_manager="someone-else")
        out, err = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 0, err
    assert out.splitlines() == [f"node/{n} unchanged" for n in labelled.names] + ["3 unchanged"]


def test_labels_dropped_from_the_map_are_removed_and_others_stay(labelled):
    n1, n2, _ = labelled.names
    labelled.write_map("""\
labels:
  kube1.$DOMAIN:
    service.data-sync: allow
    service.git-dump: allow
    node-role.kubernetes.io/storage: ""
  kube2.$DOMAIN:
    service.git-dump: allow
""")
    assert labelled.run("node-labels").returncode == 0
    assert labelled.labels(1) == {**labelled.base(1), "service.data-sync": "allow", "service.git-dump": "allow",
                                  "node-role.kubernetes.io/storage": ""}
    labelled.write_map("""\
labels:
  kube1.$DOMAIN:
    service.data-sync: deny
""")
    result = labelled.run("node-labels")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"node/{n1} configured: service.data-sync=allow->deny, -node-role.kubernetes.io/storage, "
        "-service.git-dump",
        f"node/{n2} configured: -service.git-dump",
        "2 configured"]
    assert labelled.labels(1) == {**labelled.base(1), "service.data-sync": "deny"}
    assert labelled.labels(2) == labelled.base(2)
    assert not [e for e in labelled.applied(2) if e["fieldsV1"].get("f:metadata", {}).get("f:labels")]
    # kube2 is labelled by nobody now: the next run leaves it alone
    labelled.proxy.clear()
    assert labelled.run("node-labels").stdout.splitlines() == [f"node/{n1} unchanged", "1 unchanged"]
    assert [r.path for r in writes(labelled.proxy)] == [f"/api/v1/nodes/{n1}"]


def test_a_label_someone_else_also_set_stays_and_the_run_says_who(labelled, control_plane):
    n1, n2, n3 = labelled.names
    kubectl_label(control_plane, n3, {"service.data-sync": "allow"})
    result = labelled.run("node-labels")
    # the same value: no conflict, both managers hold the label now
    assert f"node/{n3} configured: no label changed, only who manages them" in result.stdout.splitlines()
    owners = {e["manager"] for e in labelled.node(3)["metadata"]["managedFields"]
              if "f:service.data-sync" in e["fieldsV1"].get("f:metadata", {}).get("f:labels", {})}
    assert owners == {MANAGER, "kubectl-label"}
    labelled.write_map("labels:\n  kube1.$DOMAIN:\n    service.data-sync: allow\n")
    result = labelled.run("node-labels")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"node/{n1} unchanged",
        f"node/{n2} configured: -service.data-sync",
        f"node/{n3} configured: no label changed, only who manages them",
        f"note: node/{n3}: label service.data-sync stays, also set by kubectl-label; remove it "
        f"with kubectl label node {n3} service.data-sync-",
        "2 configured, 1 unchanged"]
    assert labelled.labels(3)["service.data-sync"] == "allow"
    assert "service.data-sync" not in labelled.labels(2)


def test_a_conflicting_value_fails_until_forced(labelled, control_plane):
    n2 = labelled.names[1]
    kubectl_label(control_plane, n2, {"service.data-sync": "deny"})
    result = labelled.run("node-labels")
    assert result.returncode == 1
    failed = [line for line in result.stdout.splitlines() if " failed: " in line]
    assert len(failed) == 1 and failed[0].startswith(f"node/{n2} failed: Apply failed with 1 conflict: "
                                                     'conflict with "kubectl-label"'), failed
    assert failed[0].endswith("(409 Conflict; --force-conflicts takes these fields over)")
    assert failed[0].count("--force-conflicts") == 1
    assert labelled.labels(2)["service.data-sync"] == "deny"
    assert [labelled.labels(i)["service.data-sync"] for i in (1, 3)] == ["allow", "allow"]
    forced = labelled.run("node-labels", "--force-conflicts")
    assert forced.returncode == 0, forced.stderr
    assert f"node/{n2} configured: service.data-sync=deny->allow" in forced.stdout.splitlines()
    assert labelled.labels(2)["service.data-sync"] == "allow"


def test_the_shipped_map_follows_k8s_nodes_and_named_nodes_add_to_it(labelled):
    n1, n2, n3 = labelled.names
    two = labelled.run("node-labels", env={"K8S_NODES": f"{n1} {n3}"})
    assert two.returncode == 0, two.stderr
    assert two.stdout.splitlines() == [f"node/{n1} configured: +service.data-sync=allow",
                                       f"node/{n3} configured: +service.data-sync=allow", "2 configured"]
    assert "service.data-sync" not in labelled.labels(2)

    labelled.write_map("everyNode:\n  service.data-sync: allow\nlabels:\n  kube2.$DOMAIN:\n    disk: ssd\n"
                       "  kube3.$DOMAIN:\n    service.data-sync: deny\n")
    mixed = labelled.run("node-labels", env={"K8S_NODES": f"{n1} {n3}"})
    assert mixed.returncode == 0, mixed.stderr
    assert labelled.labels(1)["service.data-sync"] == "allow"
    assert labelled.labels(2)["disk"] == "ssd" and "service.data-sync" not in labelled.labels(2)
    assert labelled.labels(3)["service.data-sync"] == "deny"  # a named node's own value wins


def test_an_unknown_node_is_an_error_and_nothing_is_written_or_created(labelled, control_plane):
    labelled.write_map("labels:\n  kube1.$DOMAIN:\n    a: b\n  kube9.$DOMAIN:\n    a: b\n")
    result = labelled.run("node-labels")
    assert (result.returncode, result.stderr) == (1, (
        f"error: volumes/nodes.yaml:4: node kube9.{labelled.domain} is not in the cluster (context "
        f"kubernetes-admin@kubernetes; it has {', '.join(cluster_node_names(control_plane))})\n"))
    assert writes(labelled.proxy) == []
    assert labelled.own_nodes.get(f"kube9.{labelled.domain}") is None
    assert "a" not in labelled.labels(1)


@pytest.mark.parametrize("text,message", [
    ("labels:\n  kube1.$DOMAIN:\n    service.x: true\n",
     'volumes/nodes.yaml:3: node kube1.{domain}: label service.x: value true is not a string: quote it ("true")'),
    ("labels:\n  kube1.$DOMAIN:\n    bad key: x\n",
     "volumes/nodes.yaml:3: node kube1.{domain}: label key 'bad key': the name (after any 'prefix/') must be "
     "letters, digits, '-', '_' and '.', starting and ending with a letter or digit, at most 63 characters"),
    ("labels:\n  kube1.$DOMAIN:\n    Example.com/x: y\n",
     "volumes/nodes.yaml:3: node kube1.{domain}: label key 'Example.com/x': the prefix before '/' must be a "
     "DNS-1123 subdomain: lower case letters, digits, '-' and '.', starting and ending with a letter or digit, "
     "at most 253 characters"),
    ("labels:\n  kube1.$DOMAIN:\n    a: x y\n",
     "volumes/nodes.yaml:3: node kube1.{domain}: label a: value 'x y' must be empty or letters, digits, '-', "
     "'_' and '.', starting and ending with a letter or digit, at most 63 characters"),
    ("nodes: {}\n", "volumes/nodes.yaml:1: the node labels file: unknown field 'nodes' (known: everyNode, labels)"),
])
def test_bad_label_maps_are_one_line(labelled, text, message):
    labelled.write_map(text)
    result = labelled.run("node-labels")
    assert (result.returncode, result.stderr) == (1, f"error: {message.format(domain=labelled.domain)}\n")
    assert labelled.proxy.requests() == []  # refused before asking the API server anything


def test_what_the_checks_refuse_the_api_server_refuses_too(labelled):
    """The label checks are the API server's: a key or value they refuse, the server refuses too,
    and what they let through it stores."""
    from kubernetes.client.rest import ApiException

    core = labelled.own_nodes.core
    name = labelled.names[0]
    for key, value in (("bad key", "x"), ("Example.com/x", "y"), ("a", "x y"), ("a", "-x"), ("a" * 64, "x"),
                       ("example.com/" + "a" * 64, "x"), ("a", "x" * 64)):
        assert nodes.label_key_problem(key) or nodes.label_value_problem(key, value), (key, value)
        with pytest.raises(ApiException) as refused:
            core.patch_node(name, {"metadata": {"labels": {key: value}}})
        assert refused.value.status == 422, (key, value)
    good = {"a": "", "x.y/b-c_d.e": "V_1.x", "A1": "a" * 63, f"{'s' * 63}.example.com/n": "1"}
    assert not [k for k, v in good.items() if nodes.label_key_problem(k) or nodes.label_value_problem(k, v)]
    core.patch_node(name, {"metadata": {"labels": good}})
    assert good.items() <= labelled.labels(1).items()


def test_dry_run_writes_nothing(labelled):
    result = labelled.run("node-labels", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"node/{n} configured (server dry run): +service.data-sync=allow" for n in labelled.names] + [
        "3 configured (server dry run)"]
    sent = writes(labelled.proxy)
    assert len(sent) == 3 and all(query(r).get("dryRun") == "All" for r in sent)
    assert all("service.data-sync" not in labelled.labels(i) for i in (1, 2, 3))
    assert all(labelled.applied(i) == [] for i in (1, 2, 3))


def test_json_report(labelled):
    report = json.loads(labelled.run("node-labels", "-o", "json").stdout)
    assert report["summary"] == {"configured": 3}
    assert report["objects"][0] == {"kind": "Node", "apiVersion": "v1", "name": labelled.names[0],
                                    "namespace": None, "component": "node-labels", "result": "configured",
                                    "message": "+service.data-sync=allow"}


def test_owned_labels_reads_managed_fields():
    node = {"metadata": {"managedFields": [
        {"manager": MANAGER, "operation": "Apply", "fieldsV1": {"f:metadata": {"f:labels": {"f:a": {}, "f:b/c": {}}}}},
        {"manager": MANAGER, "operation": "Update", "fieldsV1": {"f:metadata": {"f:labels": {"f:z": {}}}}},
        {"manager": "kubectl-label", "operation": "Update", "fieldsV1": {"f:metadata": {"f:labels": {"f:a": {}}}}},
    ]}}
    assert nodes.owned_labels(node, MANAGER) == {"a", "b/c"}
    assert nodes.other_owners(node, "a", MANAGER) == ["kubectl-label"]
    assert nodes.node_body("n", {}) == {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}}


@pytest.mark.parametrize("key,env", [("Kube1.$DOMAIN", {}), ("kube1..$DOMAIN", {}),
                                     ("Kube1", {}), ("'?watch=1'", {}), ("a" * 254, {})])
def test_node_names_must_be_dns_subdomains_and_errors_name_the_key_line(labelled, key, env):
    labelled.write_map(f"labels:\n  {labelled.names[1]}:\n    a: b\n  {key}:\n    a: b\n")
    result = labelled.run("node-labels", env=env)
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("error: volumes/nodes.yaml:4: node '"), line
    assert "is not a node name (a DNS-1123 subdomain" in line
    assert line.endswith(" (from $DOMAIN)") == ("$DOMAIN" in key)
    assert labelled.proxy.requests() == []


def test_the_node_name_check_is_the_api_servers(own_nodes):  # noqa: F811
    """What node_name_problem refuses the API server refuses as a Node name, and the reverse."""
    from kubernetes.client.rest import ApiException

    stem = unique("nn")
    for name in (f"{stem}..x", f"{stem.upper()}", f"{stem}-", f"{stem}/x", f"{stem}_x", "a" * 254):
        assert nodes.node_name_problem(name), name
        with pytest.raises(ApiException) as refused:
            own_nodes.create(name)
        assert refused.value.status in (404, 405, 422), name  # "/" makes it another path
    own_nodes.names.clear()
    for name in (f"{stem}.x", f"{stem}-1.example.com", f"0{stem}", f"{stem}." + ("a" * 61 + ".") * 3 + "a" * 55):
        assert nodes.node_name_problem(name) is None, name
        own_nodes.names.append(name)
        own_nodes.core.create_node({"metadata": {"name": name}})  # a label value holds 63 characters only
        assert own_nodes.get(name)["metadata"]["name"] == name


# --- render.py untaint --------------------------------------------------------------------

def untaint(kubeconfig, *args):
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    return subprocess.run([sys.executable, os.path.join(ROOT, "render.py"), "untaint", *args], cwd=ROOT,
                          env={**env, "KUBECONFIG": kubeconfig}, capture_output=True, text=True, timeout=60)


def taint_keys(own_nodes, name):  # noqa: F811
    return [t["key"] for t in own_nodes.get(name)["spec"].get("taints") or []]


def test_untaint_removes_only_the_control_plane_taints(own_nodes, fault_proxy, tmp_path):  # noqa: F811
    kubeconfig = fault_proxy.kubeconfig(tmp_path / "kubeconfig")
    # (test_access.py has the make target's test; this one adds kubeadm's old master taint)
    node = own_nodes.create(f"{unique('cp')}.example.com", labels={"node-role.kubernetes.io/control-plane": ""},
                            taints=[CONTROL_PLANE_TAINT,
                                    {"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"},
                                    {"key": "dedicated", "value": "db", "effect": "NoSchedule"}])
    result = untaint(kubeconfig, node)
    assert result.returncode == 0, result.stderr
    assert f"warning: pods on {node} can reach the control plane's credentials" in result.stderr
    assert result.stdout.strip() == \
        f"node/{node} untainted: node-role.kubernetes.io/control-plane, node-role.kubernetes.io/master"
    taints = own_nodes.get(node)["spec"]["taints"]
    assert {"key": "dedicated", "value": "db", "effect": "NoSchedule"} in taints
    assert not {"node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"} & \
        set(taint_keys(own_nodes, node))
    assert [r.method for r in writes(fault_proxy)] == ["PATCH"]

    again = untaint(kubeconfig, node)
    assert (again.returncode, again.stdout.strip()) == (0, f"node/{node} has no control-plane taint")
    assert {"key": "dedicated", "value": "db", "effect": "NoSchedule"} in own_nodes.get(node)["spec"]["taints"]

    ghost = f"{unique('ghost')}.example.com"
    missing = untaint(kubeconfig, ghost)
    assert (missing.returncode, missing.stderr.splitlines()[-1]) == (1, f"error: node {ghost} not found in the cluster")
    assert own_nodes.get(ghost) is None


def test_untaint_survives_a_status_update_between_its_read_and_its_write(own_nodes, fault_proxy, tmp_path,  # noqa: F811
                                                                          control_plane):
    kubeconfig = fault_proxy.kubeconfig(tmp_path / "kubeconfig")
    node = own_nodes.create(f"{unique('cp')}.example.com", taints=[CONTROL_PLANE_TAINT])
    fault_proxy.slow(path=r"^/api/v1/nodes/", method="PATCH", delay=2.0)
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    run = subprocess.Popen([sys.executable, os.path.join(ROOT, "render.py"), "untaint", node], cwd=ROOT,
                           env={**env, "KUBECONFIG": kubeconfig}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        wait_for(lambda: fault_proxy.requests(method="GET", path=f"^/api/v1/nodes/{node}$"), what="untaint's GET")
        # what a kubelet does every few seconds to minutes: the taints stay as they are
        client.CoreV1Api(api_client(control_plane)).patch_node_status(node, {"status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "simulated"}]}})
        out, err = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 0, err
    assert out.strip() == f"node/{node} untainted: node-role.kubernetes.io/control-plane"
    assert "node-role.kubernetes.io/control-plane" not in taint_keys(own_nodes, node)

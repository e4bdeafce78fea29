"""`render.py node-labels` against the API server stand-in: server-side apply of labels only."""

import pytest
from kubernetes import client

from k8s import nodes

from .test_volumes import NODES, cli, cluster  # noqa: F401  (cluster: a fixture)

MANAGER = "k8s-toolkit-node-labels"




def labels(server, node):
    return server.get("Node", node)["metadata"]["labels"]


def version(server, node):
    return server.get("Node", node)["metadata"]["resourceVersion"]


def kubectl_label(server, node, values):
    """What `kubectl label node NODE key=value` does: an update under its own manager."""
    api = client.CoreV1Api(server.api_client())
    api.patch_node(node, {"metadata": {"labels": values}}, field_manager="kubectl-label")


def write_map(project, text):
    project.write("volumes/nodes.yaml", text)


def test_shipped_map_labels_every_node_and_a_second_run_changes_nothing(project, cluster):
    result = cli(project, "node-labels")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "node/kube1.example.com configured: +service.data-sync=allow",
        "node/kube2.example.com configured: +service.data-sync=allow",
        "node/kube3.example.com configured: +service.data-sync=allow",
        "3 configured"]
    assert labels(cluster, "kube2.example.com") == {
        "kubernetes.io/hostname": "kube2.example.com", "kubernetes.io/os": "linux", "service.data-sync": "allow"}
    entry = [e for e in cluster.get("Node", "kube2.example.com")["metadata"]["managedFields"]
             if e["manager"] == MANAGER]
    assert [(e["operation"], e["fieldsV1"]) for e in entry] == [
        ("Apply", {"f:metadata": {"f:labels": {"f:service.data-sync": {}}}})]
    before = {n: version(cluster, n) for n in NODES}
    cluster.clear_requests()
    again = cli(project, "node-labels")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == "3 unchanged"
    assert {n: version(cluster, n) for n in NODES} == before
    writes = cluster.writes()
    assert [r.method for r in writes] == ["PATCH"] * 3
    assert all(r.query.get("fieldManager") == MANAGER and r.content_type == "application/apply-patch+yaml"
               for r in writes)


def test_labels_dropped_from_the_map_are_removed_and_others_stay(project, cluster):
    write_map(project, """\
labels:
  kube1.$DOMAIN:
    service.data-sync: allow
    service.git-dump: allow
    node-role.kubernetes.io/storage: ""
  kube2.$DOMAIN:
    service.git-dump: allow
""")
    assert cli(project, "node-labels").returncode == 0
    assert labels(cluster, "kube1.example.com") == {
        "kubernetes.io/hostname": "kube1.example.com", "kubernetes.io/os": "linux",
        "service.data-sync": "allow", "service.git-dump": "allow", "node-role.kubernetes.io/storage": ""}
    write_map(project, """\
labels:
  kube1.$DOMAIN:
    service.data-sync: deny
""")
    result = cli(project, "node-labels")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "node/kube1.example.com configured: service.data-sync=allow->deny, -node-role.kubernetes.io/storage, "
        "-service.git-dump",
        "node/kube2.example.com configured: -service.git-dump",
        "2 configured"]
    assert labels(cluster, "kube1.example.com") == {
        "kubernetes.io/hostname": "kube1.example.com", "kubernetes.io/os": "linux", "service.data-sync": "deny"}
    assert labels(cluster, "kube2.example.com") == {
        "kubernetes.io/hostname": "kube2.example.com", "kubernetes.io/os": "linux"}
    assert not [e for e in cluster.get("Node", "kube2.example.com")["metadata"]["managedFields"]
                if e["manager"] == MANAGER and e["fieldsV1"].get("f:metadata", {}).get("f:labels")]
    # kube2 is labelled by nobody now: the next run leaves it alone
    cluster.clear_requests()
    assert cli(project, "node-labels").stdout.splitlines() == ["node/kube1.example.com unchanged", "1 unchanged"]


def test_a_label_someone_else_also_set_stays_and_the_run_says_who(project, cluster):
    kubectl_label(cluster, "kube3.example.com", {"service.data-sync": "allow"})
    result = cli(project, "node-labels")
    # the same value: no conflict, both managers hold the label now
    assert "node/kube3.example.com configured: no label changed, only who manages them" in \
        result.stdout.splitlines()
    write_map(project, "labels:\n  kube1.$DOMAIN:\n    service.data-sync: allow\n")
    result = cli(project, "node-labels")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "node/kube1.example.com unchanged",
        "node/kube2.example.com configured: -service.data-sync",
        "node/kube3.example.com configured: no label changed, only who manages them",
        "note: node/kube3.example.com: label service.data-sync stays, also set by kubectl-label; remove it "
        "with kubectl label node kube3.example.com service.data-sync-",
        "2 configured, 1 unchanged"]
    assert labels(cluster, "kube3.example.com")["service.data-sync"] == "allow"


def test_a_conflicting_value_fails_until_forced(project, cluster):
    kubectl_label(cluster, "kube2.example.com", {"service.data-sync": "deny"})
    result = cli(project, "node-labels")
    assert result.returncode == 1
    failed = [line for line in result.stdout.splitlines() if " failed: " in line]
    assert len(failed) == 1 and failed[0].startswith("node/kube2.example.com failed: Apply failed with 1 conflict: "
                                                     'conflict with "kubectl-label"')
    assert failed[0].endswith("(409 Conflict; --force-conflicts takes these fields over)")
    assert failed[0].count("--force-conflicts") == 1
    assert labels(cluster, "kube2.example.com")["service.data-sync"] == "deny"
    forced = cli(project, "node-labels", "--force-conflicts")
    assert forced.returncode == 0, forced.stderr
    assert "node/kube2.example.com configured: service.data-sync=deny->allow" in forced.stdout.splitlines()
    assert labels(cluster, "kube2.example.com")["service.data-sync"] == "allow"


def test_an_unknown_node_is_an_error_and_nothing_is_written_or_created(project, cluster):
    write_map(project, "labels:\n  kube1.$DOMAIN:\n    a: b\n  kube9.$DOMAIN:\n    a: b\n")
    result = cli(project, "node-labels")
    assert (result.returncode, result.stderr) == (1, (
        "error: volumes/nodes.yaml:4: node kube9.example.com is not in the cluster (context "
        "kubernetes-admin@kubernetes; it has kube1.example.com, kube2.example.com, kube3.example.com)\n"))
    assert cluster.writes() == []
    assert cluster.get("Node", "kube9.example.com") is None


@pytest.mark.parametrize("text,message", [
    ("labels:\n  kube1.$DOMAIN:\n    service.x: true\n",
     'volumes/nodes.yaml:3: node kube1.example.com: label service.x: value true is not a string: quote it ("true")'),
    ("labels:\n  kube1.$DOMAIN:\n    bad key: x\n",
     "volumes/nodes.yaml:3: node kube1.example.com: label key 'bad key': the name must be at most 63 letters, "
     "digits, '-', '_' and '.', starting and ending with a letter or digit"),
    ("labels:\n  kube1.$DOMAIN:\n    Example.com/x: y\n",
     "volumes/nodes.yaml:3: node kube1.example.com: label key 'Example.com/x': the prefix before '/' must be a "
     "DNS subdomain (example.com)"),
    ("labels:\n  kube1.$DOMAIN:\n    a: x y\n",
     "volumes/nodes.yaml:3: node kube1.example.com: label a: value 'x y' must be at most 63 letters, digits, "
     "'-', '_' and '.', starting and ending with a letter or digit"),
    ("nodes: {}\n", "volumes/nodes.yaml:1: the node labels file: unknown field 'nodes' (known: labels)"),
])
def test_bad_label_maps_are_one_line(project, cluster, text, message):
    write_map(project, text)
    result = cli(project, "node-labels")
    assert (result.returncode, result.stderr) == (1, f"error: {message}\n")
    assert cluster.writes() == []


def test_dry_run_writes_nothing(project, cluster):
    result = cli(project, "node-labels", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == \
        "node/kube1.example.com configured (server dry run): +service.data-sync=allow"
    assert cluster.writes() == []
    assert "service.data-sync" not in labels(cluster, "kube1.example.com")


def test_json_report(project, cluster):
    import json

    report = json.loads(cli(project, "node-labels", "-o", "json").stdout)
    assert report["summary"] == {"configured": 3}
    assert report["objects"][0] == {"kind": "Node", "apiVersion": "v1", "name": "kube1.example.com",
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


@pytest.mark.parametrize("key,env", [("kube1.$DOMAIN", {"DOMAIN": ""}), ("kube1..$DOMAIN", {}),
                                     ("Kube1", {}), ("'?watch=1'", {}), ("a" * 254, {})])
def test_node_names_must_be_dns_subdomains_and_errors_name_the_key_line(project, cluster, key, env):
    write_map(project, f"labels:\n  kube2.example.com:\n    a: b\n  {key}:\n    a: b\n")
    result = cli(project, "node-labels", env=env)
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("error: volumes/nodes.yaml:4: node '"), line
    assert "is not a node name (a DNS-1123 subdomain" in line
    assert line.endswith(" (from $DOMAIN)") == ("$DOMAIN" in key)
    assert cluster.writes() == []

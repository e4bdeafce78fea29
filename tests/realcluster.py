"""Helpers for tests against the real control plane (tests.controlplane, conftest's
`control_plane`): an admin API client, names of a test's own, and Node objects a test
creates and deletes itself, so that the session's kube1..kube3 stay as other tests expect.

A Node created through the admin API has no kubelet behind it: it is never Ready, which
node labels, taints and PersistentVolume node affinity do not need. The controller-manager
still writes to it (a pod CIDR and the not-ready taint's removal within a second or so,
Unknown conditions and unreachable taints after the node startup grace period, a minute):
`Nodes.create` waits out the first, and a test must not take a changed resourceVersion
for something the toolkit did.
"""

import time
import uuid

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException


def unique(prefix):
    """`prefix`-<8 hex digits>: a name no other test (or earlier run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def api_client(plane):
    """A kubernetes ApiClient for the cluster admin of `plane` (kubeadm's admin.conf)."""
    return config.new_client_from_config(config_file=plane.kubeconfig)


def wait_for(predicate, timeout=30.0, interval=0.1, what="the condition"):
    """predicate()'s first true value, polled until `timeout` seconds passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def base_labels(name):
    """The labels a kubelet registers its node with (the node lifecycle controller adds the
    beta os label when it is missing: given here, nothing is added behind a test's back)."""
    return {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "beta.kubernetes.io/os": "linux"}


class Nodes:
    """Node objects of one test: created through the admin API, deleted at its end."""

    def __init__(self, plane):
        self.plane = plane
        self.core = client.CoreV1Api(api_client(plane))
        self.names = []

    def create(self, name, labels=None, taints=None):
        """A Node `name` with the labels a kubelet registers (BASE_LABELS, hostname `name`), plus
        `labels`, with spec.taints `taints`."""
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": name, "labels": {**base_labels(name), **(labels or {})}}}
        if taints:
            body["spec"] = {"taints": taints}
        self.names.append(name)
        self.core.create_node(body)
        self.settle(name)
        return name

    def settle(self, name):
        """Wait for the controller-manager's first writes to a new Node: its pod CIDR, and the
        removal of the not-ready taint that admission (TaintNodesByCondition) puts on every new
        node. Its next write comes with the node startup grace period, a minute later."""
        def settled():
            node = self.get(name)
            taints = [t["key"] for t in node["spec"].get("taints") or []]
            return node["spec"].get("podCIDR") and "node.kubernetes.io/not-ready" not in taints

        wait_for(settled, what=f"node {name} to settle")

    def get(self, name):
        """The Node as the API server has it now (a dict), or None."""
        return self.plane.get(f"/api/v1/nodes/{name}", check=False)

    def labels(self, name):
        return self.get(name)["metadata"].get("labels") or {}

    def delete_all(self):
        for name in self.names:
            try:
                self.core.delete_node(name)
            except ApiException as err:
                if err.status != 404:
                    raise
        self.names.clear()


@pytest.fixture
def own_nodes(control_plane):
    """Create Nodes of the test's own on the session's control plane; deleted afterwards."""
    nodes = Nodes(control_plane)
    yield nodes
    nodes.delete_all()


def cluster_node_names(plane):
    """Every Node name the API server has, sorted."""
    return sorted(n["metadata"]["name"] for n in plane.get("/api/v1/nodes")["items"])


def writes(proxy):
    """The requests the fault proxy forwarded that could change something (not GET)."""
    return [r for r in proxy.requests() if r.method != "GET"]


def query(seen):
    """A recorded request's query string as {name: value}."""
    from urllib.parse import parse_qsl

    return dict(parse_qsl(seen.query))

"""A component's own Secret from secrets/ (secrets.bundled), on the session's real control plane.

The scratch repository of the secrets tests gets one component, `sync`, shaped like
data-sync: its namespace, a Deployment that mounts the Secret `sync-keys`, and
`requiresSecret: sync-keys` in its component.yaml. Installs run in-process through
the fault proxy, whose request log shows the order of the writes.
"""

import os
import uuid

from ..conftest import in_process
from ..gpg import gnupghome, gpg_session_key  # noqa: F401
from .test_secrets import cluster, keyed, kubectl, repo  # noqa: F401

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: sync
spec:
  selector: {matchLabels: {app: sync}}
  template:
    metadata: {labels: {app: sync}}
    spec:
      containers:
      - name: sync
        image: registry.k8s.io/pause:3.10
        volumeMounts: [{name: keys, mountPath: /keys}]
      volumes: [{name: keys, secret: {secretName: sync-keys}}]
"""


def component(repo, namespace):
    repo.write("manifests/sync/component.yaml", f"""\
        namespace: {namespace}
        requiresSecret: sync-keys
        """)
    repo.write("manifests/sync/10-namespace.yaml", f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n")
    repo.write("manifests/sync/20-deployment.yaml", DEPLOYMENT)


def install(repo, *args):
    return in_process(["install", "--timeout", "60", *args], repo.capfd)


def test_install_applies_the_components_secret_after_its_namespace_and_before_its_workloads(keyed, cluster):
    repo, namespace = keyed, f"sync-{uuid.uuid4().hex[:8]}"
    component(repo, namespace)
    left_out = install(repo)
    assert left_out.code == 0, left_out.out + left_out.err
    assert f"sync: skipped until Secret {namespace}/sync-keys exists" in left_out.out
    assert kubectl(cluster.plane, "get", "namespaces", "-o", "name").count(namespace) == 0

    made = repo.run("create", "sync-keys", "--namespace", namespace, "--from-literal", "key=component-marker-41c7")
    assert made.code == 0, made.err
    try:
        first = install(repo)
        assert first.code == 0, first.out + first.err
        assert "component-marker-41c7" not in first.out + first.err
        assert first.out.splitlines() == [f"namespace/{namespace} created", "secret/sync-keys created",
                                          "deployment.apps/sync created", "  sync: ready", "3 created"]
        paths = [r.path for r in cluster.writes() if r.method == "PATCH"
                 and r.path.endswith((f"/namespaces/{namespace}", "/secrets/sync-keys", "/deployments/sync"))]
        assert [p.rsplit("/", 2)[-2] for p in paths] == ["namespaces", "secrets", "deployments"], paths

        secret = cluster.plane.get(f"/api/v1/namespaces/{namespace}/secrets/sync-keys")
        labels = secret["metadata"]["labels"]
        # as `secrets apply` labels it, and in no ApplySet: no prune of the component touches it
        assert labels["k8s-toolkit/component"] == "secrets"
        assert "applyset.kubernetes.io/part-of" not in labels
        deployment = cluster.plane.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/sync")
        assert deployment["metadata"]["labels"]["k8s-toolkit/component"] == "sync"

        again = install(repo)
        assert again.code == 0 and again.out.splitlines()[-1] == "3 unchanged", again.out
        assert repo.run("apply", "sync-keys").out.splitlines()[-1] == "1 unchanged"  # the two agree

        # A machine without the file (or its key): the Secret stays, pruned or not.
        os.remove(repo.path("secrets/sync-keys.yml"))
        pruned = in_process(["apply", "sync", "--prune"], repo.capfd)
        assert pruned.code == 0, pruned.out + pruned.err
        assert "pruned" not in pruned.out, pruned.out
        assert cluster.plane.get(f"/api/v1/namespaces/{namespace}/secrets/sync-keys", check=False) is not None
    finally:
        kubectl(cluster.plane, "delete", "namespace", namespace, "--wait=false", "--ignore-not-found")


def test_a_file_holding_another_secret_is_refused_before_anything_is_written(keyed, cluster):
    repo, namespace = keyed, f"sync-{uuid.uuid4().hex[:8]}"
    component(repo, namespace)
    assert repo.run("create", "sync-keys", "--namespace", "elsewhere", "--from-literal", "key=v4lue-x").code == 0
    before = len(cluster.writes())
    refused = install(repo)
    assert refused.code != 0
    assert refused.err.strip().splitlines() == [
        f"error: secrets/sync-keys.yml: component sync takes its Secret {namespace}/sync-keys from this file, "
        "which holds Secret elsewhere/sync-keys"], refused.err
    assert len(cluster.writes()) == before
    assert "v4lue-x" not in refused.out + refused.err


def test_secrets_apply_before_the_namespace_names_the_component_that_brings_it(keyed, cluster):
    repo, namespace = keyed, f"sync-{uuid.uuid4().hex[:8]}"
    component(repo, namespace)
    assert repo.run("create", "sync-keys", "--namespace", namespace, "--from-literal", "key=v4lue-y").code == 0
    early = repo.run("apply", "sync-keys")
    assert early.code == 1
    assert "it belongs to component sync: `make sync` applies it after its namespace" in early.out, early.out

"""Access: a kubeconfig for daily work, and the control-plane taint.

`make kubeconfig` writes a kubeconfig (mode 0600) with two contexts: `sudo`,
the admin credentials in namespace kube-system, and `user@CLUSTER`, the
namespace user's service account in the user namespace. The user's token comes
from the TokenRequest API with a bounded lifetime (service accounts get no
token Secret since Kubernetes 1.24), or from the long-lived
`kubernetes.io/service-account-token` Secret that the namespace component makes
when LONG_LIVED_USER_TOKEN=true.
"""

import base64
import json
import os
import tempfile

from .cluster import ApiError
from .errors import UserError

CONTROL_PLANE_TAINTS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")


def request_token(cluster, namespace, account, seconds):
    """A bound token for `account` from the TokenRequest API, valid `seconds`."""
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token"
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": int(seconds)}}
    response = cluster.call(lambda: cluster.dynamic.request("post", path, body=body, serialize=False),
                            obj=f"ServiceAccount/{account}")
    token = (json.loads(response.data).get("status") or {}).get("token")
    if not token:
        raise UserError(f"the TokenRequest for {namespace}/{account} returned no token")
    return token


def secret_token(cluster, namespace, secret):
    """The token the controller stored in a service-account-token Secret."""
    path = f"/api/v1/namespaces/{namespace}/secrets/{secret}"
    try:
        response = cluster.call(lambda: cluster.dynamic.request("get", path, serialize=False),
                                obj=f"Secret/{secret}")
    except ApiError as err:
        if err.status == 404:
            raise UserError(f"Secret {namespace}/{secret} not found: apply the namespace "
                            "component with LONG_LIVED_USER_TOKEN=true first") from None
        raise
    encoded = (json.loads(response.data).get("data") or {}).get("token")
    if not encoded:
        raise UserError(f"Secret {namespace}/{secret} has no token yet; try again in a moment")
    return base64.b64decode(encoded).decode()


def user_kubeconfig(admin_path, admin_context, cluster_name, namespace, token):
    """The new kubeconfig as a dict: `sudo` and `user@CLUSTER` contexts, user current.

    Parameters:
        admin_path: the admin kubeconfig to take the cluster and admin user from.
        admin_context: its context with admin rights.
        cluster_name: CLUSTER, used in the user context's name.
        namespace: the user namespace.
        token: the namespace user's token.
    """
    import yaml

    with open(admin_path, encoding="utf-8") as f:
        admin = yaml.safe_load(f) or {}
    by_name = {kind: {e.get("name"): e for e in admin.get(kind) or []}
               for kind in ("contexts", "clusters", "users")}
    context = by_name["contexts"].get(admin_context)
    if context is None:
        raise UserError(f"kubeconfig {admin_path}: no context {admin_context!r} (set ADMIN_CTX)")
    cluster_entry = by_name["clusters"].get(context["context"]["cluster"])
    admin_user = by_name["users"].get(context["context"]["user"])
    if cluster_entry is None or admin_user is None:
        raise UserError(f"kubeconfig {admin_path}: context {admin_context!r} names a missing "
                        "cluster or user")
    user_context = f"user@{cluster_name}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster_entry],
        "users": [admin_user, {"name": "user", "user": {"token": token}}],
        "contexts": [
            {"name": "sudo", "context": {"cluster": cluster_entry["name"], "user": admin_user["name"],
                                         "namespace": "kube-system"}},
            {"name": user_context, "context": {"cluster": cluster_entry["name"], "user": "user",
                                               "namespace": namespace}},
        ],
        "current-context": user_context,
        "preferences": {},
    }


def write_private(path, text):
    """Write `text` to `path` with mode 0600 from the first byte, replacing it atomically."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".kubeconfig-")  # mkstemp creates 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def untaint(cluster, node):
    """Remove the control-plane taints from `node`; returns the keys removed."""
    resource = cluster.resource("v1", "Node")
    try:
        current = json.loads(cluster.call(lambda: cluster.dynamic.get(
            resource, name=node, serialize=False), obj=f"Node/{node}").data)
    except ApiError as err:
        if err.status == 404:
            raise UserError(f"node {node} not found in the cluster") from None
        raise
    taints = (current.get("spec") or {}).get("taints") or []
    keep = [t for t in taints if t.get("key") not in CONTROL_PLANE_TAINTS]
    removed = [t["key"] for t in taints if t.get("key") in CONTROL_PLANE_TAINTS]
    if removed:
        # resourceVersion makes the merge patch fail rather than drop a taint added meanwhile.
        patch = {"metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
                 "spec": {"taints": keep or None}}
        cluster.call(lambda: cluster.dynamic.patch(
            resource, body=patch, name=node, content_type="application/merge-patch+json",
            serialize=False), obj=f"Node/{node}")
    return removed

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

from ..cluster.connection import ApiError
from ..errors import UserError

CONTROL_PLANE_TAINTS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
DEFAULT_TOKEN_HOURS = 720
MIN_TOKEN_SECONDS = 600  # the TokenRequest API refuses less than 10 minutes
MAX_TOKEN_HOURS = 24 * 366 * 10  # ten years: more is a typo, not a token lifetime


def token_seconds(hours):
    """USER_TOKEN_HOURS (a text; empty: the default) as the token's lifetime in whole seconds."""
    import math

    text = str(hours or "").strip()
    if not text:
        return DEFAULT_TOKEN_HOURS * 3600
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number * 3600 < MIN_TOKEN_SECONDS or number > MAX_TOKEN_HOURS:
        raise UserError(f"USER_TOKEN_HOURS must be a number of hours from {MIN_TOKEN_SECONDS / 3600:.2f} "
                        f"(10 minutes) to {MAX_TOKEN_HOURS}, got {hours!r}")
    return int(number * 3600)


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

    from ..core.files import read_text

    admin = yaml.safe_load(read_text(admin_path, "kubeconfig", f"kubeconfig {admin_path}")) or {}
    if not isinstance(admin, dict):
        raise UserError(f"kubeconfig {admin_path}: expected a mapping")
    by_name = {kind: {e.get("name"): e for e in admin.get(kind) or [] if isinstance(e, dict)}
               for kind in ("contexts", "clusters", "users")}
    context = by_name["contexts"].get(admin_context)
    if context is None:
        raise UserError(f"kubeconfig {admin_path}: no context {admin_context!r} (set ADMIN_CTX)")
    fields = context.get("context") if isinstance(context.get("context"), dict) else {}
    for field in ("cluster", "user"):
        if not isinstance(fields.get(field), str) or not fields[field]:
            raise UserError(f"kubeconfig {admin_path}: context {admin_context!r} has no {field}")
    cluster_entry = by_name["clusters"].get(fields["cluster"])
    admin_user = by_name["users"].get(fields["user"])
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
    """Write `text` to `path` with mode 0600 from the first byte, replacing it atomically.

    Any failure to write is a UserError naming `path`."""
    if os.path.isdir(path):
        raise UserError("is a directory: name the file to write", file=path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".kubeconfig-")  # mkstemp creates 0600
    except FileExistsError:  # a file where a folder of the path should be
        raise UserError(f"cannot write it: {folder} is not a directory", file=path) from None
    except OSError as err:
        raise UserError(f"cannot write it: {err.strerror or err}", file=path) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException as err:
        os.unlink(tmp)
        if isinstance(err, OSError):
            raise UserError(f"cannot write it: {err.strerror or err}", file=path) from None
        raise


UNTAINT_ATTEMPTS = 5  # read-modify-write rounds lost to concurrent node writes


def untaint(cluster, node, dry_run=False):
    """Remove the control-plane taints from `node` (`dry_run`: the server's dry run only);
    returns the keys removed."""
    from ..errors import UsageError
    from .labels import node_name_problem

    problem = node_name_problem(node)
    if problem:
        raise UsageError(f"NODE: {problem}")
    resource = cluster.resource("v1", "Node")
    for attempt in range(UNTAINT_ATTEMPTS):
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
        if not removed:
            return removed
        # resourceVersion makes the merge patch fail rather than drop a taint added meanwhile;
        # a kubelet's status update in between fails it too, so read again and retry.
        patch = {"metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
                 "spec": {"taints": keep or None}}
        try:
            extra = {"dry_run": "All"} if dry_run else {}
            cluster.call(lambda: cluster.dynamic.patch(
                resource, body=patch, name=node, content_type="application/merge-patch+json",
                serialize=False, **extra), obj=f"Node/{node}")
        except ApiError as err:
            if err.status == 409 and attempt + 1 < UNTAINT_ATTEMPTS:
                continue
            raise
        return removed

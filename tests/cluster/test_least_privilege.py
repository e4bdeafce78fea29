"""Least privilege of the namespace user, asked of a real control plane.

The repository's own `namespace` component is applied to the session's control plane
(in a namespace of this module's own), `render.py kubeconfig` writes the user context
with a token from the real TokenRequest API, and then the user's own credentials are
used: SelfSubjectAccessReview (`kubectl auth can-i`) for what the Role grants and
refuses, and real requests for the ways out of it (binding admin, a Role that grants
more, impersonation), which RBAC's escalation checks answer, not the Role alone.
"""

import json
import os
import subprocess
import sys
import tempfile

import pytest
import yaml

from ..conftest import ROOT

NAMESPACE = "least-priv"
OTHER = "least-priv-other"
USER = f"system:serviceaccount:{NAMESPACE}:{NAMESPACE}-user"


def render(control_plane, *args, **env):
    """render.py ARGS in the repository, against the session's control plane."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("K8S_", "VARS_FILE"))}
    full.update(KUBECONFIG=control_plane.kubeconfig, K8S_NAMESPACE=NAMESPACE, **env)
    result = subprocess.run([sys.executable, "render.py", *args], cwd=ROOT, env=full,
                            capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def user(control_plane, tmp_path_factory):
    """kubectl as the namespace user, through the kubeconfig `make kubeconfig` writes."""
    render(control_plane, "apply", "namespace")
    render(control_plane, "apply", "network-policy")
    admin = ["kubectl", "--kubeconfig", control_plane.kubeconfig]
    subprocess.run([*admin, "create", "namespace", OTHER], capture_output=True)
    subprocess.run([*admin, "-n", OTHER, "create", "secret", "generic", "elsewhere", "--from-literal=k=v"],
                   capture_output=True)
    subprocess.run([*admin, "-n", NAMESPACE, "create", "secret", "generic", "mine", "--from-literal=k=v"],
                   capture_output=True)
    subprocess.run([*admin, "-n", NAMESPACE, "create", "quota", "admin-quota", "--hard=pods=50"], capture_output=True)
    out = tmp_path_factory.mktemp("least-priv") / "user.conf"
    render(control_plane, "kubeconfig", KUBECONFIG_OUT=str(out))
    config = yaml.safe_load(out.read_text())
    assert config["current-context"] == "user@kubernetes"

    def kubectl(*args):
        return subprocess.run(["kubectl", "--kubeconfig", str(out), "--context", "user@kubernetes", *args],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return kubectl


def can(user, verb, resource, namespace=NAMESPACE):
    """The user's own SelfSubjectAccessReview of VERB on RESOURCE[/SUB][.GROUP]: the group is
    sent as written, also for an API (metrics.k8s.io) this cluster does not serve."""
    resource, _, group = resource.partition(".")
    resource, _, subresource = resource.partition("/")
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": {"namespace": namespace, "verb": verb, "group": group,
                                              "resource": resource, "subresource": subresource}}}
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(review, f)
        f.flush()
        result = user("create", "--validate=false", "-f", f.name, "-o", "jsonpath={.status.allowed}")
    assert result.stdout in ("true", "false"), result.stderr
    return result.stdout == "true"


def test_the_context_is_the_namespace_user(user):
    whoami = user("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert whoami.stdout == USER, whoami.stderr


@pytest.mark.parametrize("verb,resource", [
    ("create", "deployments.apps"), ("delete", "pods"), ("create", "pods/exec"), ("create", "pods/attach"),
    ("create", "pods/portforward"), ("get", "pods/log"), ("list", "controllerrevisions.apps"),
    ("list", "pods.metrics.k8s.io"), ("create", "secrets"), ("delete", "secrets"), ("create", "ingresses.networking.k8s.io"), ("create", "jobs.batch"),
    ("create", "serviceaccounts"), ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("list", "networkpolicies.networking.k8s.io"), ("get", "limitranges"), ("list", "endpointslices.discovery.k8s.io"),
])
def test_the_role_grants_what_a_namespace_user_needs(user, verb, resource):
    assert can(user, verb, resource)


@pytest.mark.parametrize("verb,resource", [
    ("get", "secrets"), ("list", "secrets"), ("watch", "secrets"), ("update", "secrets"),
    ("bind", "roles"), ("escalate", "roles"), ("bind", "clusterroles"), ("impersonate", "serviceaccounts"),
    ("create", "serviceaccounts/token"),
    ("create", "endpoints"), ("update", "endpoints"), ("create", "endpointslices.discovery.k8s.io"),
    ("update", "limitranges"), ("delete", "limitranges"), ("update", "resourcequotas"),
    ("create", "networkpolicies.networking.k8s.io"), ("delete", "networkpolicies.networking.k8s.io"),
    ("patch", "networkpolicies.networking.k8s.io"),
    ("create", "namespaces"),
])
def test_the_role_refuses_what_would_reach_past_the_namespace_user(user, verb, resource):
    assert not can(user, verb, resource)


def test_no_secret_of_another_namespace(user):
    assert not can(user, "get", "secrets", OTHER)
    got = user("-n", OTHER, "get", "secret", "elsewhere")
    assert got.returncode != 0 and "Forbidden" in got.stderr


def test_a_secret_value_is_not_readable_in_the_own_namespace(user):
    for args in (("get", "secret", "mine", "-o", "yaml"), ("get", "secrets", "-o", "yaml")):
        got = user("-n", NAMESPACE, *args)
        assert got.returncode != 0 and "Forbidden" in got.stderr, got.stdout


@pytest.mark.parametrize("role", ["admin", "cluster-admin", "edit"])
def test_binding_a_broader_cluster_role_is_refused(user, role):
    made = user("-n", NAMESPACE, "create", "rolebinding", f"grab-{role}", f"--clusterrole={role}",
                f"--serviceaccount={NAMESPACE}:{NAMESPACE}-user")
    assert made.returncode != 0, made.stdout
    assert "attempting to grant RBAC permissions not currently held" in made.stderr, made.stderr


def test_a_role_granting_more_than_the_user_holds_is_refused(user):
    made = user("-n", NAMESPACE, "create", "role", "read-secrets", "--verb=get", "--resource=secrets")
    assert "attempting to grant RBAC permissions not currently held" in made.stderr, made.stdout + made.stderr


def test_a_role_within_the_users_own_rights_can_be_made_and_bound(user):
    """The refusals above come from RBAC's escalation check, not from a blanket ban."""
    made = user("-n", NAMESPACE, "create", "role", "pod-reader", "--verb=get,list", "--resource=pods")
    assert made.returncode == 0, made.stderr
    bound = user("-n", NAMESPACE, "create", "rolebinding", "pod-reader", "--role=pod-reader",
                 f"--serviceaccount={NAMESPACE}:{NAMESPACE}-privileged")
    assert bound.returncode == 0, bound.stderr


def test_impersonating_the_privileged_account_is_refused(user):
    got = user("-n", NAMESPACE, "get", "pods", f"--as=system:serviceaccount:{NAMESPACE}:{NAMESPACE}-privileged")
    assert got.returncode != 0 and "cannot impersonate" in got.stderr, got.stderr


def test_the_admins_limits_stay_as_the_admin_set_them(user):
    for args in (("delete", "limitrange", "default-limits"), ("delete", "resourcequota", "admin-quota"),
                 ("delete", "networkpolicy", "--all"),
                 ("patch", "limitrange", "default-limits", "--type=json",
                  "-p", '[{"op":"remove","path":"/spec/limits"}]')):
        got = user("-n", NAMESPACE, *args)
        assert "Forbidden" in got.stderr or got.returncode != 0, (args, got.stdout)
    assert user("-n", NAMESPACE, "get", "limitrange", "default-limits").returncode == 0


RESTRICTED_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: web
        image: registry.k8s.io/pause:3.10
        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
"""


def test_workloads_run_for_the_user(user, tmp_path):
    """A workload that meets the namespace's Pod Security level rolls out under the user's own rights."""
    (tmp_path / "web.yaml").write_text(RESTRICTED_DEPLOYMENT)
    made = user("-n", NAMESPACE, "apply", "--validate=false", "-f", str(tmp_path / "web.yaml"))
    assert made.returncode == 0, made.stderr
    rolled = user("-n", NAMESPACE, "rollout", "status", "deployment/web", "--timeout=60s")
    assert rolled.returncode == 0, rolled.stderr

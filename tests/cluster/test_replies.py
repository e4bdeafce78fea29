"""What the toolkit makes of what it is handed: malformed server replies and broken kubeconfigs.

Each reply case runs `render.py apply` of a small component (a Namespace and a ConfigMap)
against the session's real control plane through the fault proxy, which replaces the body
of chosen answers: HTML or nothing on a 200, the real answer cut short, a list where an
object belongs, an object without the fields the toolkit reads, garbage discovery and
/version, a garbage TokenRequest. Each must give exactly one line naming the server and
the request, exit 1, no traceback, and, when it came before the first write, no write.
The kubeconfig cases use real files: missing, naming a cluster or user they lack, and an
exec credential plugin that fails (and, as the control, one that works).
"""

import hashlib
import json
import os
import re
import stat
import subprocess

import pytest

from ..controlplane.harness import kubeconfig_text

WRITES = ("POST", "PUT", "PATCH", "DELETE")
HTML = "<html><body><h1>502 Bad Gateway</h1>" + "<!-- padding -->" * 28 + "</body></html>\n"


def names(test_name, prefix="replies"):
    tag = hashlib.sha256(test_name.encode()).hexdigest()[:6]
    return f"{prefix}-{tag}", f"app-{tag}"


@pytest.fixture
def small(project, control_plane, fault_proxy, request, tmp_path):
    """A component `app-<tag>` (Namespace and ConfigMap) in `project`, through the proxy."""
    yield from small_project(project, control_plane, fault_proxy, request.node.name, tmp_path)


def small_project(project, control_plane, fault_proxy, test_name, tmp_path, prefix="replies"):
    """`small`'s body, for other modules' fixtures: the project, then the namespace deleted."""
    namespace, component = names(test_name, prefix)
    project.write("Makefile.vars", f"export K8S_NAMESPACE ?= {namespace}\n"
                                   "export ADMIN_CTX ?= kubernetes-admin@kubernetes\n")
    project.write(f"manifests/{component}/component.yaml", f"namespace: {namespace}\n")
    project.write(f"manifests/{component}/10-namespace.yaml",
                  f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n")
    project.write(f"manifests/{component}/20-config.yaml",
                  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: '1'\n")
    project.kubeconfig = fault_proxy.kubeconfig(tmp_path / "kubeconfig")
    project.namespace, project.component = namespace, component
    yield project
    subprocess.run(["kubectl", "--kubeconfig", control_plane.kubeconfig, "delete", "namespace", namespace,
                    "--ignore-not-found", "--wait=false"], capture_output=True, timeout=60)


def apply(project, *extra, env=None):
    return project.run("apply", project.component, *extra,
                       env={"KUBECONFIG": project.kubeconfig, **(env or {})})


def real_writes(proxy):
    return [(r.method, r.path) for r in proxy.requests() if r.method in WRITES and "dryRun" not in r.query]


def without(*path):
    """A rewrite: the JSON answer without the field at `path` (keys; "*" for every list item)."""
    def rewrite(body):
        data = json.loads(body)

        def drop(node, keys):
            if keys[0] == "*":
                for item in node:
                    drop(item, keys[1:])
            elif len(keys) == 1:
                node.pop(keys[0], None)
            else:
                drop(node[keys[0]], keys[1:])

        drop(data, list(path))
        return json.dumps(data)
    return rewrite


def with_status(value):
    """A rewrite: the JSON answer with `status` replaced by `value`."""
    return lambda body: json.dumps({**json.loads(body), "status": value})


class Halved:
    """A rewrite: the real answer cut in the middle; remembers the length it left."""

    size = None

    def __call__(self, body):
        self.size = len(body) // 2
        return body[:self.size]


# name -> (the proxy's fault, the line expected (stream, text), whether it comes before any write);
# every malformed answer ends the run with one error line, also inside a component's work
# (k8s.cluster.install.FATAL); "either": the first read of aggregated discovery comes before the
# components start (the run's error line) or in the first one (then that component's failure);
# {url}, {ns} and {app} stand for the proxy, the test's namespace and component, {size} for
# the length of a halved answer.
CASES = {
    "html on /apis": (
        dict(method="GET", path=r"^/apis$", status=200, body=HTML, content_type="text/html"),
        ("stderr", f"error: {{url}} GET /apis: the reply is not JSON (text/html, {len(HTML)} bytes)"), True),
    "empty 200 on /version": (
        dict(method="GET", path=r"^/version$", status=200, body=b""),
        ("stderr", "error: {url} GET /version: the reply is empty (application/json, 0 bytes)"), True),
    "garbage /version": (
        dict(method="GET", path=r"^/version$", status=200, body='{"major": 1, "minor": "37"}'),
        ("stderr", "error: {url} GET /version: the reply's major is a number, not a string"), True),
    "aggregated discovery cut short": (
        dict(method="GET", path=r"^/api$", status=200, rewrite=Halved(), content_type=None),
        ("either", "{url} GET /api: the reply is not valid JSON: cut short (application/json, {size} bytes)"),
        True),
    "garbage aggregated discovery": (
        dict(method="GET", path=r"^/apis$", status=200,
             body='{"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2",'
                  '"items":[{"metadata":{"name":"apps"},"versions":"v1"}]}'),
        ("stderr", "error: {url} GET /apis: the reply's items[0].versions is a string, not a list"), True),
    "discovery of the wrong kind": (
        dict(method="GET", path=r"^/apis$", status=200, body='{"kind":"ConfigMap","apiVersion":"v1"}'),
        ("stderr", "error: {url} GET /apis: the reply is a ConfigMap, not an APIGroupList or an "
                   "APIGroupDiscoveryList"), True),
    "a list where an object belongs": (
        dict(method="GET", path=r"^/apis/apps/v1/deployments$", status=200, body="[]"),
        ("stderr", "error: {url} GET /apis/apps/v1/deployments: the reply is a list, not a JSON object "
                   "(application/json, 2 bytes)"), True),
    "list items without metadata": (
        dict(method="GET", path=r"^/api/v1/namespaces/kube-system/configmaps$", status=200,
             rewrite=without("items", "*", "metadata"), content_type=None),
        ("stderr", "error: {url} GET /api/v1/namespaces/kube-system/configmaps: the reply has no "
                   "items[0].metadata"), True),
    "list without items": (
        dict(method="GET", path=r"^/api/v1/namespaces/kube-system/configmaps$", status=200,
             rewrite=without("items"), content_type=None),
        ("stderr", "error: {url} GET /api/v1/namespaces/kube-system/configmaps: the reply has no "
                   "items"), True),
    "apply answer without metadata": (
        dict(method="PATCH", path=r"/configmaps/settings$", status=200, rewrite=without("metadata"),
             content_type=None),
        ("stderr", "error: {url} PATCH /api/v1/namespaces/{ns}/configmaps/settings: "
                   "the reply has no metadata"), False),
    "a status of another shape": (
        dict(method="PATCH", path=r"^/api/v1/namespaces/replies-[0-9a-f]+$", status=200,
             rewrite=with_status("Active"), content_type=None),
        ("stderr", "error: namespace/{ns}: the answer to its apply: the reply's status is not what a "
                   "Namespace has (AttributeError: 'str' object has no attribute 'get')"), False),
    "apply answer without managedFields": (
        dict(method="PATCH", path=r"/configmaps/settings$", status=200,
             rewrite=without("metadata", "managedFields"), content_type=None),
        ("stderr", "error: {url} PATCH /api/v1/namespaces/{ns}/configmaps/settings: "
                   "the reply has no metadata.managedFields"), False),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_malformed_reply_is_one_line_naming_the_request(name, small, fault_proxy):
    fault, (stream, expected), before_write = CASES[name]
    fault_proxy.fail(**fault)
    result = apply(small)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode == 1, (result.stdout, result.stderr)
    size = getattr(fault.get("rewrite"), "size", None)
    expected = expected.format(url=fault_proxy.url, ns=small.namespace, app=small.component, size=size)
    if stream == "either":
        assert (result.stderr.splitlines() == [f"error: {expected}"]
                or f"  {small.component}: failed ({expected})" in result.stdout.splitlines()), result
    else:
        assert result.stderr.splitlines() == [expected]
    if before_write:
        assert real_writes(fault_proxy) == []


def test_a_garbage_token_request_is_one_line(small, fault_proxy, control_plane):
    """`render.py kubeconfig` reads the token of a TokenRequest; the control run shows the
    same command works through the same proxy."""
    account = f"{small.namespace}-user"
    for args in (["create", "namespace", small.namespace], ["create", "serviceaccount", account, "-n",
                                                             small.namespace]):
        subprocess.run(["kubectl", "--kubeconfig", control_plane.kubeconfig, *args], check=True,
                       capture_output=True, timeout=60)
    out = os.path.join(small.root, "user.conf")
    env = {"KUBECONFIG": small.kubeconfig}
    good = small.run("kubeconfig", "--out", out, env=env)
    assert good.returncode == 0, good.stderr

    fault_proxy.fail(method="POST", path=r"/token$", status=201,
                     body='{"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","status":"issued"}')
    result = small.run("kubeconfig", "--out", out, env=env)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: {fault_proxy.url} POST /api/v1/namespaces/{small.namespace}/serviceaccounts/{account}/token: "
        "the reply's status is a string, not an object"]


# --- kubeconfig -------------------------------------------------------------------------------


def admin_kubeconfig(plane, **changes):
    """The admin kubeconfig of the real control plane as a dict, with `changes` to its context."""
    import yaml

    with open(os.path.join(plane.pki, "ca.crt"), "rb") as f:
        ca = f.read()
    with open(os.path.join(plane.pki, "admin.crt"), "rb") as f:
        cert = f.read()
    with open(os.path.join(plane.pki, "admin.key"), "rb") as f:
        key = f.read()
    data = yaml.safe_load(kubeconfig_text(plane.url, ca, "kubernetes-admin", cert, key))
    data["contexts"][0]["context"].update(changes)
    return data, cert, key


def write_yaml(path, data):
    import yaml

    with open(path, "w") as f:
        yaml.safe_dump(data, f)
    os.chmod(path, 0o600)
    return str(path)


def test_a_missing_kubeconfig_names_its_path(small, tmp_path):
    path = tmp_path / "nowhere" / "config"
    result = apply(small, env={"KUBECONFIG": str(path)})
    assert (result.returncode, result.stderr.splitlines()) == (1, [f"error: kubeconfig {path}: no such file"])


@pytest.mark.parametrize("field", ["cluster", "user"])
def test_a_context_whose_cluster_or_user_is_missing_says_which(field, small, control_plane, tmp_path):
    data, _, _ = admin_kubeconfig(control_plane, **{field: "gone"})
    path = write_yaml(tmp_path / "kubeconfig", data)
    result = apply(small, env={"KUBECONFIG": path})
    present = {"cluster": "kubernetes", "user": "kubernetes-admin"}[field]
    assert "Traceback" not in result.stderr
    assert (result.returncode, result.stderr.splitlines()) == (1, [
        f"error: kubeconfig {path}: context 'kubernetes-admin@kubernetes' names {field} 'gone', "
        f"which is not among its {field}s ({present})"])


def exec_user(data, script, tmp_path):
    plugin = tmp_path / "plugin.sh"
    plugin.write_text(script)
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)
    data["users"][0]["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                         "command": str(plugin), "interactiveMode": "Never"}}
    return str(plugin)


def test_a_failing_exec_plugin_shows_its_own_error(small, control_plane, tmp_path):
    data, _, _ = admin_kubeconfig(control_plane)
    plugin = exec_user(data, "#!/bin/sh\necho 'looking up the cache' >&2\n"
                             "echo 'token expired: run corp-login first' >&2\nexit 3\n", tmp_path)
    path = write_yaml(tmp_path / "kubeconfig", data)
    result = apply(small, env={"KUBECONFIG": path})
    assert "Traceback" not in result.stderr
    assert (result.returncode, result.stderr.splitlines()) == (1, [
        f"error: kubeconfig {path}: the credential plugin of user 'kubernetes-admin' ({plugin}) failed: "
        "exit code 3: token expired: run corp-login first"])


def test_a_working_exec_plugin_authenticates(small, control_plane, tmp_path):
    """The control: the same kubeconfig with a plugin that answers the admin's certificate."""
    data, cert, key = admin_kubeconfig(control_plane)
    credential = json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                             "status": {"clientCertificateData": cert.decode(), "clientKeyData": key.decode()}})
    exec_user(data, f"#!/bin/sh\ncat <<'EOF'\n{credential}\nEOF\n", tmp_path)
    path = write_yaml(tmp_path / "kubeconfig", data)
    result = apply(small, env={"KUBECONFIG": path})
    assert result.returncode == 0, result.stderr
    assert re.search(r"^2 created$", result.stdout, re.M), result.stdout

"""The API audit policy: rule order (first match wins), no body of a credential ever logged,
the kubeadm fragment from the variables, `audit install` against a real sshd, and the policy
in the real kube-apiserver of the session's control plane (its audit log is what
level_for must agree with).

Commands run in-process through `k8s.cli.main` (render.py's main, with the audit commands
registered) in a scratch project; output captured at the file-descriptor level.
"""

import os
import shlex
import stat

import pytest
import yaml

from k8s.nodes import audit

from ..conftest import in_process, needs_root
from ..realcluster import wait_for
from ..sshd import sshd, sshd_factory  # noqa: F401

NODE = "cp1.example.com"
ENV_OUT = ("VARS_FILE", "KUBE_VERSION", "AUDIT_POLICY_PATH", "AUDIT_LOG_PATH", "AUDIT_LOG_MAXAGE",
           "AUDIT_LOG_MAXBACKUP", "AUDIT_LOG_MAXSIZE", "SSH_CONFIG", "SSH_OPTIONS", "REMOTE_SUDO")
SENSITIVE = [("", "secrets", ""), ("", "configmaps", ""), ("", "serviceaccounts", "token"),
             ("authentication.k8s.io", "tokenreviews", "")]
VERBS = audit.READ_VERBS + audit.WRITE_VERBS
USERS = [  # (user, groups): people, service accounts and every system user the None rules name
    ("kubernetes-admin", ["kubeadm:cluster-admins", "system:authenticated"]),
    ("system:serviceaccount:demo:app", ["system:serviceaccounts", "system:authenticated"]),
    ("system:kube-proxy", ["system:authenticated"]),
    ("system:node:kube1", ["system:nodes", "system:authenticated"]),
    ("system:kube-scheduler", ["system:authenticated"]),
    ("system:kube-controller-manager", ["system:authenticated"]),
    ("system:apiserver", ["system:masters"]),
    ("system:anonymous", ["system:unauthenticated"]),
]
NAMESPACES = ["kube-system", "kube-node-lease", "default", "demo", ""]


@pytest.fixture
def run(tmp_path, capfd, monkeypatch):
    (tmp_path / "Makefile.vars").write_text("export KUBE_VERSION ?= 1.31\n")
    for name in ENV_OUT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)

    def run(*argv):
        return in_process(argv, capfd)

    return run


def sensitive(rule):
    """Whether a rule names one of the credential-bearing resources explicitly."""
    return any(g.get("group", "") == group and (f"{res}/{sub}" if sub else res) in (g.get("resources") or ())
               for g in rule.get("resources") or () for group, res, sub in SENSITIVE)


# --- the policy -----------------------------------------------------------------------------------

def test_policy_is_a_valid_audit_v1_policy():
    text = audit.policy_text()
    doc = yaml.safe_load(text)
    assert doc == audit.policy()
    assert (doc["apiVersion"], doc["kind"]) == ("audit.k8s.io/v1", "Policy")
    assert doc["omitStages"] == ["RequestReceived"] and doc["omitManagedFields"] is True
    assert audit.check(doc) == []
    assert all(rule["level"] in audit.LEVELS for rule in doc["rules"])
    assert doc["rules"][-1] == {"level": "Metadata"}  # the catch-all comes last
    assert text.startswith("# kube-apiserver audit policy")
    # the checker finds what kube-apiserver would refuse
    broken = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["Later"],
              "rules": [{"level": "Everything"}, {"level": "None", "verb": ["get"]},
                        {"level": "None", "nonResourceURLs": ["/a*b"], "resources": [{"group": ""}]}]}
    assert audit.check(broken) == [
        "omitStages: unknown stage 'Later'",
        "rules[0]: level 'Everything' is not one of None, Metadata, Request, RequestResponse",
        "rules[1]: unknown field 'verb'",
        "rules[2]: rules cannot apply to both resources and non-resource URLs",
        "rules[2]: nonResourceURLs '/a*b': an absolute path, `*` only at its end"]
    assert audit.check({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": []}) == [
        "rules: a policy needs at least one rule"]


def test_credential_rules_are_metadata_and_precede_every_body_rule():
    rules = audit.policy()["rules"]
    credential = [i for i, rule in enumerate(rules) if sensitive(rule)]
    assert len(credential) == 1, "one rule names Secrets, ConfigMaps, TokenReviews and TokenRequests"
    first = credential[0]
    assert rules[first]["level"] == "Metadata" and "verbs" not in rules[first]  # every verb
    named = {(g["group"], r) for g in rules[first]["resources"] for r in g["resources"]}
    assert named == {("", "secrets"), ("", "configmaps"), ("", "serviceaccounts/token"),
                     ("authentication.k8s.io", "tokenreviews")}
    for i, rule in enumerate(rules):
        if rule["level"] in audit.BODY_LEVELS:
            # either it comes after the Metadata rule (first match wins) or it names its
            # resources explicitly and none of them is a credential
            assert i > first or (rule.get("resources") and not sensitive(rule)
                                 and all(g.get("resources") for g in rule["resources"])), rule
        if i < first:  # nothing earlier may hide credential access from the log either
            assert rule["level"] == "None" and not sensitive(rule)


@pytest.mark.parametrize("group,resource,subresource", SENSITIVE)
def test_no_request_can_log_a_credential_body(group, resource, subresource):
    doc = audit.policy()
    for verb in VERBS:
        for user, groups in USERS:
            for namespace in NAMESPACES:
                level = audit.level_for(doc, verb, user, groups, group=group, resource=resource,
                                        subresource=subresource, namespace=namespace, name="x")
                assert level == "Metadata", (verb, user, namespace, level)


@pytest.mark.parametrize("request_,level", [
    (dict(verb="get", path="/healthz"), "None"),
    (dict(verb="get", path="/readyz/etcd"), "None"),
    (dict(verb="get", path="/livez"), "None"),
    (dict(verb="get", path="/version"), "None"),
    (dict(verb="get", path="/metrics"), "Metadata"),
    (dict(verb="post", path="/api"), "Metadata"),
    (dict(verb="watch", user="system:kube-proxy", resource="endpoints", namespace="demo"), "None"),
    (dict(verb="watch", user="system:kube-proxy", group="discovery.k8s.io", resource="endpointslices"), "None"),
    (dict(verb="list", user="system:kube-proxy", resource="services"), "Metadata"),
    (dict(verb="get", user="system:node:kube1", groups=["system:nodes"], resource="nodes"), "None"),
    (dict(verb="patch", user="system:node:kube1", groups=["system:nodes"], resource="nodes",
          subresource="status"), "RequestResponse"),
    (dict(verb="update", user="system:node:kube1", groups=["system:nodes"], group="coordination.k8s.io",
          resource="leases", namespace="kube-node-lease"), "None"),
    (dict(verb="update", user="system:kube-scheduler", group="coordination.k8s.io", resource="leases",
          namespace="kube-system"), "None"),
    (dict(verb="update", user="kubernetes-admin", group="coordination.k8s.io", resource="leases",
          namespace="kube-system"), "RequestResponse"),
    (dict(verb="create", user="system:node:kube1", groups=["system:nodes"], resource="events",
          namespace="demo"), "None"),
    (dict(verb="get", resource="pods", namespace="demo"), "Metadata"),
    (dict(verb="list", group="apps", resource="deployments"), "Metadata"),
    (dict(verb="create", group="apps", resource="deployments", namespace="demo"), "RequestResponse"),
    (dict(verb="delete", resource="namespaces"), "RequestResponse"),
    (dict(verb="patch", group="rbac.authorization.k8s.io", resource="clusterrolebindings"), "RequestResponse"),
    (dict(verb="create", resource="pods", subresource="exec", namespace="demo"), "Metadata"),
    (dict(verb="get", resource="services", subresource="proxy", namespace="demo"), "Metadata"),
    (dict(verb="proxy", resource="nodes"), "Metadata"),
])
def test_levels_of_typical_requests(request_, level):
    assert audit.level_for(audit.policy(), **request_) == level


def test_level_for_follows_the_apiserver_matching_rules():
    doc = {"rules": [
        {"level": "None", "resources": [{"group": "", "resources": ["configmaps"],
                                         "resourceNames": ["leader"]}]},
        {"level": "Request", "resources": [{"group": "apps", "resources": ["*/scale"]}]},
        {"level": "RequestResponse", "resources": [{"group": "", "resources": ["pods/*"]}]},
        {"level": "Metadata", "namespaces": [""]},
        {"level": "Request", "resources": [{"group": ""}]},
    ]}
    assert audit.level_for(doc, "get", resource="configmaps", name="leader", namespace="a") == "None"
    assert audit.level_for(doc, "get", resource="configmaps", name="other", namespace="a") == "Request"
    assert audit.level_for(doc, "update", group="apps", resource="deployments", subresource="scale") == "Request"
    assert audit.level_for(doc, "update", group="apps", resource="deployments", namespace="a") == "None"
    assert audit.level_for(doc, "get", resource="pods", subresource="log", namespace="a") == "RequestResponse"
    assert audit.level_for(doc, "get", group="rbac.authorization.k8s.io", resource="clusterroles") == "Metadata"
    assert audit.level_for(doc, "get", path="/metrics") == "None"  # no rule: the default level


# --- the fragment ------------------------------------------------------------------------------------

def test_audit_policy_writes_the_policy_and_the_fragment_from_the_variables(run, monkeypatch, tmp_path):
    monkeypatch.setenv("AUDIT_LOG_MAXAGE", "7")
    monkeypatch.setenv("AUDIT_LOG_MAXBACKUP", "3")
    monkeypatch.setenv("AUDIT_LOG_MAXSIZE", "50")
    monkeypatch.setenv("AUDIT_LOG_PATH", "/var/log/apiserver/audit.log")
    result = run("audit-policy", "--out", "build")
    assert result.code == 0, result.err
    assert result.out.startswith("wrote build/kubeadm/cluster-configuration.yaml, build/kubeadm/audit-policy.yaml, "
                                 "build/kubeadm/admission-config.yaml, build/kubeadm/NOTES.txt (Kubernetes 1.31)")
    assert sorted(os.listdir(tmp_path / "build")) == [".written", "kubeadm"]
    assert sorted(os.listdir(tmp_path / "build" / "kubeadm")) == [
        "NOTES.txt", "admission-config.yaml", "audit-policy.yaml", "cluster-configuration.yaml"]
    written = yaml.safe_load((tmp_path / "build" / "kubeadm" / "audit-policy.yaml").read_text())
    assert written["apiVersion"] == "audit.k8s.io/v1" and audit.check(written) == []
    patch = yaml.safe_load((tmp_path / "build" / "kubeadm" / "cluster-configuration.yaml").read_text())
    assert patch["apiVersion"] == "kubeadm.k8s.io/v1beta4" and patch["kind"] == "ClusterConfiguration"
    assert [a for a in patch["apiServer"]["extraArgs"] if a["name"].startswith("audit-")] == [
        {"name": "audit-policy-file", "value": "/etc/kubernetes/audit/policy.yaml"},
        {"name": "audit-log-path", "value": "/var/log/apiserver/audit.log"},
        {"name": "audit-log-maxage", "value": "7"},
        {"name": "audit-log-maxbackup", "value": "3"},
        {"name": "audit-log-maxsize", "value": "50"}]
    assert [v for v in patch["apiServer"]["extraVolumes"] if v["name"].startswith("audit-")] == [
        {"name": "audit-policy", "hostPath": "/etc/kubernetes/audit", "mountPath": "/etc/kubernetes/audit",
         "readOnly": True, "pathType": "DirectoryOrCreate"},
        {"name": "audit-log", "hostPath": "/var/log/apiserver", "mountPath": "/var/log/apiserver",
         "readOnly": False, "pathType": "DirectoryOrCreate"}]

    result = run("--kube-version", "1.30", "audit-policy", "--out", "build")
    assert result.code == 0, result.err
    patch = yaml.safe_load((tmp_path / "build" / "kubeadm" / "cluster-configuration.yaml").read_text())
    assert patch["apiVersion"] == "kubeadm.k8s.io/v1beta3"
    assert {k: v for k, v in patch["apiServer"]["extraArgs"].items() if k.startswith("audit-")} == {
        "audit-policy-file": "/etc/kubernetes/audit/policy.yaml", "audit-log-path": "/var/log/apiserver/audit.log",
        "audit-log-maxage": "7", "audit-log-maxbackup": "3", "audit-log-maxsize": "50"}

    assert audit.fragment({})["apiServer"]["extraArgs"][1:] == [
        {"name": "audit-log-path", "value": "/var/log/kubernetes/audit/audit.log"},
        {"name": "audit-log-maxage", "value": "30"}, {"name": "audit-log-maxbackup", "value": "10"},
        {"name": "audit-log-maxsize", "value": "100"}]  # the defaults

    monkeypatch.setenv("AUDIT_LOG_MAXSIZE", "100MB")
    monkeypatch.setenv("AUDIT_POLICY_PATH", "policy.yaml")
    result = run("audit-policy", "--out", "build")
    assert (result.code, result.err) == (1, "error: AUDIT_POLICY_PATH 'policy.yaml' must be an absolute file "
                                            "path without spaces; AUDIT_LOG_MAXSIZE '100MB' must be a whole "
                                            "number (0 or more)\n")


# --- install over ssh ------------------------------------------------------------------------------

@needs_root
def test_audit_install_copies_the_policy_root_only(run, monkeypatch, sshd, tmp_path):
    policy_path = tmp_path / "node" / "etc" / "audit" / "policy.yaml"
    log_dir = tmp_path / "node" / "var" / "log" / "audit"
    for name, value in sshd.variables().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REMOTE_SUDO", "")
    monkeypatch.setenv("AUDIT_POLICY_PATH", str(policy_path))
    monkeypatch.setenv("AUDIT_LOG_PATH", str(log_dir / "audit.log"))

    dry = run("audit", "install", NODE, "--dry-run")
    assert dry.code == 0, dry.err
    argv = shlex.split(dry.out)
    assert argv[:3] == ["ssh", "-F", sshd.config] and argv[-2:-1] == [NODE]
    assert f"mkdir -p -m 0700 -- {log_dir}" in argv[-1]
    assert "install -T -m 0600 -o root -g root -- /dev/stdin" in argv[-1]
    assert "nothing was copied" in dry.err
    assert sshd.accepted() == 0 and not (tmp_path / "node").exists()

    done = run("audit", "install", NODE)
    assert (done.code, done.err) == (0, "")
    assert done.out == f"{NODE}: {policy_path} (root, mode 0600), log folder {log_dir} (mode 0700 when new)\n"
    assert policy_path.read_text() == audit.policy_text()
    info = policy_path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and (info.st_uid, info.st_gid) == (0, 0)
    assert stat.S_IMODE(log_dir.stat().st_mode) == 0o700
    assert sshd.accepted(1) == 1


def test_audit_install_failures_are_one_line(run, monkeypatch, sshd_factory):
    server = sshd_factory()
    for name, value in server.variables().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REMOTE_SUDO", "false")
    result = run("audit", "install", NODE)
    assert (result.code, result.err) == (1, f"error: ssh {NODE}: remote command failed (exit status 1)\n")
    result = run("audit", "install")
    assert (result.code, result.err) == (2, "error: name the control-plane node: NODE=kube1.example.com make "
                                            "audit_install (render.py takes several)\n")
    result = run("audit", "install", "-oProxyCommand=x")
    assert result.code == 2  # argparse: not a host, an option
    result = run("audit", "install", "--", "-oProxyCommand=x")
    assert (result.code, result.err) == (1, "error: '-oProxyCommand=x' is not a host name to ssh to\n")


@pytest.mark.parametrize("name, value, message", [
    ("AUDIT_LOG_MAXAGE", "²", "must be a whole number"),
    ("AUDIT_POLICY_PATH", "/policy.yaml", "must be in a folder of its own"),
])
def test_settings_refuse_what_kube_apiserver_would_choke_on(name, value, message):
    from k8s.errors import UserError

    with pytest.raises(UserError, match=message):
        audit.settings({name: value})


def test_out_onto_a_file_is_one_error_line(tmp_path):
    from k8s.errors import UserError

    (tmp_path / "taken").write_text("")
    from k8s.core import build_dir

    with pytest.raises(UserError, match=r"taken: not a folder: the output goes into a folder"):
        build_dir.write(str(tmp_path / "taken"), {"a.yaml": "a: 1\n"})


# --- the policy in a real kube-apiserver --------------------------------------------------------
#
# The session's control plane runs kube-apiserver with this very policy (the harness writes
# audit.policy_text() and passes it as --audit-policy-file): its audit log is the reference
# that level_for mirrors.

def request(plane, method, path, body=None, user=None, groups=()):
    """(status, Audit-Id, parsed body) of one HTTPS request to `plane`'s API server, as the admin
    or as a client-certificate `user` in `groups`."""
    import json
    import ssl
    import tempfile
    import urllib.error
    import urllib.request

    context = ssl.create_default_context(cafile=os.path.join(plane.pki, "ca.crt"))
    if user is None:
        context.load_cert_chain(os.path.join(plane.pki, "admin.crt"), os.path.join(plane.pki, "admin.key"))
    else:
        cert, key = plane.ca.issue(user, groups)
        with tempfile.TemporaryDirectory() as folder:
            for name, pem in (("tls.crt", cert), ("tls.key", key)):
                with open(os.path.join(folder, name), "wb") as f:
                    f.write(pem)
            context.load_cert_chain(os.path.join(folder, "tls.crt"), os.path.join(folder, "tls.key"))
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    req = urllib.request.Request(plane.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, context=context, timeout=30) as reply:
            status, audit_id, text = reply.status, reply.headers.get("Audit-Id"), reply.read().decode()
    except urllib.error.HTTPError as err:
        status, audit_id, text = err.code, err.headers.get("Audit-Id"), err.read().decode()
    return status, audit_id, (json.loads(text) if text.startswith("{") else text)


def audit_log(plane):
    import json

    with open(plane.audit_log) as f:
        return [json.loads(line) for line in f if line.strip()]


def level_of(event):
    """level_for's answer for the request an audit event records."""
    ref = event.get("objectRef")
    # the user kube-apiserver authenticated (a failed authentication has none): the policy is
    # evaluated before impersonation, so never the impersonated one
    user = event.get("user") or {}
    name, groups = user.get("username", ""), user.get("groups") or []
    if ref is None:  # a non-resource request: the path without its query
        return audit.level_for(audit.policy(), event["verb"], name, groups, path=event["requestURI"].split("?", 1)[0])
    return audit.level_for(audit.policy(), event["verb"], name, groups,
                           group=ref.get("apiGroup", ""), resource=ref.get("resource", ""),
                           subresource=ref.get("subresource", ""), namespace=ref.get("namespace", ""),
                           name=ref.get("name", ""))


def test_the_control_plane_runs_this_policy(control_plane):
    argv = open(f"/proc/{control_plane.processes['kube-apiserver'].pid}/cmdline").read().split("\0")
    [flag] = [a for a in argv if a.startswith("--audit-policy-file=")]
    with open(flag.split("=", 1)[1]) as f:
        assert f.read() == audit.policy_text()


def test_level_for_agrees_with_kube_apiserver_on_every_request_it_logged(control_plane):
    """Every event of the session's audit log so far (controllers, scheduler, nodes, other
    tests) was logged at the level level_for gives its request."""
    request(control_plane, "GET", "/api/v1/namespaces/default/pods")  # at least some traffic of ours
    events = audit_log(control_plane)
    assert len(events) > 100
    wrong = {}
    for event in events:
        expected = level_of(event)
        if expected != event["level"]:
            ref = event.get("objectRef") or {}
            key = (event["verb"], (event.get("user") or {}).get("username"), ref.get("apiGroup", ""),
                   ref.get("resource"), ref.get("subresource"), event["requestURI"].split("?")[0] if not ref else None)
            wrong.setdefault(key, (event["level"], expected))
    assert wrong == {}, "(request) -> (kube-apiserver's level, level_for's)"
    assert {e["stage"] for e in events} <= {"ResponseStarted", "ResponseComplete", "Panic"}  # omitStages


NODE_GROUPS = ["system:nodes", "system:authenticated"]
SA_GROUPS = ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"]
CRAFTED = [  # (method, path, user (None: the admin), groups, body, the request's attributes for level_for)
    ("GET", "/healthz", None, (), None, dict(verb="get", path="/healthz")),
    ("GET", "/readyz/etcd", None, (), None, dict(verb="get", path="/readyz/etcd")),
    ("GET", "/version", None, (), None, dict(verb="get", path="/version")),
    ("GET", "/metrics", None, (), None, dict(verb="get", path="/metrics")),
    ("GET", "/api/v1/nodes/kube1", "system:node:kube1", NODE_GROUPS, None,
     dict(verb="get", resource="nodes", name="kube1")),
    ("GET", "/api/v1/nodes/kube1/status", "system:node:kube1", NODE_GROUPS, None,
     dict(verb="get", resource="nodes", subresource="status", name="kube1")),
    ("GET", "/api/v1/namespaces/default/services?watch=1&timeoutSeconds=1", "system:kube-proxy", (), None,
     dict(verb="watch", resource="services", namespace="default")),
    ("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-scheduler", "system:kube-scheduler",
     (), None, dict(verb="get", group="coordination.k8s.io", resource="leases", namespace="kube-system",
                    name="kube-scheduler")),
    ("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/x", None, (), None,
     dict(verb="get", group="coordination.k8s.io", resource="leases", namespace="kube-system", name="x")),
    ("POST", "/api/v1/namespaces/default/events", None, (), {
        "metadata": {"generateName": "audit-"}, "involvedObject": {"kind": "Pod", "name": "x", "namespace": "default"},
        "reason": "Test", "message": "m", "type": "Normal"},
     dict(verb="create", resource="events", namespace="default")),
    ("GET", "/api/v1/namespaces/kube-system/secrets", None, (), None,
     dict(verb="list", resource="secrets", namespace="kube-system")),
    ("GET", "/api/v1/namespaces/default/configmaps/kube-root-ca.crt", None, (), None,
     dict(verb="get", resource="configmaps", namespace="default", name="kube-root-ca.crt")),
    ("GET", "/api/v1/namespaces/default/pods/x/log", None, (), None,
     dict(verb="get", resource="pods", subresource="log", namespace="default", name="x")),
    ("GET", "/api/v1/namespaces/default/pods", "system:serviceaccount:default:default", SA_GROUPS, None,
     dict(verb="list", resource="pods", namespace="default")),
    ("DELETE", "/api/v1/namespaces/audit-no-such-namespace", None, (), None,
     dict(verb="delete", resource="namespaces", namespace="audit-no-such-namespace", name="audit-no-such-namespace")),
]
ADMIN_GROUPS = ["kubeadm:cluster-admins", "system:authenticated"]


@pytest.mark.parametrize("method,path,user,groups,body,attributes", CRAFTED,
                         ids=[f"{c[0]} {c[1]} {c[2] or 'admin'}" for c in CRAFTED])
def test_level_for_agrees_with_kube_apiserver_request_by_request(control_plane, method, path, user, groups, body,
                                                                 attributes):
    """Each request is logged at level_for's level, found by its Audit-Id; a request level_for
    logs at None leaves no event at all."""
    import time

    expected = audit.level_for(audit.policy(), user=user or "kubernetes-admin",
                               groups=list(groups) or ADMIN_GROUPS, **attributes)
    status, audit_id, _ = request(control_plane, method, path, body, user, groups)
    assert audit_id, status
    # a request that is always logged, sent after it: once its event is there, so is any of the first
    _, sentinel, _ = request(control_plane, "GET", "/api/v1/namespaces/default")
    deadline = time.monotonic() + 10
    while not [e for e in audit_log(control_plane) if e["auditID"] == sentinel]:
        assert time.monotonic() < deadline, "the sentinel request was never logged"
        time.sleep(0.1)
    time.sleep(0.2)
    found = [e for e in audit_log(control_plane) if e["auditID"] == audit_id]
    assert {e["level"] for e in found} == ({expected} if expected != "None" else set()), (status, found)
    for event in found:  # and the event records the request level_for was asked about
        assert level_of(event) == expected
        assert event["user"]["username"] == (user or "kubernetes-admin")


def test_credentials_never_reach_the_audit_log(control_plane):
    """Secrets, ConfigMaps, TokenRequests and TokenReviews, written and read through the real API
    server: their events are Metadata only, and no value, token or review ever lands in the log."""
    import uuid

    marker = f"audit-marker-{uuid.uuid4().hex}"
    namespace = f"audit-{uuid.uuid4().hex[:8]}"
    ids = {}
    status, ids["namespace"], _ = request(control_plane, "POST", "/api/v1/namespaces",
                                          {"metadata": {"name": namespace}})
    assert status == 201
    try:
        base = f"/api/v1/namespaces/{namespace}"
        status, ids["secret"], _ = request(control_plane, "POST", f"{base}/secrets", {
            "metadata": {"name": "s"}, "stringData": {"password": marker}})
        assert status == 201
        status, ids["secret-get"], got = request(control_plane, "GET", f"{base}/secrets/s")
        assert status == 200 and got["data"]["password"]
        status, ids["configmap"], _ = request(control_plane, "POST", f"{base}/configmaps", {
            "metadata": {"name": "c"}, "data": {"password": marker}})
        assert status == 201
        status, ids["configmap-patch"], _ = request(control_plane, "PUT", f"{base}/configmaps/c", {
            "metadata": {"name": "c"}, "data": {"password": marker + "-2"}})
        assert status == 200
        wait_for(lambda: request(control_plane, "GET", f"{base}/serviceaccounts/default")[0] == 200,
                         what="the default ServiceAccount")
        status, ids["token"], issued = request(control_plane, "POST", f"{base}/serviceaccounts/default/token", {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}})
        assert status == 201, issued
        token = issued["status"]["token"]
        status, ids["review"], review = request(control_plane, "POST", "/apis/authentication.k8s.io/v1/tokenreviews", {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})
        assert status == 201 and review["status"]["authenticated"] is True
        with open(control_plane.audit_log) as f:
            text = f.read()
        for secret in (marker, token, token.split(".")[1]):
            assert secret not in text
        events = {e["auditID"]: e for e in audit_log(control_plane)}
        for what, audit_id in ids.items():
            event = events[audit_id]
            if what == "namespace":  # a write of something else: its bodies are logged
                assert event["level"] == "RequestResponse" and event["requestObject"]["metadata"]["name"] == namespace
                assert "managedFields" not in event["responseObject"]["metadata"]  # omitManagedFields
                continue
            assert event["level"] == "Metadata", what
            assert "requestObject" not in event and "responseObject" not in event, what
    finally:
        request(control_plane, "DELETE", f"/api/v1/namespaces/{namespace}")

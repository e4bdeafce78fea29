"""The API audit policy: rule order (first match wins), no body of a credential ever logged,
the kubeadm fragment from the variables, and `audit install` against a real sshd.

Commands run in-process through `k8s.cli.main` (render.py's main, with the audit commands
registered) in a scratch project; output captured at the file-descriptor level.
"""

import os
import shlex
import stat

import pytest
import yaml

from k8s import cli, audit

from .conftest import in_process, needs_root
from .sshd import sshd, sshd_factory  # noqa: F401

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
    assert result.out.startswith("wrote build/audit-policy.yaml and build/kubeadm-audit.yaml (Kubernetes 1.31)")
    assert sorted(os.listdir(tmp_path / "build")) == ["audit-policy.yaml", "kubeadm-audit.yaml"]
    written = yaml.safe_load((tmp_path / "build" / "audit-policy.yaml").read_text())
    assert written["apiVersion"] == "audit.k8s.io/v1" and audit.check(written) == []
    fragment = yaml.safe_load((tmp_path / "build" / "kubeadm-audit.yaml").read_text())
    assert fragment["apiVersion"] == "kubeadm.k8s.io/v1beta4" and fragment["kind"] == "ClusterConfiguration"
    assert fragment["apiServer"]["extraArgs"] == [
        {"name": "audit-policy-file", "value": "/etc/kubernetes/audit/policy.yaml"},
        {"name": "audit-log-path", "value": "/var/log/apiserver/audit.log"},
        {"name": "audit-log-maxage", "value": "7"},
        {"name": "audit-log-maxbackup", "value": "3"},
        {"name": "audit-log-maxsize", "value": "50"}]
    assert fragment["apiServer"]["extraVolumes"] == [
        {"name": "audit-policy", "hostPath": "/etc/kubernetes/audit", "mountPath": "/etc/kubernetes/audit",
         "readOnly": True, "pathType": "DirectoryOrCreate"},
        {"name": "audit-log", "hostPath": "/var/log/apiserver", "mountPath": "/var/log/apiserver",
         "readOnly": False, "pathType": "DirectoryOrCreate"}]

    result = run("--kube-version", "1.30", "audit-policy", "--out", "build")
    assert result.code == 0, result.err
    fragment = yaml.safe_load((tmp_path / "build" / "kubeadm-audit.yaml").read_text())
    assert fragment["apiVersion"] == "kubeadm.k8s.io/v1beta3"
    assert fragment["apiServer"]["extraArgs"] == {
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
    with pytest.raises(UserError, match=r"taken: cannot write: File exists$"):
        cli.write_files(str(tmp_path / "taken"), {"a.yaml": "a: 1\n"})

"""API audit logging: the audit Policy for kube-apiserver, its kubeadm fragment, the copy to the nodes.

    render.py audit-policy [--out DIR]     DIR/kubeadm/: the policy and the merged kubeadm patch
                                           (k8s.nodes.kubeadm_patch, which takes `fragment`)
    render.py audit install NODE…          copy the policy to control-plane nodes (root, 0600)

The policy (audit.k8s.io/v1, kubernetes.io "Auditing"; the first matching rule
sets the level, no match means None):

  1. None: noisy system traffic that tells nothing: health and version probes,
     kube-proxy's watches of services and endpoints, nodes reading their Node,
     node heartbeats (their Leases in kube-node-lease), the scheduler's and
     controller-manager's leader-election Leases in kube-system, the apiserver
     reading namespaces, and Events;
  2. Metadata, whatever the verb: Secrets, ConfigMaps, TokenReviews and
     TokenRequests (serviceaccounts/token), whose request or response bodies
     hold credentials: who, when, what, never the content;
  3. Metadata for exec, attach, port-forward and proxy (streams, no bodies);
  4. Metadata for every other read (get, list, watch);
  5. RequestResponse for every other write (create, update, patch, delete,
     deletecollection), managed fields left out;
  6. Metadata for anything else.
Rule 2 precedes every rule that logs bodies, so no body of a Secret, ConfigMap,
TokenReview or token can reach the log; `level_for` evaluates the policy as the
apiserver does (k8s.io/apiserver/pkg/audit/policy/checker.go), so the tests can
ask it. `omitStages: [RequestReceived]` drops the
event every request would otherwise log before it is handled.

Variables (defaults in DEFAULTS): AUDIT_POLICY_PATH (the file on the nodes),
AUDIT_LOG_PATH, AUDIT_LOG_MAXAGE (days), AUDIT_LOG_MAXBACKUP (files),
AUDIT_LOG_MAXSIZE (MB), KUBE_VERSION (fragment form), SSH_CONFIG, SSH_OPTIONS,
REMOTE_SUDO (k8s.nodes.remote). Nothing here is secret.

Only the standard library is imported at module level.
"""

import posixpath

from ..errors import UserError

COMMANDS = ("audit", "audit-policy")
API_VERSION = "audit.k8s.io/v1"
LEVELS = ("None", "Metadata", "Request", "RequestResponse")
BODY_LEVELS = ("Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
READ_VERBS = ["get", "list", "watch"]
WRITE_VERBS = ["create", "update", "patch", "delete", "deletecollection"]
DEFAULTS = {
    "AUDIT_POLICY_PATH": "/etc/kubernetes/audit/policy.yaml",
    "AUDIT_LOG_PATH": "/var/log/kubernetes/audit/audit.log",
    "AUDIT_LOG_MAXAGE": "30",
    "AUDIT_LOG_MAXBACKUP": "10",
    "AUDIT_LOG_MAXSIZE": "100",
}
# Resources whose bodies hold credentials: logged at Metadata, never with bodies.
SENSITIVE = [
    {"group": "", "resources": ["secrets", "configmaps", "serviceaccounts/token"]},
    {"group": "authentication.k8s.io", "resources": ["tokenreviews"]},
]
POLICY_FIELDS = {"apiVersion", "kind", "metadata", "rules", "omitStages", "omitManagedFields"}
RULE_FIELDS = {"level", "users", "userGroups", "verbs", "resources", "namespaces", "nonResourceURLs",
               "omitStages", "omitManagedFields"}
GROUP_RESOURCE_FIELDS = {"group", "resources", "resourceNames"}


def _lease(users=None, groups=None, namespaces=(), verbs=("get", "update")):
    rule = {"level": "None"}
    if users:
        rule["users"] = list(users)
    if groups:
        rule["userGroups"] = list(groups)
    rule["verbs"] = list(verbs)
    rule["namespaces"] = list(namespaces)
    rule["resources"] = [{"group": "coordination.k8s.io", "resources": ["leases"]}]
    return rule


def policy():
    """The audit Policy, as a dict ready to dump (see the module docstring for the rules)."""
    rules = [
        # 1. noise
        {"level": "None", "nonResourceURLs": ["/healthz*", "/livez*", "/readyz*", "/version", "/version/"]},
        {"level": "None", "users": ["system:kube-proxy"], "verbs": ["watch"],
         "resources": [{"group": "", "resources": ["endpoints", "services"]},
                       {"group": "discovery.k8s.io", "resources": ["endpointslices"]}]},
        {"level": "None", "userGroups": ["system:nodes"], "verbs": ["get"],
         "resources": [{"group": "", "resources": ["nodes", "nodes/status"]}]},
        _lease(groups=["system:nodes"], namespaces=["kube-node-lease"]),
        _lease(users=["system:kube-scheduler", "system:kube-controller-manager"],
               namespaces=["kube-system"]),
        {"level": "None", "users": ["system:apiserver"], "verbs": ["get"],
         "resources": [{"group": "", "resources": ["namespaces", "namespaces/status",
                                                   "namespaces/finalize"]}]},
        {"level": "None", "resources": [{"group": "", "resources": ["events"]},
                                        {"group": "events.k8s.io", "resources": ["events"]}]},
        # 2. credentials: metadata only, every verb
        {"level": "Metadata", "resources": [dict(g, resources=list(g["resources"])) for g in SENSITIVE]},
        # 3. streams
        {"level": "Metadata", "resources": [{"group": "", "resources": [
            "pods/exec", "pods/attach", "pods/portforward", "pods/proxy", "services/proxy",
            "nodes/proxy"]}]},
        # 4. reads
        {"level": "Metadata", "verbs": list(READ_VERBS)},
        # 5. writes
        {"level": "RequestResponse", "verbs": list(WRITE_VERBS)},
        # 6. the rest
        {"level": "Metadata"},
    ]
    return {"apiVersion": API_VERSION, "kind": "Policy", "omitStages": ["RequestReceived"],
            "omitManagedFields": True, "rules": rules}


HEADER = """\
# kube-apiserver audit policy (--audit-policy-file), written by `render.py audit-policy`.
# The FIRST matching rule sets the level; no match: None.
#   None             probes, kube-proxy watches, node reads and heartbeats, leader
#                    election leases, Events
#   Metadata         Secrets, ConfigMaps, TokenReviews, TokenRequests: never bodies
#   Metadata         exec/attach/port-forward/proxy, then every other read
#   RequestResponse  every other write (managed fields omitted)
#   Metadata         anything else
"""


def policy_text():
    from ..core import emit

    return HEADER + emit.to_yaml([policy()])


# --- checking a policy ---------------------------------------------------------------------------

def check(doc):
    """Problems of an audit Policy as kube-apiserver would see them ([] when none)."""
    problems = []
    if not isinstance(doc, dict):
        return ["not a mapping"]
    if doc.get("apiVersion") != API_VERSION or doc.get("kind") != "Policy":
        problems.append(f"apiVersion/kind must be {API_VERSION} Policy")
    problems += [f"unknown field {k!r}" for k in sorted(set(doc) - POLICY_FIELDS)]
    problems += [f"omitStages: unknown stage {s!r}" for s in doc.get("omitStages") or () if s not in STAGES]
    rules = doc.get("rules")
    if not isinstance(rules, list) or not rules:
        return problems + ["rules: a policy needs at least one rule"]
    for i, rule in enumerate(rules):
        where = f"rules[{i}]"
        if not isinstance(rule, dict):
            problems.append(f"{where}: not a mapping")
            continue
        problems += [f"{where}: unknown field {k!r}" for k in sorted(set(rule) - RULE_FIELDS)]
        if rule.get("level") not in LEVELS:
            problems.append(f"{where}: level {rule.get('level')!r} is not one of {', '.join(LEVELS)}")
        if rule.get("nonResourceURLs") and (rule.get("resources") or rule.get("namespaces")):
            problems.append(f"{where}: rules cannot apply to both resources and non-resource URLs")
        for url in rule.get("nonResourceURLs") or ():
            if not url.startswith("/") or "*" in url[:-1]:
                problems.append(f"{where}: nonResourceURLs {url!r}: an absolute path, `*` only at its end")
        for stage in rule.get("omitStages") or ():
            if stage not in STAGES:
                problems.append(f"{where}: omitStages: unknown stage {stage!r}")
        for j, group in enumerate(rule.get("resources") or ()):
            if not isinstance(group, dict):
                problems.append(f"{where}.resources[{j}]: not a mapping")
                continue
            problems += [f"{where}.resources[{j}]: unknown field {k!r}"
                         for k in sorted(set(group) - GROUP_RESOURCE_FIELDS)]
            if group.get("resourceNames") and not group.get("resources"):
                problems.append(f"{where}.resources[{j}]: resourceNames needs resources")
    return problems


def level_for(doc, verb, user="admin", groups=("system:authenticated",), group="", resource="",
              subresource="", namespace="", name="", path=None):
    """The level the apiserver logs a request at: the first matching rule's, else None.

    A resource request names `resource` (and `group`, `subresource`, `namespace`,
    `name`); a non-resource request gives `path` instead. Mirrors
    k8s.io/apiserver/pkg/audit/policy/checker.go (ruleMatches).
    """
    for rule in doc.get("rules") or ():
        if _matches(rule, verb, user, groups, group, resource, subresource, namespace, name, path):
            return rule["level"]
    return "None"


def _matches(rule, verb, user, groups, group, resource, subresource, namespace, name, path):
    if rule.get("users") and user not in rule["users"]:
        return False
    if rule.get("userGroups") and not set(groups) & set(rule["userGroups"]):
        return False
    if rule.get("verbs") and verb not in rule["verbs"]:
        return False
    if rule.get("namespaces") or rule.get("resources"):
        if path is not None:
            return False
        if rule.get("namespaces") and namespace not in rule["namespaces"]:
            return False
        if not rule.get("resources"):
            return True
        combined = f"{resource}/{subresource}" if subresource else resource
        for entry in rule["resources"]:
            if entry.get("group", "") != group:
                continue
            if not entry.get("resources"):
                return True
            if entry.get("resourceNames") and name not in entry["resourceNames"]:
                continue
            for res in entry["resources"]:
                if res in (combined, "*"):
                    return True
                if subresource and res.startswith("*/") and res[2:] == subresource:
                    return True
                if res.endswith("/*") and res[:-2] == resource:
                    return True
        return False
    if rule.get("nonResourceURLs"):
        if path is None:
            return False
        return any(spec == "*" or spec == path or (spec.endswith("*") and path.startswith(spec.rstrip("*")))
                   for spec in rule["nonResourceURLs"])
    return True


# --- the kubeadm fragment --------------------------------------------------------------------------

def settings(variables):
    """The AUDIT_* values, checked: paths absolute, numbers non-negative integers."""
    from .node_files import node_file_problem

    value = {name: str(variables.get(name) or default).strip() for name, default in DEFAULTS.items()}
    errors = []
    for name in ("AUDIT_POLICY_PATH", "AUDIT_LOG_PATH"):
        path = value[name]
        if name == "AUDIT_LOG_PATH" and path == "-":
            continue  # standard output
        problem = node_file_problem(path)
        if problem:
            errors.append(f"{name} {path!r} {problem}")
    for name in ("AUDIT_LOG_MAXAGE", "AUDIT_LOG_MAXBACKUP", "AUDIT_LOG_MAXSIZE"):
        if not (value[name].isascii() and value[name].isdigit()):  # isdigit() alone takes "²"
            errors.append(f"{name} {value[name]!r} must be a whole number (0 or more)")
    if errors:
        raise UserError("; ".join(errors))
    return value


def fragment(variables, kube_version=None):
    """The kubeadm ClusterConfiguration fragment: the audit flags and two hostPath volumes."""
    from .node_files import cluster_configuration

    value = settings(variables)
    policy_dir = posixpath.dirname(value["AUDIT_POLICY_PATH"]) or "/"
    flags = [("audit-policy-file", value["AUDIT_POLICY_PATH"]),
             ("audit-log-path", value["AUDIT_LOG_PATH"]),
             ("audit-log-maxage", value["AUDIT_LOG_MAXAGE"]),
             ("audit-log-maxbackup", value["AUDIT_LOG_MAXBACKUP"]),
             ("audit-log-maxsize", value["AUDIT_LOG_MAXSIZE"])]
    volumes = [{"name": "audit-policy", "hostPath": policy_dir, "mountPath": policy_dir,
                "readOnly": True, "pathType": "DirectoryOrCreate"}]
    log_dir = log_dir_of(value)
    if log_dir:
        if log_dir == policy_dir:
            raise UserError("AUDIT_LOG_PATH must be in another folder than AUDIT_POLICY_PATH "
                            "(the policy's folder is mounted read-only)")
        volumes.append({"name": "audit-log", "hostPath": log_dir, "mountPath": log_dir,
                        "readOnly": False, "pathType": "DirectoryOrCreate"})
    return cluster_configuration(flags, volumes, kube_version)


def log_dir_of(value):
    return None if value["AUDIT_LOG_PATH"] == "-" else posixpath.dirname(value["AUDIT_LOG_PATH"]) or "/"

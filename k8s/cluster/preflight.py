"""Preflight: what would break an install, found before anything is written.

`render.py check` runs every check and prints one line each; `install` and
`apply` run theirs after rendering and before their first write, print the
warnings and stop with exit 1 on an error. A check is a function

    check(facts, variable_values, components, objects) -> [Finding]

in CHECKS, with the commands it runs for. `facts` reads the admin cluster
once per thing (Facts), `components` is the run's Selection and `objects` the
rendered set. A Finding is an error (the install would break: exit 1, nothing
written), a warning (go on, but act) or a note (what was found).

The checks cost a handful of requests, none of them per object:
- pod network (flannel selected): GET kube-system/kubeadm-config, LIST nodes;
- versions: none (the server version is known already);
- metrics-server's kubelet TLS (metrics-server selected): GET
  kube-system/kubelet-config, made once by `resolve_metrics_tls` before rendering;
- retired components: LIST Deployments and LIST DaemonSets in all namespaces;
- NetworkPolicy enforcement (check only): k8s.cluster.netpol's one or two LISTs.

METRICS_SERVER_INSECURE_TLS=auto is resolved here too (`resolve_metrics_tls`):
by the kubelets' serving-certificate mode in a connected run, "true" offline.
"""

import sys
from dataclasses import dataclass, field

from ..errors import UserError, raise_all

LEVELS = ("error", "warning", "note")
METRICS_TLS = "METRICS_SERVER_INSECURE_TLS"
METRICS_TLS_VALUES = ("auto", "true", "false")
# serving-certificate mode (k8s.cluster.serving_certs) -> what `auto` becomes: only
# certificates the cluster CA signed (serverTLSBootstrap) can be verified.
AUTO_TLS = {"bootstrap": "false", "self-signed": "true", "unknown": "true"}
DEPLOYMENTS_PATH = "/apis/apps/v1/deployments"
DAEMONSETS_PATH = "/apis/apps/v1/daemonsets"

# Retired upstream projects: image repository path (registry, tag and digest left
# off) -> (name, why, what to use instead).
RETIRED = {
    "ingress-nginx/controller": (
        "ingress-nginx", "retired upstream: no releases or security fixes since March 2026",
        "its successor is Gateway API: GATEWAY_API=true, make gateway-api (NGINX Gateway Fabric)"),
    "kubernetesui/dashboard": (
        "kubernetes-dashboard", "archived upstream: no releases or security fixes",
        "its successor is Headlamp: DASHBOARD=headlamp make dashboard"),
}


@dataclass
class Finding:
    """One line of the preflight: level error|warning|note, and the text."""

    level: str
    text: str
    check: str = ""

    def line(self):
        return self.text if self.level == "note" else f"{self.level}: {self.text}"


@dataclass
class Selection:
    """The components of a run.

    selected: what renders and applies; skipped: left out for the version range (or
        never vendored); named: the names the user typed (empty: all of them);
        version: the Kubernetes version rendered for; install: the run is `install` (or
        `check` of what install would apply), which only counts install components.
    """

    selected: list
    skipped: list
    named: set = field(default_factory=set)
    version: str = ""
    install: bool = False


class Facts:
    """The admin cluster, read at most once per thing during one run.

    asked: variables as the user set them, before `resolve_metrics_tls` changed `auto`.
    """

    def __init__(self, cluster):
        self.cluster = cluster
        self.asked = {}
        self._memo = {}

    def once(self, key, read):
        if key not in self._memo:
            self._memo[key] = read()
        return self._memo[key]

    def serving_mode(self):
        """(mode, why) of the kubelets' serving certificates: bootstrap, self-signed or unknown."""
        from . import serving_certs

        return self.once("serving", lambda: serving_certs.serving_mode(self.cluster))

    def kubeadm_config(self):
        from . import kubeadm_config

        return self.once("kubeadm", lambda: kubeadm_config.cluster_configuration(self.cluster))

    def node_pod_cidrs(self):
        from . import kubeadm_config

        return self.once("nodes", lambda: kubeadm_config.node_pod_cidrs(self.cluster))

    def workloads(self):
        """Answer of [Deployments and DaemonSets] of every namespace (two LISTs)."""
        from .kubeadm_config import Answer, get

        def read():
            items = []
            for path in (DEPLOYMENTS_PATH, DAEMONSETS_PATH):
                answer = get(self.cluster, path)
                if answer.data is None:
                    return answer
                kind = "Deployment" if path == DEPLOYMENTS_PATH else "DaemonSet"
                items += [{**item, "kind": kind} for item in answer.data.get("items") or []]
            return Answer(items)

        return self.once("workloads", read)


# --- METRICS_SERVER_INSECURE_TLS=auto ------------------------------------------------------

def resolve_metrics_tls(variable_values, facts=None, needed=True):
    """Turn METRICS_SERVER_INSECURE_TLS=auto into "true" or "false", in place, before rendering.

    Parameters:
        variable_values: {name: value}; nothing happens when the variable is not defined.
        facts: the run's Facts, or None offline (render, validate): `auto` is then "true",
            which works with every kubelet.
        needed: False when metrics-server is not among the components: no request is made.
    A value other than auto, true or false is a UserError.
    """
    value = variable_values.get(METRICS_TLS)
    if value is None:
        return
    value = value.strip()
    if value not in METRICS_TLS_VALUES:
        raise UserError(f"{METRICS_TLS}={value!r}: expected auto, true or false")
    if facts is not None:
        facts.asked[METRICS_TLS] = value
    if value == "auto":
        if facts is None or not needed:
            value = "true"
        else:
            value = AUTO_TLS.get(facts.serving_mode()[0], "true")
    variable_values[METRICS_TLS] = value


# --- the checks ----------------------------------------------------------------------------

def _named(components, name):
    return any(c.name == name for c in components.selected)


def pod_network(facts, variable_values, components, objects):
    """POD_CIDR against kubeadm's podSubnet and the nodes' pod CIDRs, when flannel is selected."""
    from .kubeadm_config import networks, pod_subnets

    if not _named(components, "flannel"):
        return []
    pod_cidr = (variable_values.get("POD_CIDR") or "").strip()
    try:
        wanted = networks(pod_cidr)
    except ValueError as err:
        return [Finding("error", f"pod network: POD_CIDR={pod_cidr}: {err}")]
    if not wanted:
        return [Finding("error", "pod network: POD_CIDR is empty; flannel needs the cluster's pod network")]
    lines = []
    answer = facts.kubeadm_config()
    if answer.data is None:
        why = ("no ConfigMap kube-system/kubeadm-config, not a kubeadm cluster?"
               if answer.missing == "not found" else answer.missing)
        lines.append(f"podSubnet not checked ({why})")
    else:
        subnets = pod_subnets(answer.data)
        if not subnets:
            return [Finding("error", (
                "pod network: the cluster has no podSubnet (kubeadm init ran without --pod-network-cidr): "
                "the controller-manager allocates no node pod CIDRs and flanneld fails with \"pod cidr not "
                f"assigned\"; kubeadm init needs --pod-network-cidr={pod_cidr} (a running cluster: "
                f"kube-controller-manager --allocate-node-cidrs=true --cluster-cidr={pod_cidr})"))]
        try:
            have = networks(",".join(subnets))
        except ValueError as err:
            return [Finding("error", f"pod network: the cluster's podSubnet {','.join(subnets)}: {err}")]
        by_family = {n.version: n for n in have}
        if any(by_family.get(n.version) != n for n in wanted):
            return [Finding("error", (
                f"pod network: POD_CIDR={pod_cidr} but the cluster's podSubnet is {','.join(subnets)}: "
                f"pass --pod-network-cidr={pod_cidr} to kubeadm init, or set POD_CIDR to the cluster's "
                f"podSubnet ({','.join(subnets)})"))]
        lines.append(f"podSubnet {','.join(subnets)} matches POD_CIDR")
    nodes = facts.node_pod_cidrs()
    if nodes.data is None:
        lines.append(f"nodes' pod CIDRs not checked ({nodes.missing})")
    else:
        outside = [f"{name} {cidr}" for name, cidrs in nodes.data for cidr in cidrs
                   if not _inside(cidr, wanted)]
        if outside:
            return [Finding("error", (
                f"pod network: node pod CIDRs outside POD_CIDR={pod_cidr}: {', '.join(outside)} "
                "(kube-controller-manager's --cluster-cidr must be POD_CIDR)"))]
        given = sum(1 for _, cidrs in nodes.data if cidrs)
        lines.append(f"{given} of {len(nodes.data)} node{'s' if len(nodes.data) != 1 else ''} "
                     "have a pod CIDR inside it")
    return [Finding("note", "pod network: " + "; ".join(lines))]


def _inside(cidr, wanted):
    from .kubeadm_config import networks

    try:
        (net,) = networks(cidr)
    except ValueError:
        return False
    same = [w for w in wanted if w.version == net.version]
    return not same or any(net.subnet_of(w) for w in same)  # a family POD_CIDR leaves out is not flannel's


def versions(facts, variable_values, components, objects):
    """One line per component the version range leaves out: an error when the user named it."""
    found = []
    for c in components.skipped:
        if c.supports(components.version):  # never vendored: not a version matter
            continue
        bounds = " and ".join(b for b in (c.min_version and f">= {c.min_version}",
                                          c.max_version and f"<= {c.max_version}") if b)
        if c.name in components.named:
            found.append(Finding("error", f"{c.name}: needs Kubernetes {bounds}, not {components.version}: "
                                          f"it cannot be applied (see {c.path}/component.yaml)"))
        elif c.install or not components.install:
            found.append(Finding("note", f"{c.name}: skipped, needs Kubernetes {bounds}, "
                                         f"not {components.version}"))
    return found


def metrics_tls(facts, variable_values, components, objects):
    """Which kubelet TLS mode metrics-server runs with, and why; false on self-signed kubelets is an error."""
    if not _named(components, "metrics-server") or METRICS_TLS not in variable_values:
        return []
    asked = facts.asked.get(METRICS_TLS, variable_values[METRICS_TLS])
    value = variable_values[METRICS_TLS]
    mode, why = facts.serving_mode()
    kubelets = {"bootstrap": f"kubelets serve certificates the cluster CA signed ({why})",
                "self-signed": f"kubelets serve self-signed certificates ({why})",
                "unknown": f"the kubelets' serving certificates are unknown ({why})"}.get(mode, f"{mode} ({why})")
    by = "" if asked == "auto" else f" ({METRICS_TLS}={asked})"
    if value == "true":
        text = f"metrics-server: --kubelet-insecure-tls{by}, because {kubelets}"
        if mode == "bootstrap":
            return [Finding("note", f"metrics-server: --kubelet-insecure-tls{by} although {kubelets}; "
                                    f"{METRICS_TLS}=auto would verify them")]
        return [Finding("note", text + "; make kubelet_serving_certs turns on verified serving certificates")]
    if mode == "self-signed":
        return [Finding("error", f"metrics-server: {METRICS_TLS}={asked} but {kubelets}: metrics-server "
                                 f"would never become ready; set {METRICS_TLS}=auto, or make "
                                 "kubelet_serving_certs")]
    if mode == "unknown":
        return [Finding("warning", f"metrics-server: verifies kubelet serving certificates{by} but {kubelets}: "
                                   "it stays unready unless they are CA-signed")]
    return [Finding("note", f"metrics-server: verifies kubelet serving certificates{by}, because {kubelets}")]


def retired(facts, variable_values, components, objects):
    """A warning for each retired project selected for install or running on the cluster."""
    places = {}  # retired name -> where it was seen
    for obj in objects:
        data = obj.data if hasattr(obj, "data") else obj
        if data.get("kind") in ("Deployment", "DaemonSet") and (name := _retired_in(data)):
            places.setdefault(name, []).append(f"component {getattr(obj, 'component', '?')}")
    running = facts.workloads()
    for item in running.data or []:
        if name := _retired_in(item):
            meta = item.get("metadata") or {}
            places.setdefault(name, []).append(f"running as {item['kind']} {meta.get('namespace')}/{meta.get('name')}")
    found = []
    for name, why, successor in RETIRED.values():
        if name in places:
            seen = "; ".join(dict.fromkeys(places[name]))
            found.append(Finding("warning", f"{name} is {why} ({seen}); {successor}"))
    if running.data is None:
        found.append(Finding("note", f"retired components on the cluster not checked ({running.missing})"))
    return found


def _retired_in(workload):
    spec = ((workload.get("spec") or {}).get("template") or {}).get("spec") or {}
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        path = image_path(container.get("image"))
        for suffix, (name, _, _) in RETIRED.items():
            if path == suffix or path.endswith("/" + suffix):
                return name
    return None


def image_path(image):
    """The repository path of an image, tag and digest left off:
    "registry.local:5000/a/b:1@sha256:…" -> "registry.local:5000/a/b"."""
    path = (image or "").split("@", 1)[0]
    head, _, last = path.rpartition("/")
    last = last.split(":", 1)[0]
    return f"{head}/{last}" if head else last


def network_policies(facts, variable_values, components, objects):
    """k8s.cluster.netpol's enforcement line: a warning, or a note of what enforces them."""
    from .netpol import enforcement

    listed = facts.workloads().data  # the retired check's LIST, when it ran and was allowed
    daemonsets = None if listed is None else [w for w in listed if w["kind"] == "DaemonSet"]
    warning, note = enforcement(facts.cluster, objects, daemonsets)
    return [Finding("warning", warning)] if warning else [Finding("note", note)]


# check name -> (function, the commands it runs for), in the order the lines are printed
CHECKS = {
    "pod-network": (pod_network, {"check", "install", "apply"}),
    "versions": (versions, {"check", "install", "apply"}),
    "metrics-tls": (metrics_tls, {"check", "install", "apply"}),
    "retired": (retired, {"check", "install", "apply"}),
    "network-policies": (network_policies, {"check"}),
}


def run(facts, variable_values, components, objects, command):
    """Every check of `command` (check, install or apply), its findings in CHECKS order."""
    findings = []
    for name, (check, commands) in CHECKS.items():
        if command in commands:
            findings += [Finding(f.level, f.text, name) for f in check(facts, variable_values, components, objects)]
    return findings


def enforce(findings, notes=None):
    """Print the warnings to stderr (and the notes to `notes`, a file, when given), then
    raise the errors: the CLI prints each as one `error:` line and exits 1."""
    for f in findings:
        if f.level == "warning":
            print(f.line(), file=sys.stderr)
        elif f.level == "note" and notes is not None:
            print(f.line(), file=notes)
    raise_all([UserError(f.text) for f in findings if f.level == "error"])

"""Pod security: the PSA admission file (1.25+), the PodSecurityPolicies (1.23-1.24),
data-sync's privileged namespace, every component on 1.23 and 1.24, and, on the real
control plane (1.37), the user namespace's level and every shipped workload's admission.

The 1.23/1.24 parts render and validate only (PodSecurityPolicy was removed in 1.25;
no API server of those versions runs here): they never used an API server.

kubernetes-validate 1.37 only has schemas for 1.25 and newer; k8s/core/schemas
holds the 1.23 and 1.24 ones this repo's components need (see its README).
"""

import copy
import json
import os
import subprocess
import sys

import pytest
import yaml

from k8s.core import components, emit, order, podsecurity, render, validate, variables, vendor
from k8s.errors import UserError

from ..realcluster import wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMAS = os.path.join(ROOT, "k8s", "core", "schemas")
MANIFESTS = os.path.join(ROOT, "manifests")
VENDOR = os.path.join(ROOT, "vendor")  # components whose imports were never vendored are left out
OLD_VERSIONS = ("1.23", "1.24")

@pytest.fixture
def repo_vars(tmp_path):
    """The repository's variables (Makefile.vars), untouched by the environment."""

    def load(**overrides):
        found = variables.load_variables(os.path.join(ROOT, "Makefile.vars"), environ={})
        return {**{name: v.value for name, v in found.items()}, **overrides}
    return load


def build(values, version, names=None):
    """(objects, skipped component names, report) for the repo's components, as `render.py validate` does."""
    values = {**values, "KUBE_VERSION": version}
    found = order.component_order(components.discover(MANIFESTS, values))
    wanted = [c for c in found if names is None or c.name in names]
    selected = [c for c in wanted if c.supports(version) and not vendor.not_vendored(c, VENDOR)]
    objects = render.render_components(selected, values, vendor_root=VENDOR)
    report = validate.validate([(o.data, o.source) for o in objects], version)
    return objects, [c.name for c in wanted if c not in selected], report


def by_kind(objects, component):
    out = {}
    for o in objects:
        if o.component == component:
            out.setdefault(o.kind, {})[(o.namespace or "", o.name)] = o.data
    return out


# --- the admission configuration (1.25+) ----------------------------------------

def test_admission_configuration_from_the_repo_defaults(repo_vars):
    values = repo_vars(KUBE_VERSION="1.31")
    config = podsecurity.admission_configuration(values)
    assert config == {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AdmissionConfiguration",
        "plugins": [{
            "name": "PodSecurity",
            "configuration": {
                "apiVersion": "pod-security.admission.config.k8s.io/v1",
                "kind": "PodSecurityConfiguration",
                "defaults": {
                    "enforce": "baseline", "enforce-version": values["PSA_VERSION"],
                    "audit": "restricted", "audit-version": values["PSA_VERSION"],
                    "warn": "restricted", "warn-version": values["PSA_VERSION"],
                },
                "exemptions": {"usernames": [], "runtimeClasses": [], "namespaces": ["kube-system"]},
            },
        }],
    }
    # What kube-apiserver reads: plain YAML, no Python-specific tags.
    assert yaml.safe_load(yaml.safe_dump(config)) == config


def test_admission_configuration_takes_every_variable():
    config = podsecurity.admission_configuration({
        "PSA_DEFAULT_ENFORCE": "restricted", "PSA_DEFAULT_AUDIT": "baseline", "PSA_DEFAULT_WARN": "privileged",
        "PSA_VERSION": "latest", "PSA_EXEMPT_NAMESPACES": " kube-system  kube-flannel data-sync ",
        "KUBE_VERSION": "v1.37.2"})
    plugin = config["plugins"][0]["configuration"]
    assert plugin["defaults"] == {"enforce": "restricted", "enforce-version": "latest",
                                  "audit": "baseline", "audit-version": "latest",
                                  "warn": "privileged", "warn-version": "latest"}
    assert plugin["exemptions"]["namespaces"] == ["data-sync", "kube-flannel", "kube-system"]


def test_admission_configuration_defaults_and_no_exemptions():
    plugin = podsecurity.admission_configuration({"PSA_EXEMPT_NAMESPACES": ""})["plugins"][0]["configuration"]
    assert plugin["apiVersion"] == "pod-security.admission.config.k8s.io/v1"
    assert (plugin["defaults"]["enforce"], plugin["defaults"]["audit"], plugin["defaults"]["warn"]) == \
        ("baseline", "restricted", "restricted")
    assert plugin["exemptions"]["namespaces"] == []


@pytest.mark.parametrize("version, api", [
    ("1.23", "pod-security.admission.config.k8s.io/v1beta1"),
    ("1.24", "pod-security.admission.config.k8s.io/v1beta1"),
    ("1.25", "pod-security.admission.config.k8s.io/v1"),
    ("1.37", "pod-security.admission.config.k8s.io/v1"),
])
def test_pod_security_configuration_version_follows_kubernetes(version, api):
    config = podsecurity.admission_configuration({"KUBE_VERSION": version})
    assert config["apiVersion"] == "apiserver.config.k8s.io/v1"
    assert config["plugins"][0]["configuration"]["apiVersion"] == api


@pytest.mark.parametrize("values, message", [
    ({"PSA_DEFAULT_ENFORCE": "strict"},
     "PSA_DEFAULT_ENFORCE is 'strict'; expected one of privileged, baseline, restricted"),
    ({"PSA_DEFAULT_WARN": ""}, "PSA_DEFAULT_WARN is ''"),
    ({"PSA_VERSION": "1.25"}, "PSA_VERSION is '1.25'; expected latest or v1.NN"),
    ({"PSA_EXEMPT_NAMESPACES": "kube-system Kube_Flannel"}, "PSA_EXEMPT_NAMESPACES: 'Kube_Flannel' is not"),
    ({"KUBE_VERSION": "1.22"}, "Pod Security Admission needs Kubernetes 1.23 or newer, not 1.22"),
    ({"KUBE_VERSION": "latest"}, "invalid Kubernetes version 'latest'"),
])
def test_bad_values_are_user_errors_naming_the_variable(values, message):
    with pytest.raises(UserError) as err:
        podsecurity.admission_configuration(values)
    assert str(err.value).startswith(message)


def test_hint_is_one_line_naming_the_file_flag_and_mount():
    text = podsecurity.hint("/etc/kubernetes/admission/admission.yaml")
    assert "\n" not in text
    for part in ("/etc/kubernetes/admission/admission.yaml", "admission-control-config-file",
                 "extraArgs", "extraVolumes", "hostPath: /etc/kubernetes/admission", "v1beta4", "v1beta3"):
        assert part in text
    assert podsecurity.DEFAULT_PATH in podsecurity.hint()


def test_kubeadm_api_server_list_form_from_1_31_map_form_before():
    path = "/etc/kubernetes/admission/admission.yaml"
    volume = {"name": "admission-config", "hostPath": "/etc/kubernetes/admission",
              "mountPath": "/etc/kubernetes/admission", "readOnly": True, "pathType": "DirectoryOrCreate"}
    assert podsecurity.kubeadm_api_server(path, "1.31") == ("kubeadm.k8s.io/v1beta4", {
        "extraArgs": [{"name": "admission-control-config-file", "value": path}], "extraVolumes": [volume]})
    assert podsecurity.kubeadm_api_server(path) == podsecurity.kubeadm_api_server(path, "1.37")
    assert podsecurity.kubeadm_api_server(path, "1.30") == ("kubeadm.k8s.io/v1beta3", {
        "extraArgs": {"admission-control-config-file": path}, "extraVolumes": [volume]})


# --- the PodSecurityPolicies (1.23, 1.24) ---------------------------------------

@pytest.mark.parametrize("version", ["1.25", "1.31", "newest"])
def test_pod_security_renders_nothing_from_1_25(repo_vars, version):
    version = validate.supported_versions()[-1] if version == "newest" else version
    objects, skipped, report = build(repo_vars(), version, {"pod-security"})
    assert (objects, skipped, report.errors) == ([], ["pod-security"], [])


@pytest.mark.parametrize("version", OLD_VERSIONS)
def test_pod_security_policies_roles_and_bindings(repo_vars, version):
    values = repo_vars()
    objects, skipped, report = build(values, version, {"pod-security"})
    assert (skipped, report.errors, report.kube_version) == ([], [], version)
    got = by_kind(objects, "pod-security")
    assert sorted(got) == ["ClusterRole", "ClusterRoleBinding", "PodSecurityPolicy", "RoleBinding"]
    psp = {name: obj["spec"] for (_, name), obj in got["PodSecurityPolicy"].items()}
    assert sorted(psp) == ["approved", "default", "privileged"]

    for name in ("default", "approved"):
        spec = psp[name]
        assert (spec["privileged"], spec["allowPrivilegeEscalation"]) == (False, False)
        assert spec["runAsUser"] == {"rule": "MustRunAsNonRoot"}
        assert spec["requiredDropCapabilities"] == ["ALL"]
        assert spec["allowedCapabilities"] == ["NET_BIND_SERVICE"]
        assert not any(spec[k] for k in ("hostNetwork", "hostIPC", "hostPID"))
        annotations = got["PodSecurityPolicy"][("", name)]["metadata"]["annotations"]
        assert annotations["seccomp.security.alpha.kubernetes.io/defaultProfileName"] == "runtime/default"
        assert annotations["seccomp.security.alpha.kubernetes.io/allowedProfileNames"] == "runtime/default"
    assert "hostPath" not in psp["default"]["volumes"] and "allowedHostPaths" not in psp["default"]
    assert "hostPath" in psp["approved"]["volumes"]
    assert psp["approved"]["allowedHostPaths"] == [{"pathPrefix": values["K8S_VOLUMES_PATH"]}]
    assert {k: v for k, v in psp["default"].items() if k not in ("volumes", "allowedHostPaths")} == \
        {k: v for k, v in psp["approved"].items() if k not in ("volumes", "allowedHostPaths")}
    assert psp["privileged"]["privileged"] is True
    assert psp["privileged"]["volumes"] == ["*"] and psp["privileged"]["allowedCapabilities"] == ["*"]

    for name in psp:
        assert got["ClusterRole"][("", f"{name}-psp")]["rules"] == [{
            "apiGroups": ["policy"], "resources": ["podsecuritypolicies"],
            "resourceNames": [name], "verbs": ["use"]}]

    def subjects(binding):
        assert binding["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
        assert binding["roleRef"]["kind"] == "ClusterRole"
        return binding["roleRef"]["name"], [(s["kind"], s["name"]) for s in binding["subjects"]]

    ns = values["K8S_NAMESPACE"]
    assert {key: subjects(b) for key, b in got["ClusterRoleBinding"].items()} == {
        ("", "default-psp"): ("default-psp", [("Group", "system:authenticated")]),
        ("", "privileged-psp-kube-flannel"): ("privileged-psp",
                                              [("Group", "system:serviceaccounts:kube-flannel")]),
    }
    # privileged only inside kube-system: the controllers creating every pod are kube-system accounts.
    assert {key: subjects(b) for key, b in got["RoleBinding"].items()} == {
        ("kube-system", "privileged-psp"): ("privileged-psp", [("Group", "system:serviceaccounts:kube-system"),
                                                               ("Group", "system:nodes")]),
        (ns, "approved-psp"): ("approved-psp", [("ServiceAccount", f"{ns}-privileged")]),
    }
    assert got["RoleBinding"][(ns, "approved-psp")]["subjects"][0]["namespace"] == ns


def test_fixture_schemas_are_strict_and_psp_stays_removed_in_1_25():
    psp = {"apiVersion": "policy/v1beta1", "kind": "PodSecurityPolicy", "metadata": {"name": "p"},
           "spec": {"seLinux": {"rule": "RunAsAny"}, "runAsUser": {"rule": "RunAsAny"},
                    "supplementalGroups": {"rule": "RunAsAny"}, "fsGroup": {"rule": "RunAsAny"}}}
    where = render.Source("p.yaml", 1, 0, "")
    assert validate.validate([(psp, where)], "1.24").errors == []
    typo = {**psp, "spec": {**psp["spec"], "hostNetwrok": True}}
    assert [str(e) for e in validate.validate([(typo, where)], "1.23").errors] == [
        'p.yaml:1: PodSecurityPolicy/p: spec: unknown field "hostNetwrok"']
    assert [e.message for e in validate.validate([(psp, where)], "1.25").errors] == [
        "policy/v1beta1 PodSecurityPolicy was removed in Kubernetes 1.25; use Pod Security Admission"]


def test_shipped_old_schemas_are_the_two_old_versions_only():
    assert sorted(os.listdir(SCHEMAS)) == ["README.md", "v1.23.0-local-strict", "v1.24.0-local-strict"]
    for folder in ("v1.23.0-local-strict", "v1.24.0-local-strict"):
        assert "_definitions.json" in os.listdir(os.path.join(SCHEMAS, folder))
    assert validate.supported_versions()[:3] == ["1.23", "1.24", "1.25"]


@pytest.mark.parametrize("version", OLD_VERSIONS)
def test_render_py_validates_the_repository_for_an_old_cluster(version):
    """What `make install` does first against a 1.23/1.24 server: no extra set-up needed."""
    env = {k: v for k, v in os.environ.items() if k != "VARS_FILE"}
    result = subprocess.run([sys.executable, os.path.join(ROOT, "render.py"), "validate"], cwd=ROOT,
                            env={**env, "KUBE_VERSION": f"{version}.7"}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "  pod-security: 10 objects" in result.stdout.splitlines()
    assert result.stdout.splitlines()[-1].endswith(f"valid for Kubernetes {version}.7")


# --- every component on 1.23 and 1.24 -------------------------------------------

@pytest.mark.parametrize("version", OLD_VERSIONS)
def test_every_component_renders_and_validates_where_it_declares_support(repo_vars, version):
    objects, skipped, report = build(repo_vars(), version)
    assert [str(e) for e in report.errors] == []
    assert report.unvalidated == []
    rendered = {o.component for o in objects}
    declared = {c.name for c in components.discover(MANIFESTS, repo_vars())} - set(skipped)
    assert {"namespace", "pod-security", "data-sync"} <= rendered
    assert rendered <= declared


# --- data-sync: privileged namespace, PSP on old versions, one volume per name ---

@pytest.mark.parametrize("version", ["1.23", "1.24", "1.25", "newest"])
def test_data_sync_namespace_and_psp_binding(repo_vars, version):
    version = validate.supported_versions()[-1] if version == "newest" else version
    objects, _, report = build(repo_vars(), version, {"data-sync"})
    assert report.errors == []
    got = by_kind(objects, "data-sync")
    labels = got["Namespace"][("", "data-sync")]["metadata"]["labels"]
    assert {labels[f"pod-security.kubernetes.io/{m}"] for m in ("enforce", "audit", "warn")} == {"privileged"}
    assert all(ns == "data-sync" for kind, objs in got.items() if kind != "Namespace" for ns, _ in objs)
    if version in OLD_VERSIONS:
        binding = got["RoleBinding"][("data-sync", "data-sync-psp")]
        assert binding["roleRef"]["name"] == "privileged-psp"
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "data-sync", "namespace": "data-sync"}]
    else:
        assert "RoleBinding" not in got


def test_data_sync_statefulset_follows_its_variables(repo_vars):
    values = repo_vars(DATA_SYNC_VOLUMES="admin  share backup", DATA_SYNC_CLUSTER_SIZE="2",
                       DATA_SYNC_SECRET="sync-keys", VERSION_DATA_SYNC="2.53.8-4.14.2-r2",
                       K8S_VOLUMES_PATH="/srv/volumes")
    objects, _, report = build(values, "1.31", {"data-sync"})
    assert report.errors == []
    got = by_kind(objects, "data-sync")
    sts = got["StatefulSet"][("data-sync", "data-sync")]["spec"]
    service = got["Service"][("data-sync", "data-sync")]["spec"]
    assert sts["serviceName"] == "data-sync" and service["clusterIP"] == "None"
    assert [(p["port"], p["targetPort"]) for p in service["ports"]] == [(22, "ssh")]
    assert sts["replicas"] == 2
    pod = sts["template"]["spec"]
    assert pod["nodeSelector"] == {"service.data-sync": "allow"}
    anti = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti == [{"topologyKey": "kubernetes.io/hostname",
                     "labelSelector": {"matchLabels": sts["selector"]["matchLabels"]}}]
    (container,) = pod["containers"]
    assert container["image"] == "docker.io/instantlinux/data-sync:2.53.8-4.14.2-r2"
    assert container["resources"]["requests"]
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for name in ("admin", "share", "backup"):
        assert mounts[f"sync-{name}"] == f"/var/data-sync/{name}"
        assert volumes[f"sync-{name}"]["hostPath"] == {"path": f"/srv/volumes/{name}", "type": "Directory"}
    assert volumes["ssh-keys"]["secret"]["secretName"] == "sync-keys"
    env = {e["name"]: e for e in container["env"]}
    assert {env[k]["valueFrom"]["secretKeyRef"]["name"] for k in ("PUBKEY1", "PUBKEY2")} == {"sync-keys"}
    assert env["SYNC_INTERVAL"]["value"] == "5"
    prf = got["ConfigMap"][("data-sync", "data-sync")]["data"]["common.prf"]
    assert "prefer = newer" in prf and "sshargs = -i /root/.ssh/data-sync.rsa" in prf
    assert "root =" not in prf  # the image writes the roots itself


# --- on the real control plane ---------------------------------------------------
#
# The session's control plane (conftest's `control_plane`) runs kube-apiserver 1.37 with
# the PodSecurity admission plugin and no admission configuration of its own: a namespace
# without labels is privileged there, one with labels gets exactly what they say.

PRIVILEGED_POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "privileged"},
                  "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                                           "securityContext": {"privileged": True}}]}}
ROOT_POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "root"},  # baseline, not restricted
            "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}
RESTRICTED_POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "restricted"}, "spec": {
    "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10", "securityContext": {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}}
WORKLOADS = ("Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job", "CronJob", "Pod")
ADMIN_CONTEXT = "kubernetes-admin@kubernetes"


def render_py(plane, *args, **env):
    """render.py ARGS in the repository, as `make` runs it, against `plane` (the admin context)."""
    full = {k: v for k, v in os.environ.items() if k not in ("VARS_FILE", "MAKEFLAGS", "MAKELEVEL", "KUBECONFIG")
            and not k.startswith(("K8S_", "PSA_"))}
    full.update(KUBECONFIG=plane.kubeconfig, ADMIN_CTX=ADMIN_CONTEXT, **env)
    return subprocess.run([sys.executable, os.path.join(ROOT, "render.py"), *args], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=600)


def kubectl(plane, *args, stdin=None, check=True):
    result = subprocess.run(["kubectl", "--kubeconfig", plane.kubeconfig, *args], input=stdin,
                            capture_output=True, text=True, timeout=180)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def admit(plane, namespace, pod, dry_run=False):
    """(admitted, the API server's warnings and refusal): `pod` created in `namespace`."""
    pod = {**pod, "metadata": {**pod["metadata"], "namespace": namespace}}
    result = kubectl(plane, "create", "-f", "-", "-o", "name", *(["--dry-run=server"] if dry_run else []),
                     stdin=json.dumps(pod), check=False)
    return result.returncode == 0, result.stderr.strip()


@pytest.mark.parametrize("level", ["restricted", "baseline"])
def test_the_user_namespace_enforces_its_level_on_the_real_server(control_plane, level):
    """The namespace component as the toolkit renders and applies it (PSA_USER_LEVEL, pinned to
    PSA_VERSION): a privileged pod is refused, a pod within the level is admitted without a warning."""
    namespace = f"psa-{level}-{os.urandom(4).hex()}"
    env = {"K8S_NAMESPACE": namespace}
    if level != "restricted":  # restricted is the repository's default
        env["PSA_USER_LEVEL"] = level
    applied = render_py(control_plane, "apply", "namespace", **env)
    try:
        assert applied.returncode == 0, applied.stdout + applied.stderr
        labels = control_plane.get(f"/api/v1/namespaces/{namespace}")["metadata"]["labels"]
        version = variables.load_variables(os.path.join(ROOT, "Makefile.vars"), environ={})["PSA_VERSION"].value
        assert {k: v for k, v in labels.items() if k.startswith("pod-security.kubernetes.io/")} == {
            **{f"pod-security.kubernetes.io/{mode}": level for mode in ("enforce", "audit", "warn")},
            **{f"pod-security.kubernetes.io/{mode}-version": version for mode in ("enforce", "audit", "warn")}}

        admitted, said = admit(control_plane, namespace, PRIVILEGED_POD)
        assert not admitted
        assert f'violates PodSecurity "{level}:{version}": privileged (container "c" must not set ' \
               'securityContext.privileged=true)' in said, said
        assert control_plane.get(f"/api/v1/namespaces/{namespace}/pods/privileged", check=False) is None

        admitted, said = admit(control_plane, namespace, ROOT_POD)
        if level == "restricted":
            assert not admitted and f'violates PodSecurity "restricted:{version}"' in said, said
        else:
            assert (admitted, said) == (True, ""), said

        admitted, said = admit(control_plane, namespace, RESTRICTED_POD)
        assert (admitted, said) == (True, ""), said
        assert control_plane.get(f"/api/v1/namespaces/{namespace}/pods/restricted")["metadata"]["name"]
    finally:
        deleted = render_py(control_plane, "delete", "namespace", "--yes", **env)
        assert deleted.returncode == 0, deleted.stdout + deleted.stderr


def install_components(version):
    """The components of the install set on a cluster of `version` (cert-manager and gateway-api
    only once vendored), dependencies first."""
    values = {**{n: v.value for n, v in variables.load_variables(os.path.join(ROOT, "Makefile.vars"),
                                                                  environ={}).items()}, "KUBE_VERSION": version}
    found = order.component_order(components.discover(MANIFESTS, values))
    selected = [c for c in found if c.install and c.supports(version) and not vendor.not_vendored(c, VENDOR)]
    return selected, render.render_components(selected, values, vendor_root=VENDOR)


def pod_security(namespace_obj, defaults):
    """mode -> (level, version) a namespace gets: its labels, else the cluster's defaults."""
    labels = (namespace_obj or {}).get("metadata", {}).get("labels") or {}
    found = {}
    for mode in podsecurity.MODES:
        level = labels.get(f"pod-security.kubernetes.io/{mode}")
        if level:
            found[mode] = (level, labels.get(f"pod-security.kubernetes.io/{mode}-version", "latest"))
        else:
            found[mode] = defaults[mode]
    return found


def pod_of(workload):
    """The Pod a workload's controller creates from its template (a CronJob's through its Job)."""
    spec = workload.data["spec"]
    if workload.kind == "Pod":
        return copy.deepcopy(workload.data)
    if workload.kind == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    template = copy.deepcopy(spec["template"])
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"psa-{workload.name}"[:63], "labels": template.get("metadata", {}).get("labels", {})},
            "spec": template["spec"]}


def audit_events(plane, since, namespaces):
    """The audit log's events after `since` (RFC 3339) about objects in `namespaces`."""
    events = []
    with open(plane.audit_log) as f:
        for line in f:
            event = json.loads(line)
            ref = event.get("objectRef") or {}
            if ref.get("namespace") in namespaces and event.get("requestReceivedTimestamp", "") >= since:
                events.append(event)
    return events


def test_every_shipped_workload_is_admitted_in_its_namespace(control_plane):
    """`make install` on the real control plane, data-sync included: every workload's pods are
    created (the controllers' creates pass Pod Security admission in the namespace the
    toolkit labelled), the API server warns about none of them, and its audit log records no
    violation of a namespace's audit level.

    Namespaces without labels get the cluster-wide defaults of the toolkit's admission
    configuration (podsecurity.admission_configuration, exemptions included), which this
    control plane does not load: their workloads are checked in a scratch namespace that
    carries those defaults as labels.

    The install set is cluster-wide (fixed namespaces, ClusterRoles, an APIService that
    nothing serves here and that blocks namespace deletion while it exists): the test
    deletes all of it again, the APIService first.
    """
    import datetime

    version = "{major}.{minor}".format(**control_plane.get("/version"))
    selected, objects = install_components(version)
    names = [c.name for c in selected]
    namespaces = {o.name: o.data for o in objects if o.kind == "Namespace"}
    workloads = [o for o in objects if o.kind in WORKLOADS]
    assert {w.component for w in workloads} >= {"flannel", "ingress-nginx", "dashboard", "data-sync",
                                                "metrics-server"}
    config = podsecurity.admission_configuration({**{n: v.value for n, v in variables.load_variables(
        os.path.join(ROOT, "Makefile.vars"), environ={}).items()}, "KUBE_VERSION": version})
    plugin = config["plugins"][0]["configuration"]
    defaults = {mode: (plugin["defaults"][mode], plugin["defaults"][f"{mode}-version"]) for mode in podsecurity.MODES}
    exempt = set(plugin["exemptions"]["namespaces"])
    not_ready = [n["metadata"]["name"] for n in control_plane.get("/api/v1/nodes")["items"]
                 if not any(c["type"] == "Ready" and c["status"] == "True"
                            for c in (n.get("status") or {}).get("conditions") or [])]
    assert not_ready == [], "DaemonSets would wait for pods on these nodes forever (left by another test?)"
    since = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    scratch = f"psa-defaults-{os.urandom(4).hex()}"
    try:
        installed = render_py(control_plane, "install", "--timeout", "180")
        assert installed.returncode == 0, installed.stdout + installed.stderr
        # data-sync waits for its Secret in `make install`; its pods are admitted (or not) as soon as
        # its StatefulSet exists: no node is labelled for it here, so it is applied without waiting
        assert "data-sync: skipped until Secret data-sync/" in installed.stdout
        synced = render_py(control_plane, "apply", "data-sync")
        assert synced.returncode == 0, synced.stdout + synced.stderr
        kubectl(control_plane, "create", "namespace", scratch)
        kubectl(control_plane, "label", "namespace", scratch,
                *(f"pod-security.kubernetes.io/{mode}={level}" for mode, (level, _) in defaults.items()),
                *(f"pod-security.kubernetes.io/{mode}-version={v}" for mode, (_, v) in defaults.items()))

        problems = []
        for w in workloads:
            policy = pod_security(namespaces.get(w.namespace), defaults)
            where = w.namespace
            if w.namespace not in namespaces:  # not the toolkit's namespace: the cluster's defaults
                if w.namespace in exempt:
                    policy = "exempt"
                else:
                    where = scratch
            # the real admission of what its controller created: a pod of it exists, or its
            # controller's FailedCreate events say why not
            selector = ",".join(f"{k}={v}" for k, v in pod_of(w)["metadata"]["labels"].items())

            def created_or_refused(namespace=w.namespace, selector=selector, name=w.name):
                pods = control_plane.get(f"/api/v1/namespaces/{namespace}/pods?labelSelector={selector}")["items"]
                # a Job that removes itself when done (ttlSecondsAfterFinished) takes its pods
                # along; its controller's SuccessfulCreate event stays
                pods = pods or [e for e in control_plane.get(
                    f"/api/v1/namespaces/{namespace}/events?fieldSelector=reason=SuccessfulCreate")["items"]
                    if e["involvedObject"].get("name") == name and e["involvedObject"].get("kind") == "Job"]
                refused = [e["message"] for e in control_plane.get(
                    f"/api/v1/namespaces/{namespace}/events?fieldSelector=reason=FailedCreate")["items"]
                    if "PodSecurity" in e.get("message", "")]
                return (pods, refused) if pods or refused else None

            pods, refused = wait_for(created_or_refused, timeout=60, what=f"a pod of {w.ref}")
            if refused or not pods:
                problems.append(f"{w.ref} in {w.namespace} ({policy}): no pod; {refused}")
            # what the API server says of such a pod in its namespace: no refusal, no warning
            pod = pod_of(w)
            if where == scratch:  # its ServiceAccount is not there: that check is not Pod Security's
                for key in ("serviceAccountName", "serviceAccount"):
                    pod["spec"].pop(key, None)
            admitted, said = admit(control_plane, where, pod, dry_run=True)
            if not admitted or said:
                problems.append(f"{w.ref} in {where} ({policy}): {said}")
        events = audit_events(control_plane, since, {w.namespace for w in workloads})
        # what the audit level of each namespace found (annotations of the audit log)
        for event in events:
            found = {k: v for k, v in (event.get("annotations") or {}).items()
                     if k.startswith("pod-security.kubernetes.io/audit-violations")}
            ref = event["objectRef"]
            if found:
                problems.append(f"{event['verb']} {ref.get('resource')} {ref.get('namespace')}/{ref.get('name')}: "
                                f"{found}")
        # and under which policy PodSecurity admitted the pods the controllers created
        enforced = {}
        for event in events:
            ref = event["objectRef"]
            if (event["verb"], ref.get("resource"), ref.get("subresource")) == ("create", "pods", None) \
                    and event["user"]["username"].startswith("system:serviceaccount:kube-system:") \
                    and (event.get("responseStatus") or {}).get("code") == 201:
                enforced.setdefault(ref["namespace"], set()).add(
                    (event.get("annotations") or {}).get("pod-security.kubernetes.io/enforce-policy"))
        expected = {}
        for w in workloads:
            level, level_version = pod_security(namespaces.get(w.namespace), {
                mode: ("privileged", "latest") for mode in podsecurity.MODES})["enforce"]  # this plane's defaults
            expected[w.namespace] = {f"{level}:{level_version}"}
        assert enforced == expected
        assert problems == []
    finally:
        kubectl(control_plane, "delete", "namespace", scratch, "--ignore-not-found", "--wait=false", check=False)
        services = [o.data for o in objects if o.kind == "APIService"]
        if services:  # first: while nothing serves it, no namespace finishes terminating
            kubectl(control_plane, "delete", "-f", "-", "--ignore-not-found", stdin=emit.to_yaml(services))
        deleted = render_py(control_plane, "delete", *names, "--timeout", "180", "--yes")
        assert deleted.returncode == 0, deleted.stdout + deleted.stderr

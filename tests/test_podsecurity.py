"""Pod security: the PSA admission file (1.25+), the PodSecurityPolicies (1.23-1.24),
data-sync's privileged namespace, and every component on 1.23 and 1.24.

kubernetes-validate 1.37 only has schemas for 1.25 and newer; k8s/schemas
holds the 1.23 and 1.24 ones this repo's components need (see its README).
"""

import os
import subprocess
import sys

import pytest
import yaml

from k8s import components, order, podsecurity, render, validate, variables, vendor
from k8s.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMAS = os.path.join(ROOT, "k8s", "schemas")
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

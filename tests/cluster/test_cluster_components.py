"""The shipped components: every version, every variant, the security rules, `make install`.

Rendering uses the repository's own Makefile.vars, untouched by the
environment, so the defaults users get are the ones tested; `make install`
runs against the session's real control plane.
"""

import json
import os
import subprocess

import pytest

from k8s.cluster import apply
from k8s.core import components, emit, order, render, validate, variables, vendor

from ..conftest import ROOT

MANIFESTS = os.path.join(ROOT, "manifests")
VENDOR = os.path.join(ROOT, "vendor")  # components whose imports were never vendored are left out
VERSIONS = [f"1.{minor}" for minor in range(25, 38)]
VARIANTS = {
    "defaults": {},
    "kubernetes-dashboard": {"DASHBOARD": "kubernetes-dashboard"},
    "ingress daemonset on host network": {"INGRESS_KIND": "DaemonSet", "INGRESS_SERVICE_TYPE": "hostNetwork"},
    "ingress load balancer with webhook": {"INGRESS_SERVICE_TYPE": "LoadBalancer",
                                           "INGRESS_ADMISSION_WEBHOOK": "true",
                                           "INGRESS_DEFAULT_CLASS": "false"},
    "host-gw, insecure kubelet tls, long-lived token": {
        "FLANNEL_BACKEND": "host-gw", "METRICS_SERVER_INSECURE_TLS": "true",
        "LONG_LIVED_USER_TOKEN": "true", "LOCAL_STORAGE_DEFAULT": "false"},
}
WORKLOADS = {"Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob", "Pod"}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "*"}


def repo_values(**overrides):
    found = variables.load_variables(os.path.join(ROOT, "Makefile.vars"), environ={"HOME": "/root"})
    return {**{name: v.value for name, v in found.items()}, **overrides}


def build(version, **overrides):
    values = repo_values(KUBE_VERSION=version, **overrides)
    found = order.component_order(components.discover(MANIFESTS, values))
    selected = [c for c in found if c.supports(version) and not vendor.not_vendored(c, VENDOR)]
    objects = render.render_components(selected, values, vendor_root=VENDOR)
    report = validate.validate([(o.data, o.source) for o in objects], version)
    return objects, report


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_component_validates_strictly_on_every_version(version, variant):
    objects, report = build(version, **VARIANTS[variant])
    assert [str(e) for e in report.errors] == []
    assert report.unvalidated == []
    assert {o.component for o in objects} >= {"namespace", "flannel", "ingress-nginx", "dashboard",
                                              "local-storage", "metrics-server", "data-sync"}
    assert not any(o.component == "pod-security" for o in objects)  # the PSP path never on 1.25+


def pod_specs(objects):
    for o in objects:  # our own manifests: vendored upstream files follow upstream's choices
        if o.kind in WORKLOADS and not o.source.file.startswith(VENDOR + os.sep):
            spec = o.data["spec"]
            if o.kind == "CronJob":
                spec = spec["jobTemplate"]["spec"]
            yield o, (spec.get("template") or {}).get("spec") or spec


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def rendered(request):
    return build(VERSIONS[-1], **VARIANTS[request.param])[0]


def test_no_binding_to_cluster_admin(rendered):
    bound = [o.ref for o in rendered if o.kind in ("ClusterRoleBinding", "RoleBinding")
             and o.data["roleRef"]["name"] == "cluster-admin"]
    assert bound == []


def test_the_user_namespace_enforces_restricted(rendered):
    [namespace] = [o for o in rendered if o.kind == "Namespace" and o.name == "worker"]
    labels = namespace.data["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce-version"].startswith("v1.")


def test_dashboards_have_no_write_verbs_on_secrets(rendered):
    roles = {(o.kind, o.namespace, o.name): o for o in rendered if o.kind in ("Role", "ClusterRole")}
    dashboard_roles = set()
    for o in rendered:
        if o.kind in ("RoleBinding", "ClusterRoleBinding") and o.component == "dashboard":
            ref = o.data["roleRef"]
            dashboard_roles.add((ref["kind"], o.namespace if ref["kind"] == "Role" else None, ref["name"]))
    for key in dashboard_roles:
        role = roles.get(key)
        assert role is not None or key[2] in ("view",), key  # built-in view has no secrets
        for rule in (role.data.get("rules") or []) if role else []:
            if "secrets" in rule.get("resources", []) or "*" in rule.get("resources", []):
                writes = set(rule["verbs"]) & WRITE_VERBS
                # The Kubernetes Dashboard keeps its own named secrets (csrf, key holder, certs).
                assert not writes or rule.get("resourceNames"), (key, rule)


def test_every_container_sets_resource_requests(rendered):
    for o, spec in pod_specs(rendered):
        for c in spec.get("initContainers", []) + spec["containers"]:
            requests = (c.get("resources") or {}).get("requests") or {}
            assert requests.get("cpu") and requests.get("memory"), f"{o.ref} container {c['name']}"


def test_images_carry_explicit_tags_never_latest(rendered):
    for o, spec in pod_specs(rendered):
        for c in spec.get("initContainers", []) + spec["containers"]:
            name, _, tag = c["image"].partition("@")[0].rpartition(":")  # a digest beside the tag
            assert name and tag and "/" not in tag and tag != "latest", f"{o.ref}: {c['image']}"


def kubectl(plane, *args, stdin=None):
    """kubectl as the cluster admin; its stdout."""
    result = subprocess.run(["kubectl", "--kubeconfig", plane.kubeconfig, *args], input=stdin,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    return result.stdout


def server_version(plane):
    info = plane.get("/version")
    return f"{info['major']}.{info['minor'].rstrip('+')}"


def install_set(version):
    """The objects `make install` applies on a cluster of `version`, without data-sync (its
    Secret does not exist), in the order it applies them."""
    values = repo_values(KUBE_VERSION=version)
    found = order.component_order(components.discover(MANIFESTS, values))
    selected = [c for c in found if c.supports(version) and c.install and c.name != "data-sync"
                and not vendor.not_vendored(c, VENDOR)]
    objects = render.render_components(selected, values, vendor_root=VENDOR)
    return [o for tier in order.tiers(objects, [c.name for c in selected]) for o in tier]


def stored(plane, objects):
    """(kind, namespace, name) -> the object as the real server stores it."""
    text = kubectl(plane, "get", "-f", "-", "-o", "json", stdin=emit.to_yaml([o.data for o in objects]))
    return {(i["kind"], i["metadata"].get("namespace"), i["metadata"]["name"]): i for i in json.loads(text)["items"]}


def uninstall(plane, objects):
    """Delete what `make install` created and wait until it is gone. The APIService goes
    first: nothing serves it here, and while it exists no namespace can finish terminating."""
    services = [o.data for o in objects if o.kind == "APIService"]
    if services:
        kubectl(plane, "delete", "-f", "-", "--ignore-not-found", stdin=emit.to_yaml(services))
    kubectl(plane, "delete", "-f", "-", "--ignore-not-found", "--timeout=150s",
            stdin=emit.to_yaml([o.data for o in objects]))


def versions(found):
    return {key: o["metadata"]["resourceVersion"] for key, o in found.items()}


def require_ready_nodes(plane):
    """Fail at once, rather than after a rollout's 300 s timeout, when the simulated nodes
    that run the pods are not Ready."""
    def ready(node):
        return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions") or [])

    nodes = plane.get("/api/v1/nodes")["items"]
    not_ready = [n["metadata"]["name"] for n in nodes if not ready(n)]
    if not_ready or not nodes:
        pytest.fail(f"the control plane's simulated nodes are not Ready: {', '.join(not_ready) or 'none'} "
                    f"(see {plane.workdir}/nodes.log)")


def test_make_install_applies_the_rendered_set_in_order_and_a_second_run_changes_nothing(control_plane):
    """`make install` on the session's real control plane. Its components are cluster-wide
    (namespaces, ClusterRoles, an APIService), so the test removes all of them, before (what
    an earlier test may have left) and after."""
    objects = install_set(server_version(control_plane))
    require_ready_nodes(control_plane)
    uninstall(control_plane, objects)
    env = {k: v for k, v in os.environ.items() if k not in ("VARS_FILE", "MAKEFLAGS", "MAKELEVEL")}
    env.update(KUBECONFIG=control_plane.kubeconfig, ADMIN_CTX="kubernetes-admin@kubernetes")
    try:
        first = subprocess.run(["make", "-s", "install"], cwd=ROOT, env=env, capture_output=True, text=True)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "data-sync: skipped until Secret data-sync/data-sync-ssh exists" in first.stdout
        applied = [line.rsplit(" ", 1)[0] for line in first.stdout.splitlines()[:-1]
                   if line.endswith(" created")]
        assert first.stdout.splitlines()[-1] == f"{len(objects)} created"
        assert sorted(applied) == sorted(o.display for o in objects)
        position = {display: i for i, display in enumerate(applied)}
        names = list(dict.fromkeys(o.component for o in objects))
        for name in names:  # inside a component the tiers hold; it starts once its dependencies are done
            mine = [o.display for o in objects if o.component == name]
            assert sorted(mine, key=position.get) == mine, name
            assert f"  {name}: ready" in first.stdout
        found = {c.name: c for c in components.discover(MANIFESTS, repo_values())}
        for name in names:
            for dep in found[name].depends:
                if dep in names:
                    assert max(position[o.display] for o in objects if o.component == dep) < \
                        min(position[o.display] for o in objects if o.component == name), (dep, name)
        # The certgen Jobs remove themselves once done (ttlSecondsAfterFinished: 0); each run
        # creates them again, so that a changed Job never meets its immutable predecessor.
        jobs = [o for o in objects if o.kind == "Job"]
        assert {o.name for o in jobs} == {"ingress-nginx-admission-create", "ingress-nginx-admission-patch"}
        objects = [o for o in objects if o.kind != "Job"]
        on_server = stored(control_plane, objects)
        webhook = on_server[("ValidatingWebhookConfiguration", None, "ingress-nginx-admission")]
        assert webhook["webhooks"][0]["clientConfig"]["caBundle"]  # the patch Job ran
        for o in objects:
            found = on_server.get((o.kind, o.namespace, o.name))
            assert found is not None, o.ref
            assert found["metadata"]["labels"][apply.COMPONENT_LABEL] == o.component

        second = subprocess.run(["make", "-s", "install"], cwd=ROOT, env=env, capture_output=True, text=True)
        assert second.returncode == 0, second.stdout + second.stderr
        assert second.stdout.splitlines()[-1] == f"{len(jobs)} created, {len(objects)} unchanged"
        assert versions(stored(control_plane, objects)) == versions(on_server)
    finally:
        uninstall(control_plane, objects)

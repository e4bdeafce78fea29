"""The API server stand-in (tests/apiserver), driven only through the real `kubernetes` client."""

import json
import time

import pytest
import urllib3
import yaml
from kubernetes import config as kube_config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import (ConflictError, ForbiddenError, NotFoundError, ResourceNotFoundError,
                                           UnauthorizedError)

from tests.apiserver import ADMIN_CONTEXT, DEMO_CONTEXT, apiserver, apiserver_factory, write_kubeconfig  # noqa: F401

APPLY = "application/apply-patch+yaml"


# -- helpers: what an apply engine would do with the official client ---------------------------------

def connect(server, tmp_path, context=ADMIN_CONTEXT, **configure):
    """An ApiClient + DynamicClient configured from a kubeconfig file, as the engine would build them."""
    path = server.kubeconfig(tmp_path / "kubeconfig")
    api = kube_config.new_client_from_config(config_file=path, context=context)
    for key, value in configure.items():
        setattr(api.configuration, key, value)
    return api, DynamicClient(api, cache_file=str(tmp_path / f"discovery-{context}.json"))


def call(api, method, path, body=None, query=(), content_type="application/json"):
    """Raw ApiClient.call_api; -> (status, parsed body, headers). Does not raise on HTTP errors."""
    request = api.param_serialize(method, path, query_params=list(query),
                                  header_params={"Content-Type": content_type, "Accept": "application/json"},
                                  body=body, auth_settings=["BearerToken"])
    response = api.call_api(*request)
    response.read()
    return response.status, json.loads(response.data or b"null"), response.headers


def apply(api, path, body, manager="engine", force=False, dry_run=False):
    query = [("fieldManager", manager)]
    if force:
        query.append(("force", "true"))
    if dry_run:
        query.append(("dryRun", "All"))
    return call(api, "PATCH", path, body, query, content_type=APPLY)


def deployment(name="web", namespace="default", replicas=2, image="nginx:1.27", labels=None):
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": image}]}}},
    }


def deployment_path(name="web", namespace="default"):
    return f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"


def configmap(name="settings", namespace="default", data=None, labels=None):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, **({"labels": labels} if labels else {})},
            "data": data or {"key": "value"}}


def wait_until(fn, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = fn()
        except (NotFoundError, ResourceNotFoundError):
            result = None
        if result:
            return result
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# -- discovery ---------------------------------------------------------------------------------------

BUILTIN_KINDS = [
    ("v1", "Namespace", False), ("v1", "Node", False), ("v1", "ServiceAccount", True), ("v1", "Secret", True),
    ("v1", "ConfigMap", True), ("v1", "Service", True), ("v1", "Endpoints", True), ("v1", "Pod", True),
    ("v1", "PersistentVolume", False), ("v1", "PersistentVolumeClaim", True), ("v1", "LimitRange", True),
    ("v1", "ResourceQuota", True), ("v1", "Event", True),
    ("apps/v1", "Deployment", True), ("apps/v1", "DaemonSet", True), ("apps/v1", "StatefulSet", True),
    ("apps/v1", "ReplicaSet", True), ("batch/v1", "Job", True), ("batch/v1", "CronJob", True),
    ("rbac.authorization.k8s.io/v1", "Role", True), ("rbac.authorization.k8s.io/v1", "ClusterRole", False),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", False),
    ("networking.k8s.io/v1", "Ingress", True), ("networking.k8s.io/v1", "IngressClass", False),
    ("networking.k8s.io/v1", "NetworkPolicy", True), ("storage.k8s.io/v1", "StorageClass", False),
    ("policy/v1", "PodDisruptionBudget", True), ("autoscaling/v2", "HorizontalPodAutoscaler", True),
    ("scheduling.k8s.io/v1", "PriorityClass", False),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition", False),
    ("apiregistration.k8s.io/v1", "APIService", False),
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", False),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", False),
    ("coordination.k8s.io/v1", "Lease", True),
]


def test_discovery_lists_the_builtin_kinds(apiserver, tmp_path):
    api, dyn = connect(apiserver, tmp_path)
    assert dyn.version["kubernetes"]["gitVersion"] == "v1.31.2"
    for api_version, kind, namespaced in BUILTIN_KINDS:
        res = dyn.resources.get(api_version=api_version, kind=kind)
        assert res.namespaced is namespaced, kind
        assert {"get", "list", "patch", "delete"} <= set(res.verbs), kind
    assert dyn.resources.get(api_version="apps/v1", kind="Deployment").short_names == ["deploy"]
    assert "status" in dyn.resources.get(api_version="apps/v1", kind="Deployment").subresources

    status, groups, _ = call(api, "GET", "/apis")
    autoscaling = next(g for g in groups["groups"] if g["name"] == "autoscaling")
    assert autoscaling["preferredVersion"]["version"] == "v2"
    status, core, _ = call(api, "GET", "/api/v1")
    assert status == 200 and core["groupVersion"] == "v1"
    scale = next(r for r in call(api, "GET", "/apis/apps/v1")[1]["resources"] if r["name"] == "deployments/scale")
    assert scale["kind"] == "Scale"
    assert call(api, "GET", "/apis/example.com/v1")[0] == 404


def test_kubeconfig_contexts_tokens_401_and_403(apiserver_factory, tmp_path):
    server = apiserver_factory(check_tokens=True)
    with open(server.kubeconfig(tmp_path / "kubeconfig")) as f:
        kubeconfig = yaml.safe_load(f)
    assert {c["name"] for c in kubeconfig["contexts"]} == {ADMIN_CONTEXT, DEMO_CONTEXT}
    assert kubeconfig["clusters"][0]["cluster"]["server"] == server.url

    admin, _ = connect(server, tmp_path)
    _, demo_dyn = connect(server, tmp_path, context=DEMO_CONTEXT)
    configmaps = demo_dyn.resources.get(api_version="v1", kind="ConfigMap")
    configmaps.create(body=configmap(), namespace="default")
    assert {r.user for r in server.find_requests(method="POST")} == {"demo-user"}

    server.forbid("demo-user", verbs=["patch", "create"], namespaces=["kube-system"])
    with pytest.raises(ForbiddenError) as forbidden:
        configmaps.create(body=configmap(namespace="kube-system"), namespace="kube-system")
    assert 'User "demo-user" cannot create resource "configmaps"' in json.loads(forbidden.value.body)["message"]
    admin_path = "/api/v1/namespaces/kube-system/configmaps/settings"
    assert apply(admin, admin_path, configmap(namespace="kube-system"))[0] == 201

    bad = write_kubeconfig(tmp_path / "bad-kubeconfig", server.url, {"kubernetes-admin": "wrong-token"})
    intruder = kube_config.new_client_from_config(config_file=bad, context=ADMIN_CONTEXT)
    code, status, _ = call(intruder, "GET", "/api/v1/namespaces/default/configmaps")
    assert (code, status["reason"]) == (401, "Unauthorized")
    with pytest.raises(UnauthorizedError):
        DynamicClient(intruder, cache_file=str(tmp_path / "intruder.json"))


# -- server-side apply ---------------------------------------------------------------------------------

def test_apply_create_noop_and_change(apiserver, tmp_path):
    api, _ = connect(apiserver, tmp_path)
    code, created, _ = apply(api, deployment_path(), deployment())
    assert code == 201
    meta = created["metadata"]
    assert meta["generation"] == 1 and meta["uid"] and meta["creationTimestamp"]
    assert [(m["manager"], m["operation"]) for m in meta["managedFields"]] == [("engine", "Apply")]
    assert meta["managedFields"][0]["fieldsV1"]["f:spec"]["f:replicas"] == {}

    code, same, _ = apply(api, deployment_path(), yaml.safe_dump(deployment()))  # a YAML body this time
    assert code == 200 and same["metadata"]["resourceVersion"] == meta["resourceVersion"]

    code, changed, _ = apply(api, deployment_path(), deployment(replicas=3))
    assert code == 200 and changed["spec"]["replicas"] == 3
    assert int(changed["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    assert changed["metadata"]["generation"] == 2

    # metadata-only change: a new resourceVersion, the same generation
    code, relabelled, _ = apply(api, deployment_path(), deployment(replicas=3, labels={"app": "web", "tier": "fe"}))
    assert relabelled["metadata"]["generation"] == 2
    assert relabelled["metadata"]["resourceVersion"] != changed["metadata"]["resourceVersion"]
    # a field that the manager stops applying is removed
    code, pruned, _ = apply(api, deployment_path(), deployment(replicas=3))
    assert pruned["metadata"]["labels"] == {"app": "web"}
    assert apiserver.get("Deployment", "web", "default")["metadata"]["labels"] == {"app": "web"}


def test_apply_validations_of_the_request(apiserver, tmp_path):
    api, _ = connect(apiserver, tmp_path)
    code, status, _ = call(api, "PATCH", deployment_path(), deployment(), content_type=APPLY)  # no fieldManager
    assert code == 422 and status["kind"] == "Status" and "fieldManager" in status["message"]
    code, status, _ = apply(api, deployment_path("other"), deployment())
    assert code == 400 and "does not match the name" in status["message"]
    code, status, _ = apply(api, deployment_path(namespace="missing"), deployment(namespace="missing"))
    assert (code, status["reason"], status["message"]) == (404, "NotFound", 'namespaces "missing" not found')
    code, status, _ = apply(api, deployment_path("Bad_Name"), deployment("Bad_Name"))
    assert code == 422 and status["reason"] == "Invalid"


def test_dry_run_changes_nothing(apiserver, tmp_path):
    api, _ = connect(apiserver, tmp_path)
    code, would_be, _ = apply(api, deployment_path(), deployment(), dry_run=True)
    assert code == 201 and would_be["spec"]["replicas"] == 2
    assert apiserver.objects(kind="Deployment") == []
    assert apiserver.writes() == []

    _, created, _ = apply(api, deployment_path(), deployment())
    code, would_be, _ = apply(api, deployment_path(), deployment(replicas=5), dry_run=True)
    assert code == 200 and would_be["spec"]["replicas"] == 5
    stored = apiserver.get("Deployment", "web", "default")
    assert stored["spec"]["replicas"] == 2
    assert stored["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert len(apiserver.writes()) == 1


def test_conflicts_between_managers(apiserver, tmp_path):
    api, dyn = connect(apiserver, tmp_path)
    apply(api, deployment_path(), deployment(replicas=2))

    code, status, _ = apply(api, deployment_path(), deployment(replicas=5), manager="kubectl")
    assert code == 409 and status["kind"] == "Status" and status["reason"] == "Conflict"
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "engine": .spec.replicas'
    assert status["details"]["causes"][0]["field"] == ".spec.replicas"
    # the same values are shared without conflict
    assert apply(api, deployment_path(), deployment(replicas=2), manager="kubectl")[0] == 200

    code, forced, _ = apply(api, deployment_path(), deployment(replicas=5), manager="kubectl", force=True)
    assert code == 200 and forced["spec"]["replicas"] == 5
    code, status, _ = apply(api, deployment_path(), deployment(replicas=2))
    assert code == 409 and 'conflict with "kubectl"' in status["message"]

    # an Update (e.g. `kubectl scale` via a merge patch) takes ownership, too
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    deployments.patch(name="web", namespace="default", body={"spec": {"replicas": 7}},
                      content_type="application/merge-patch+json", field_manager="scaler")
    with pytest.raises(ConflictError) as conflict:
        deployments.server_side_apply(body=deployment(replicas=2), field_manager="engine")
    assert 'conflict with "scaler"' in json.loads(conflict.value.body)["message"]
    assert deployments.server_side_apply(body=deployment(replicas=2), field_manager="engine",
                                         force_conflicts=True).spec.replicas == 2


# -- plain CRUD ----------------------------------------------------------------------------------------

def test_crud_list_patch_and_status_errors(apiserver, tmp_path):
    api, dyn = connect(apiserver, tmp_path)
    configmaps = dyn.resources.get(api_version="v1", kind="ConfigMap")
    created = configmaps.create(body=configmap("a", labels={"team": "x"}), namespace="default")
    configmaps.create(body=configmap("b", labels={"team": "y"}), namespace="default")
    assert apiserver.find_requests(method="POST")[0].status == 201
    with pytest.raises(ConflictError) as exists:
        configmaps.create(body=configmap("a"), namespace="default")
    assert json.loads(exists.value.body)["reason"] == "AlreadyExists"

    listed = configmaps.get(namespace="default", label_selector="team=x")
    assert [i.metadata.name for i in listed.items] == ["a"] and listed.metadata.resourceVersion
    assert [i.metadata.name for i in configmaps.get(namespace="default", label_selector="team in (x,y)").items] \
        == ["a", "b"]

    patched = configmaps.patch(name="a", namespace="default", body={"metadata": {"labels": {"extra": "1"}}})
    assert patched.to_dict()["metadata"]["labels"] == {"team": "x", "extra": "1"}
    patched = configmaps.patch(name="a", namespace="default", body={"metadata": {"labels": {"extra": None}}},
                               content_type="application/merge-patch+json")
    assert patched.to_dict()["metadata"]["labels"] == {"team": "x"}

    stale = dict(configmap("a", data={"key": "new"}))
    stale["metadata"]["resourceVersion"] = created.metadata.resourceVersion
    with pytest.raises(ConflictError) as modified:
        configmaps.replace(body=stale, namespace="default")
    assert "the object has been modified" in json.loads(modified.value.body)["message"]

    deleted = configmaps.delete(name="a", namespace="default", propagation_policy="Foreground")
    assert deleted.metadata.name == "a"
    with pytest.raises(NotFoundError) as missing:
        configmaps.get(name="a", namespace="default")
    status = json.loads(missing.value.body)
    assert status == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": 'configmaps "a" not found', "reason": "NotFound",
                      "details": {"name": "a", "kind": "configmaps"}, "code": 404}

    apply(api, deployment_path(), deployment())
    code, via_status, _ = call(api, "GET", deployment_path() + "/status")
    assert code == 200 and via_status["kind"] == "Deployment"


def test_finalizers_and_owner_references(apiserver, tmp_path):
    api, dyn = connect(apiserver, tmp_path)
    configmaps = dyn.resources.get(api_version="v1", kind="ConfigMap")
    owner = configmaps.create(body=configmap("owner"), namespace="default")
    held = configmap("held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    held["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                                            "uid": owner.metadata.uid}]
    configmaps.create(body=held, namespace="default")
    configmaps.delete(name="owner", namespace="default")
    assert configmaps.get(name="held", namespace="default").metadata.deletionTimestamp
    configmaps.patch(name="held", namespace="default", body={"metadata": {"finalizers": None}},
                     content_type="application/merge-patch+json")
    assert apiserver.objects(kind="ConfigMap") == []


# -- controllers ---------------------------------------------------------------------------------------

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
             "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                           "schema": {"openAPIV3Schema": {"type": "object",
                                                          "x-kubernetes-preserve-unknown-fields": True}}}]},
}
WIDGET = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1", "namespace": "default"},
          "spec": {"size": 3}}
WIDGET_PATH = "/apis/example.com/v1/namespaces/default/widgets/w1"


def test_crd_becomes_established_and_joins_discovery(apiserver_factory, tmp_path):
    server = apiserver_factory(crd_delay=0.2)
    api, dyn = connect(server, tmp_path)
    code, crd, _ = apply(api, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com", CRD)
    assert code == 201 and "status" not in crd
    assert apply(api, WIDGET_PATH, WIDGET)[0] == 404  # not served before it is established

    crds = dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    established = wait_until(lambda: [c for c in (crds.get(name="widgets.example.com").status or {})
                                      .get("conditions", []) if c["type"] == "Established"])
    assert established[0]["status"] == "True"
    conditions = {c["type"]: c["status"] for c in crds.get(name="widgets.example.com").status.conditions}
    assert conditions == {"Established": "True", "NamesAccepted": "True"}

    widgets = dyn.resources.get(api_version="example.com/v1", kind="Widget")  # the cached discovery refreshes
    assert widgets.namespaced and widgets.short_names == ["wd"]
    assert apply(api, WIDGET_PATH, WIDGET)[0] == 201
    listed = widgets.get(namespace="default")
    assert [(w.kind, w.metadata.name, w.metadata.generation) for w in listed.items] == [("Widget", "w1", 1)]

    crds.delete(name="widgets.example.com")
    assert server.objects(kind="Widget") == []
    assert call(api, "GET", "/apis/example.com/v1")[0] == 404


def test_namespace_active_then_cascading_delete(apiserver_factory, tmp_path):
    server = apiserver_factory(namespace_active_delay=0.1, namespace_delete_delay=0.2)
    api, dyn = connect(server, tmp_path)
    namespaces = dyn.resources.get(api_version="v1", kind="Namespace")
    code, ns, _ = apply(api, "/api/v1/namespaces/demo", {"apiVersion": "v1", "kind": "Namespace",
                                                         "metadata": {"name": "demo"}})
    assert code == 201 and "status" not in ns
    wait_until(lambda: (namespaces.get(name="demo").status or {}).get("phase") == "Active")

    apply(api, "/api/v1/namespaces/demo/configmaps/settings", configmap(namespace="demo"))
    apply(api, deployment_path(namespace="demo"), deployment(namespace="demo"))
    deleted = namespaces.delete(name="demo")
    assert deleted.status.phase == "Terminating" and deleted.metadata.deletionTimestamp

    code, status, _ = apply(api, "/api/v1/namespaces/demo/configmaps/late", configmap("late", namespace="demo"))
    assert code == 403 and "being terminated" in status["message"]

    wait_until(lambda: not server.objects(namespace="demo") and not server.get("Namespace", "demo"))
    with pytest.raises(NotFoundError):
        namespaces.get(name="demo")


def test_workload_rollout_status_and_never_ready(apiserver_factory, tmp_path):
    server = apiserver_factory(nodes=3)
    api, dyn = connect(server, tmp_path)
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    apply(api, deployment_path(), deployment(replicas=3))
    status = wait_until(lambda: (lambda d: d.status if d.status and d.status.observedGeneration ==
                                 d.metadata.generation else None)(deployments.get(name="web", namespace="default")))
    assert (status.replicas, status.updatedReplicas, status.readyReplicas, status.availableReplicas) == (3, 3, 3, 3)
    assert {c.type: c.status for c in status.conditions} == {"Available": "True", "Progressing": "True"}

    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": "default"},
          "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {
              "metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "a", "image": "busybox"}]}}}}
    apply(api, "/apis/apps/v1/namespaces/default/daemonsets/agent", ds)
    daemonsets = dyn.resources.get(api_version="apps/v1", kind="DaemonSet")
    ds_status = wait_until(lambda: daemonsets.get(name="agent", namespace="default").status)
    assert (ds_status.desiredNumberScheduled, ds_status.numberReady, ds_status.numberAvailable) == (3, 3, 3)

    server.never_ready("Deployment", "stuck")
    apply(api, deployment_path("stuck"), deployment("stuck", replicas=2))
    stuck = wait_until(lambda: deployments.get(name="stuck", namespace="default").status)
    assert stuck.observedGeneration == 1 and stuck.readyReplicas is None and stuck.unavailableReplicas == 2
    assert {c.type: c.status for c in stuck.conditions}["Available"] == "False"
    server.make_ready("Deployment", "stuck")
    wait_until(lambda: deployments.get(name="stuck", namespace="default").status.readyReplicas == 2)


# -- faults ----------------------------------------------------------------------------------------------

def test_fault_500_then_success(apiserver, tmp_path):
    api, dyn = connect(apiserver, tmp_path)
    fault = apiserver.faults.error(500, times=2, method="PATCH", path=r"/deployments/web$")
    results = [apply(api, deployment_path(), deployment())[:2] for _ in range(3)]
    assert [code for code, _ in results] == [500, 500, 201]
    assert results[0][1]["reason"] == "InternalError" and results[0][1]["kind"] == "Status"
    assert fault.hits == 2 and fault.exhausted
    assert [(r.status, r.fault) for r in apiserver.find_requests(method="PATCH")] == \
        [(500, "error"), (500, "error"), (201, None)]


def test_fault_429_with_retry_after(apiserver, tmp_path):
    api, dyn = connect(apiserver, tmp_path)
    apiserver.faults.throttle(times=1, retry_after=3, method="PATCH")
    code, status, headers = apply(api, deployment_path(), deployment())
    assert code == 429 and headers["Retry-After"] == "3" and status["reason"] == "TooManyRequests"
    assert status["details"]["retryAfterSeconds"] == 3

    # the client-go-like read retries of the kubernetes client honour Retry-After transparently
    api, dyn = connect(apiserver, tmp_path, client_go_retries=True)
    apiserver.faults.throttle(times=2, retry_after=0, method="GET", path="/configmaps")
    apiserver.clear_requests()
    dyn.resources.get(api_version="v1", kind="ConfigMap").get(namespace="default")
    assert [r.status for r in apiserver.find_requests(path="/configmaps")] == [429, 429, 200]


def test_fault_latency(apiserver, tmp_path):
    api, dyn = connect(apiserver, tmp_path)
    apiserver.faults.latency(0.3, method="GET", path=r"/namespaces/default$")
    started = time.monotonic()
    call(api, "GET", "/api/v1/namespaces/kube-system")
    fast = time.monotonic() - started
    started = time.monotonic()
    call(api, "GET", "/api/v1/namespaces/default")
    slow = time.monotonic() - started
    assert slow >= 0.3 > fast


def test_fault_dropped_connection(apiserver, tmp_path):
    api, dyn = connect(apiserver, tmp_path)
    apiserver.faults.drop(times=1, method="PATCH")
    with pytest.raises(urllib3.exceptions.ProtocolError):
        apply(api, deployment_path(), deployment())
    assert apply(api, deployment_path(), deployment())[0] == 201
    assert [(r.status, r.fault) for r in apiserver.find_requests(method="PATCH")] == [(None, "drop"), (201, None)]

    # urllib3 itself retries idempotent requests on a dropped connection
    apiserver.faults.drop(times=1, method="GET", path="/deployments/web")
    assert call(api, "GET", deployment_path())[0] == 200
    assert [r.status for r in apiserver.find_requests(method="GET", path="/deployments/web")] == [None, 200]


def test_fault_validation_failure(apiserver, tmp_path):
    api, _ = connect(apiserver, tmp_path)
    apiserver.faults.invalid(lambda obj: obj["kind"] == "ConfigMap" and "bad" in obj.get("data", {}),
                             message="bad keys are not allowed", field="data")
    path = "/api/v1/namespaces/default/configmaps/settings"
    assert apply(api, path, configmap())[0] == 201
    for dry_run in (True, False):
        code, status, _ = apply(api, path, configmap(data={"bad": "1"}), dry_run=dry_run)
        assert (code, status["reason"]) == (422, "Invalid")
        assert status["message"].startswith('ConfigMap "settings" is invalid: data: Invalid value: ')
        assert status["details"]["causes"][0]["field"] == "data"
    assert apiserver.get("ConfigMap", "settings", "default")["data"] == {"key": "value"}


# -- request log ---------------------------------------------------------------------------------------

def test_request_log_counts_and_writes(apiserver, tmp_path):
    api, dyn = connect(apiserver, tmp_path)
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    apiserver.clear_requests()
    deployments.get(namespace="default")
    apply(api, deployment_path(), deployment(), dry_run=True)
    assert apiserver.writes() == []
    assert [(r.method, r.path, r.status) for r in apiserver.requests] == [
        ("GET", "/apis/apps/v1/namespaces/default/deployments", 200),
        ("PATCH", deployment_path(), 201)]
    dry = apiserver.requests[1]
    assert dry.dry_run and dry.content_type == APPLY and dry.query["fieldManager"] == "engine"
    assert dry.body["metadata"]["name"] == "web"

    apply(api, deployment_path(), deployment())
    deployments.delete(name="web", namespace="default")
    assert [(r.method, r.status) for r in apiserver.writes()] == [("PATCH", 201), ("DELETE", 200)]
    assert len(apiserver.find_requests(method="GET")) == 1


def test_watch_streams_events(apiserver, tmp_path):
    api, dyn = connect(apiserver, tmp_path)
    configmaps = dyn.resources.get(api_version="v1", kind="ConfigMap")
    configmaps.create(body=configmap("first"), namespace="default")
    seen = []
    for event in dyn.watch(configmaps, namespace="default", timeout=2):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 1:
            configmaps.create(body=configmap("second"), namespace="default")
        if len(seen) == 2:
            configmaps.delete(name="first", namespace="default")
        if len(seen) == 3:
            break
    assert seen == [("ADDED", "first"), ("ADDED", "second"), ("DELETED", "first")]

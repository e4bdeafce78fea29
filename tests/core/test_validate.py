import json
import os
import textwrap
from dataclasses import dataclass
from typing import Callable, Optional

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from k8s.core import kinds, validate as v
from k8s.errors import UserError, UserErrors, raise_all
from k8s.core.validate import supported_versions, validate

from ..conftest import examples

OLDEST, NEWEST = "1.23", "1.37"  # 1.23 and 1.24 from k8s/core/schemas, a subset of the kinds
COMPLETE = [f"1.{minor}" for minor in range(25, 38)]  # every kind: kubernetes-validate's


@dataclass
class Where:
    file: str
    line: int
    locate: Optional[Callable] = None


def _locator(node, first_line):
    """locate(path) for a YAML document: the line of the key (or item) at path."""
    def locate(path):
        current, line = node, node.start_mark.line
        for part in path:
            if isinstance(part, int) and isinstance(current, yaml.SequenceNode) and part < len(current.value):
                current = current.value[part]
                line = current.start_mark.line
            elif isinstance(current, yaml.MappingNode):
                pair = next(((k, val) for k, val in current.value if k.value == part), None)
                if pair is None:
                    return None
                line, current = pair[0].start_mark.line, pair[1]
            else:
                return None
        return first_line + line
    return locate


def docs(text, file="manifest.yaml", locate=True):
    """(obj, where) pairs for a multi-document YAML text, lines 1-based."""
    text = textwrap.dedent(text).lstrip("\n")
    out = []
    for node in yaml.compose_all(text):
        obj = yaml.safe_load(yaml.serialize(node))
        line = node.start_mark.line + 1
        out.append((obj, Where(file, line, _locator(node, 1) if locate else None)))
    return out


def messages(report):
    return [str(e) for e in report.errors]


VALID = """
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: shop
  labels: {app: web}
data:
  greeting: hello
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {app: web}
  ports:
    - port: 80
      targetPort: http
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  strategy:
    rollingUpdate: {maxSurge: 25%, maxUnavailable: 0}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          imagePullPolicy: IfNotPresent
          ports:
            - {name: http, containerPort: 8080}
          resources:
            limits: {cpu: 500m, memory: 128Mi}
"""


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_valid_objects_pass(version):
    report = validate(docs(VALID), version)
    assert report.errors == []
    assert report.unvalidated == []
    assert report.kube_version == version


def test_default_version_is_newest():
    assert validate(docs(VALID)).kube_version == supported_versions()[-1]


def test_supported_versions():
    versions = supported_versions()
    assert versions[0] == OLDEST and versions[-1] == NEWEST
    assert versions == sorted(versions, key=lambda s: int(s.split(".")[1]))


DEPLOYMENT_TYPO = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicass: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx
"""


def test_unknown_field_message_and_line():
    report = validate(docs(DEPLOYMENT_TYPO, file="deploy.yaml"), NEWEST)
    assert messages(report) == ['deploy.yaml:6: Deployment/web: spec: unknown field "replicass"']
    error = report.errors[0]
    assert (error.file, error.line, error.obj) == ("deploy.yaml", 6, "Deployment/web")


def test_unknown_field_without_locate_uses_document_line():
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n" + textwrap.dedent(DEPLOYMENT_TYPO)
    report = validate(docs(text, file="d.yaml", locate=False), NEWEST)
    assert messages(report) == ['d.yaml:5: Deployment/web: spec: unknown field "replicass"']


def test_unknown_field_at_root_and_deep():
    text = DEPLOYMENT_TYPO.replace("replicass", "replicas") + "          imagePullPolicey: Always\nstatuss: {}\n"
    report = validate(docs(text), NEWEST)
    assert messages(report) == [
        'manifest.yaml:16: Deployment/web: spec.template.spec.containers[0]: unknown field "imagePullPolicey"',
        'manifest.yaml:17: Deployment/web: unknown field "statuss"',
    ]


def test_wrong_type():
    text = DEPLOYMENT_TYPO.replace("replicass: 2", 'replicas: "2"')
    text = text.replace("image: nginx", "image: nginx\n          ports: [{containerPort: true}]")
    report = validate(docs(text), OLDEST)
    assert messages(report) == [
        "manifest.yaml:6: Deployment/web: spec.replicas: invalid type: got string '2', expected integer",
        "manifest.yaml:16: Deployment/web: spec.template.spec.containers[0].ports[0].containerPort: "
        "invalid type: got boolean true, expected integer",
    ]


def test_int_or_string_type_error_and_null():
    strategy = "strategy:\n    rollingUpdate: {maxSurge: [1], maxUnavailable: null}"
    text = DEPLOYMENT_TYPO.replace("replicass: 2", strategy)
    report = validate(docs(text), NEWEST)
    assert messages(report) == [
        "manifest.yaml:7: Deployment/web: spec.strategy.rollingUpdate.maxSurge: "
        "invalid type: got array, expected string or integer"]


def test_label_keys_are_quoted_in_paths():
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels:\n    app.kubernetes.io/name: 3\n"
    assert messages(validate(docs(text), NEWEST)) == [
        'manifest.yaml:6: ConfigMap/c: metadata.labels["app.kubernetes.io/name"]: '
        "invalid type: got integer 3, expected string"]


def test_missing_name_kind_apiversion():
    text = """
    apiVersion: v1
    kind: ConfigMap
    metadata:
      labels: {a: b}
    ---
    metadata: {name: x}
    ---
    apiVersion: v1
    kind: ConfigMap
    """
    assert messages(validate(docs(text), NEWEST)) == [
        "manifest.yaml:3: ConfigMap: missing metadata.name",
        "manifest.yaml:6: missing apiVersion; missing kind",
        "manifest.yaml:8: ConfigMap: missing metadata.name",
    ]


def test_non_mapping_document():
    report = validate([(["a"], Where("x.yaml", 3))], NEWEST)
    assert messages(report) == ["x.yaml:3: expected a Kubernetes object (a mapping), got array"]


def test_error_cap_per_object():
    fields = "".join(f"  bogus{i}: 1\n" for i in range(8))
    report = validate(docs(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n{fields}"), NEWEST)
    assert len(report.errors) == v.MAX_ERRORS_PER_OBJECT + 1
    assert [e.line for e in report.errors[:5]] == [5, 6, 7, 8, 9]
    assert str(report.errors[-1]) == "manifest.yaml:1: ConfigMap/c: 3 more errors not shown"


def test_removed_psp_names_replacement():
    text = """
    apiVersion: policy/v1beta1
    kind: PodSecurityPolicy
    metadata: {name: restricted}
    spec: {}
    """
    assert messages(validate(docs(text, file="psp.yaml"), COMPLETE[0])) == [
        "psp.yaml:1: PodSecurityPolicy/restricted: policy/v1beta1 PodSecurityPolicy was removed "
        "in Kubernetes 1.25; use Pod Security Admission"]


@pytest.mark.parametrize("api_version,kind,expected", [
    ("batch/v1beta1", "CronJob", "batch/v1beta1 CronJob was removed in Kubernetes 1.25; use batch/v1"),
    ("extensions/v1beta1", "Ingress",
     "extensions/v1beta1 Ingress was removed in Kubernetes 1.22; use networking.k8s.io/v1"),
    ("apps/v1beta2", "Deployment", "apps/v1beta2 Deployment was removed in Kubernetes 1.16; use apps/v1"),
])
def test_removed_apis(api_version, kind, expected):
    report = validate([({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}, Where("f", 1))], NEWEST)
    assert [e.message for e in report.errors] == [expected]


def test_removal_depends_on_target_version():
    hpa = {"apiVersion": "autoscaling/v2beta2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
           "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3}}
    assert validate([(hpa, Where("f", 1))], "1.25").errors == []
    assert [e.message for e in validate([(hpa, Where("f", 1))], "1.26").errors] == [
        "autoscaling/v2beta2 HorizontalPodAutoscaler was removed in Kubernetes 1.26; use autoscaling/v2"]


def test_replacement_is_one_that_exists_in_target_version():
    fs = {"apiVersion": "flowcontrol.apiserver.k8s.io/v1beta1", "kind": "FlowSchema", "metadata": {"name": "f"}}
    for version, replacement in (("1.26", "v1beta3"), ("1.28", "v1beta3"), ("1.29", "v1"), ("1.37", "v1")):
        [error] = validate([(fs, Where("f", 1))], version).errors
        assert error.message.endswith(f"; use flowcontrol.apiserver.k8s.io/{replacement}"), version


def test_unknown_builtin_kind():
    text = "apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: web}\n---\n" \
           "apiVersion: apps/v1\nkind: deployment\nmetadata: {name: web}\n"
    assert messages(validate(docs(text), "1.31")) == [
        "manifest.yaml:2: Deploymnet/web: unknown kind Deploymnet in apiVersion apps/v1 for Kubernetes 1.31",
        "manifest.yaml:6: deployment/web: unknown kind deployment in apiVersion apps/v1 for Kubernetes 1.31 "
        "(did you mean Deployment?)",
    ]


def test_custom_resource_without_crd_is_unvalidated():
    text = """
    apiVersion: cert-manager.io/v1
    kind: Certificate
    metadata: {name: tls}
    spec: {anything: goes}
    ---
    apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: route}
    """
    report = validate(docs(text), NEWEST)
    assert report.errors == []
    assert report.unvalidated == ["Certificate/tls", "HTTPRoute/route"]


def test_builtin_group_lookalike_is_not_validated_as_builtin():
    obj = {"apiVersion": "apps.example.com/v1", "kind": "Deployment", "metadata": {"name": "x"}, "foo": 1}
    report = validate([(obj, Where("f", 1))], NEWEST)
    assert report.errors == [] and report.unvalidated == ["Deployment/x"]


CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [size]
              properties:
                size:
                  x-kubernetes-int-or-string: true
                  anyOf: [{type: integer}, {type: string}]
                port: {x-kubernetes-int-or-string: true}
                color: {type: string, enum: [red, blue], nullable: true}
                replicas: {type: integer, minimum: 1}
                config:
                  type: object
                  x-kubernetes-preserve-unknown-fields: true
                  properties:
                    level: {type: integer}
                labels:
                  type: object
                  additionalProperties: {type: string}
                template:
                  type: object
                  x-kubernetes-embedded-resource: true
                  x-kubernetes-preserve-unknown-fields: true
                owner:
                  type: object
                  x-kubernetes-embedded-resource: true
                  properties:
                    spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
    - name: v1alpha1
      served: false
      storage: false
      schema:
        openAPIV3Schema: {type: object}
"""


CR = len(CRD.strip("\n").splitlines()) + 2  # line of the Widget's apiVersion (after the CRD and "---")


def widget(spec):
    cr = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n" + textwrap.indent(spec, "  ")
    return CRD + "---\n" + cr


def test_crd_and_valid_custom_resource():
    spec = """\
size: 3
color: null
config: {level: 2, anything: [1, 2], nested: {free: form}}
labels: {a: b}
template: {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {whatever: 1}}
owner: {apiVersion: v1, kind: ConfigMap, metadata: {name: c}, spec: {x: 1}}
"""
    report = validate(docs(widget(spec)), NEWEST)
    assert report.errors == [] and report.unvalidated == []
    report = validate(docs(widget("size: 10Gi\n")), OLDEST)
    assert report.errors == []


def test_invalid_custom_resource():
    spec = """\
size: true
color: green
replicas: 0
sizee: 1
config: {level: high}
labels: {a: 1}
template: {metadata: {name: p}}
"""
    got = messages(validate(docs(widget(spec), file="w.yaml"), NEWEST))
    assert got == [
        f"w.yaml:{CR + 5}: Widget/w: spec.size: invalid type: got boolean true, expected integer or string",
        f"w.yaml:{CR + 6}: Widget/w: spec.color: 'green' is not one of ['red', 'blue', null]",
        f"w.yaml:{CR + 7}: Widget/w: spec.replicas: 0 is less than the minimum of 1",
        f'w.yaml:{CR + 8}: Widget/w: spec: unknown field "sizee"',
        f"w.yaml:{CR + 9}: Widget/w: spec.config.level: invalid type: got string 'high', expected integer",
        f"w.yaml:{CR}: Widget/w: 3 more errors not shown",
    ]


def test_custom_resource_required_embedded_and_metadata():
    got = messages(validate(docs(widget("template: {spec: {}}\n")), NEWEST))
    assert got == [
        f'manifest.yaml:{CR + 4}: Widget/w: spec: missing required field "size"',
        f'manifest.yaml:{CR + 5}: Widget/w: spec.template: missing required field "apiVersion"',
        f'manifest.yaml:{CR + 5}: Widget/w: spec.template: missing required field "kind"',
    ]
    got = messages(validate(docs(widget("size: 1\nowner: {apiVersion: v1, kind: X, data: {}}\n")), NEWEST))
    assert got == [f'manifest.yaml:{CR + 6}: Widget/w: spec.owner: unknown field "data"']
    text = widget("size: 1\n").replace("  name: w\n", "  name: w\n  lables: {a: b}\n")
    assert messages(validate(docs(text), NEWEST)) == [
        f'manifest.yaml:{CR + 4}: Widget/w: metadata: unknown field "lables"']


def test_custom_resource_int_or_string_without_anyof():
    assert validate(docs(widget("size: 1\nport: http\n")), NEWEST).errors == []
    assert validate(docs(widget("size: 1\nport: 8080\n")), NEWEST).errors == []
    assert [e.message for e in validate(docs(widget("size: 1\nport: 1.5\n")), NEWEST).errors] == [
        "spec.port: invalid type: got number 1.5, expected integer or string"]


def test_custom_resource_unserved_version():
    text = CRD + "---\napiVersion: example.com/v1alpha1\nkind: Widget\nmetadata: {name: w}\n"
    assert [e.message for e in validate(docs(text), NEWEST).errors] == [
        "CustomResourceDefinition widgets.example.com does not serve version v1alpha1 (served: v1)"]


def test_crd_schema_conversion():
    schema = v.crd_to_json_schema({
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 0, "exclusiveMinimum": True, "default": 1},
                       "free": {"type": "object"}}})
    assert schema["additionalProperties"] is False
    assert schema["properties"]["n"] == {"type": ["integer", "null"], "exclusiveMinimum": 0}
    assert "additionalProperties" not in schema["properties"]["free"]
    assert set(schema["properties"]) == {"n", "free", "apiVersion", "kind", "metadata"}
    preserved = v.crd_to_json_schema({"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    assert "additionalProperties" not in preserved


def test_unsupported_version():
    for bad in ("1.20", "1.99"):
        with pytest.raises(UserError) as caught:
            validate(docs(VALID), bad)
        versions = supported_versions()
        assert f"supported versions are {versions[0]} to {versions[-1]}" in str(caught.value)
        assert bad in str(caught.value)
    with pytest.raises(UserError, match=r"^invalid Kubernetes version 'banana', expected MAJOR.MINOR like 1.31$"):
        validate(docs(VALID), "banana")


def test_version_spellings():
    for spelling in ("v1.31.4", "1.31", "v1.31.0-rc.1", "v1.31.2+k3s1"):
        assert validate(docs(VALID), spelling).kube_version == "1.31"


def test_schema_dirs_are_pluggable(tmp_path, monkeypatch):
    newest = v._version_dirs()["1.25"]
    fake = tmp_path / "v1.22.0-local-strict"
    fake.mkdir()
    for name in ("_definitions.json", "configmap-v1.json"):
        os.symlink(os.path.join(newest, name), fake / name)
    monkeypatch.setattr(v, "SCHEMA_DIRS", [*v.SCHEMA_DIRS, str(tmp_path)])
    assert supported_versions()[0] == "1.22"
    assert validate(docs(VALID.split("---")[1]), "1.22").errors == []
    cronjob = {"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "c"}}
    # Not removed yet in 1.22 (the fake 1.22 has no CronJob schema, so it is unknown).
    assert [e.message for e in validate([(cronjob, Where("f", 1))], "1.22").errors] == [
        "unknown kind CronJob in apiVersion batch/v1beta1 for Kubernetes 1.22"]


def test_many_objects_share_one_compiled_validator():
    objs = docs(VALID)
    deployment = objs[-1]
    report = validate([deployment] * 2000, NEWEST)
    assert report.errors == []
    compiled = [key for key in v._validators
                if key[1:] == ("apps", "v1", "Deployment") and key[0].endswith("v1.37.0-local-strict")]
    assert len(compiled) == 1


def test_errors_go_through_raise_all():
    report = validate(docs(DEPLOYMENT_TYPO + "---\n" + textwrap.dedent(DEPLOYMENT_TYPO).lstrip()), NEWEST)
    with pytest.raises(UserErrors) as caught:
        raise_all(report.errors)
    assert str(caught.value).splitlines() == [
        'manifest.yaml:6: Deployment/web: spec: unknown field "replicass"',
        'manifest.yaml:22: Deployment/web: spec: unknown field "replicass"']


# --- kinds.py tables, checked against the schema files ----------------------

def _schema_exists(version, api_version, kind):
    group, _, ver = api_version.rpartition("/")
    return v._schema_file(v._version_dirs()[version], group, ver, kind) is not None


def _top_level_kinds(version):
    with open(os.path.join(v._version_dirs()[version], "_definitions.json")) as f:
        defs = json.load(f)["$defs"]
    out = set()
    for schema in defs.values():
        meta = (schema.get("properties") or {}).get("metadata", {}).get("$ref", "")
        if meta.endswith("ObjectMeta"):
            out |= {(g["group"], g["version"], g["kind"]) for g in schema.get("x-kubernetes-group-version-kind", [])}
    return out


@pytest.mark.parametrize("key", sorted(kinds.REMOVED_APIS))
def test_removed_apis_agree_with_schemas(key):
    (api_version, kind), (minor, replacements) = key, kinds.REMOVED_APIS[key]
    removed_in = f"1.{minor}"
    if removed_in in COMPLETE and f"1.{minor - 1}" in COMPLETE:
        assert _schema_exists(f"1.{minor - 1}", api_version, kind)
    for version in supported_versions():
        if int(version.split(".")[1]) >= minor:
            assert not _schema_exists(version, api_version, kind), version
    if "/" in replacements[0]:
        assert _schema_exists(NEWEST, replacements[0], kind)


def test_scope_tables_cover_every_kind():
    assert not kinds.CLUSTER_SCOPED & kinds.NAMESPACED
    for version in (COMPLETE[0], NEWEST):
        for group, _, kind in _top_level_kinds(version):
            assert (group, kind) in kinds.CLUSTER_SCOPED | kinds.NAMESPACED, (group, kind)
            assert group in kinds.BUILTIN_GROUPS


def test_is_namespaced():
    crd = yaml.safe_load(CRD)
    assert kinds.is_namespaced("v1", "Namespace") is False
    assert kinds.is_namespaced("rbac.authorization.k8s.io/v1", "ClusterRole") is False
    assert kinds.is_namespaced("policy/v1beta1", "PodSecurityPolicy") is False
    assert kinds.is_namespaced("apps/v1", "Deployment") is True
    assert kinds.is_namespaced("v1", "ConfigMap") is True
    assert kinds.is_namespaced("example.com/v1", "Widget", [crd]) is True
    crd["spec"]["scope"] = "Cluster"
    assert kinds.is_namespaced("example.com/v1", "Widget", [crd]) is False
    assert kinds.is_namespaced("example.com/v1", "Widget") is None
    assert kinds.is_namespaced("apps/v1", "Nonsense") is None


# --- robustness: arbitrary documents give one-line errors, never a crash ------

_scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)
_json = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=10)


CRD_DOCS = docs(CRD)


@settings(max_examples=examples(1000), deadline=None)
@given(api_kind=st.sampled_from([("apps/v1", "Deployment"), ("v1", "Service"), ("example.com/v1", "Widget"),
                                 ("policy/v1beta1", "PodSecurityPolicy"), ("v1", "Nope"), (None, 3)]),
       metadata=_json, spec=_json)
def test_arbitrary_documents_never_crash(api_kind, metadata, spec):
    obj = {"apiVersion": api_kind[0], "kind": api_kind[1], "metadata": metadata, "spec": spec}
    report = validate(CRD_DOCS + [(obj, Where("x.yaml", 7))], OLDEST)
    for error in report.errors:
        assert error.file in ("x.yaml", "manifest.yaml") and "\n" not in str(error)


# --- the live server: the version the tests' real control plane runs ---------------------------
#
# A connected run (`render.py apply`, `install`, `diff`, `check`) validates for the version the
# API server reports. These tests ask the session's real kube-apiserver (conftest's
# `control_plane`) what its version serves and refuses, and hold the schemas, the removed-API
# table and the scope tables to it.

def discovery(plane):
    """{(group, version, kind): namespaced} of every built-in resource (no subresources) `plane`
    serves: its own APIs, not those of CustomResourceDefinitions or aggregated API servers that
    other tests may have left."""
    crd_groups = {c["spec"]["group"] for c in
                  plane.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]}
    services = plane.get("/apis/apiregistration.k8s.io/v1/apiservices")["items"]
    aggregated = {(s["spec"]["group"], s["spec"]["version"]) for s in services if s["spec"].get("service")}
    versions = [("", "v1")] + [(g["name"], v["version"]) for g in plane.get("/apis")["groups"] for v in g["versions"]
                               if g["name"] not in crd_groups and (g["name"], v["version"]) not in aggregated]
    served = {}
    for group, version in versions:
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        for resource in plane.get(path)["resources"]:
            if "/" not in resource["name"]:
                served[group, version, resource["kind"]] = resource["namespaced"]
    return served


@pytest.fixture(scope="module")
def live(control_plane):
    from k8s.cluster.connection import Cluster

    with Cluster(control_plane.kubeconfig, "kubernetes-admin@kubernetes") as cluster:
        version = cluster.version()
    return version, discovery(control_plane)


def test_the_live_version_is_the_newest_the_schemas_cover(live, control_plane):
    version, _ = live
    info = control_plane.get("/version")
    assert version == f"{info['major']}.{info['minor']}" == NEWEST == supported_versions()[-1]
    assert validate(docs(VALID), info["gitVersion"]).kube_version == version  # "v1.37.2", as servers say it


def test_the_scope_tables_agree_with_the_live_servers_discovery(live):
    version, served = live
    assert len(served) > 50
    for (group, api, kind), namespaced in served.items():
        assert group in kinds.BUILTIN_GROUPS, (group, kind)
        assert kinds.is_namespaced(f"{group}/{api}" if group else api, kind) is namespaced, (group, api, kind)


def test_removed_apis_are_not_served_by_the_live_server_and_their_replacements_are(live):
    version, served = live
    minor = int(version.split(".")[1])
    kinds_served = {(f"{g}/{v}" if g else v, k) for g, v, k in served}
    for (api_version, kind), (removed_in, replacements) in kinds.REMOVED_APIS.items():
        if removed_in <= minor:
            assert (api_version, kind) not in kinds_served, (api_version, kind)
            if "/" in replacements[0] or replacements[0] == "v1":
                assert (replacements[0], kind) in kinds_served, (api_version, kind, replacements[0])
        else:
            assert (api_version, kind) in kinds_served, f"{api_version} {kind}: to be removed in 1.{removed_in}"


def test_every_kind_the_live_server_serves_has_a_schema_for_its_version(live):
    version, served = live
    known = _top_level_kinds(version)
    assert sorted(set(served) - known) == []


def server_verdict(plane, obj):
    """The live server's word on `obj`: None when a strict server-side dry-run apply accepts it,
    else its error."""
    import subprocess

    result = subprocess.run(["kubectl", "--kubeconfig", plane.kubeconfig, "apply", "--server-side",
                             "--dry-run=server", "--validate=strict", "--field-manager=validate-test", "-f", "-"],
                            input=json.dumps(obj), capture_output=True, text=True, timeout=60)
    return None if result.returncode == 0 else result.stderr.strip()


def test_the_validator_and_the_live_server_agree(control_plane):
    """What validate() lets through for the live version, the live server accepts (with strict
    field validation); what it refuses, the server refuses too, for the same field."""
    import subprocess
    import uuid

    version = "{major}.{minor}".format(**control_plane.get("/version"))
    namespace = f"validate-{uuid.uuid4().hex[:8]}"
    subprocess.run(["kubectl", "--kubeconfig", control_plane.kubeconfig, "create", "namespace", namespace],
                   check=True, capture_output=True)
    try:
        good = docs(VALID.replace("namespace: shop", f"namespace: {namespace}").replace("name: shop",
                                                                                        f"name: {namespace}"))
        assert validate(good, version).errors == []
        for obj, _ in good:
            assert server_verdict(control_plane, obj) is None, obj["kind"]

        bad = [  # (text, the field our error names, what the server's names: its words differ)
            (DEPLOYMENT_TYPO, "replicass", ".spec.replicass: field not declared in schema"),
            (DEPLOYMENT_TYPO.replace("replicass", "replicas") + "          imagePullPolicey: Always\n",
             "imagePullPolicey",
             '.spec.template.spec.containers[name="web"].imagePullPolicey: field not declared in schema'),
            (DEPLOYMENT_TYPO.replace("replicass: 2", 'replicas: "2"'), "spec.replicas", "replicas"),
            # the server's decoder names the Go type only
            (DEPLOYMENT_TYPO.replace("replicass: 2", "strategy:\n    rollingUpdate: {maxSurge: [1]}"),
             "spec.strategy.rollingUpdate.maxSurge", "cannot unmarshal array"),
            ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels:\n    app.kubernetes.io/name: 3\n",
             'metadata.labels["app.kubernetes.io/name"]', "labels"),
            ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: 1\n", "data.a", "data"),
            ("apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports: [{port: http}]\n",
             "spec.ports[0].port", "port"),
        ]
        for text, ours_names, theirs_names in bad:
            [(obj, where)] = docs(text)
            obj["metadata"]["namespace"] = namespace
            ours = messages(validate([(obj, where)], version))
            theirs = server_verdict(control_plane, obj)
            assert ours and ours_names in ours[0], (ours_names, ours)
            assert theirs and theirs_names in theirs, (theirs_names, theirs)
    finally:
        subprocess.run(["kubectl", "--kubeconfig", control_plane.kubeconfig, "delete", "namespace", namespace,
                        "--wait=false"], capture_output=True)

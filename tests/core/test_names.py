"""Offline validation refuses what the API server refuses beyond the schema: names per kind,
namespaces, label keys and values, annotation keys and size, ConfigMap and Secret keys, base64
values, component folder names; custom resources without their CRD are a warning offline and an
error against a cluster that does not serve them (`missing_kinds`); no Secret value in a message.

The rules are apimachinery's (pkg/util/validation, pkg/api/validation/path) as each kind's
ValidateObjectMeta name function uses them (kinds.NAME_RULES)."""

import os

import pytest
import yaml

from k8s.core import object_names, validate as v
from k8s.errors import UserError

CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "1"}}


class Where:
    """Where an object came from, its fields located by a YAML parse of `text`."""

    def __init__(self, text, file="a.yaml"):
        self.file, self.line, self.node = file, 1, yaml.compose(text)

    def locate(self, path):
        node, line = self.node, None
        for part in path:
            if not isinstance(node, yaml.MappingNode):
                return None
            pair = next(((k, val) for k, val in node.value if k.value == str(part)), None)
            if pair is None:
                return None
            line, node = pair[0].start_mark.line + 1, pair[1]
        return line


def errors_of(obj):
    text = yaml.safe_dump(obj, sort_keys=False, width=10_000)
    report = v.validate([(obj, Where(text))], "1.37")
    return [str(e) for e in report.errors]


def named(kind, name, api_version="v1", **extra):
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, **extra}


# --- names per kind ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind,api_version,name", [
    ("ConfigMap", "v1", "Bad_Name"),
    ("ConfigMap", "v1", "café"),
    ("ConfigMap", "v1", "a" * 254),
    ("ConfigMap", "v1", "-leading"),
    ("ConfigMap", "v1", "double..dot"),
    ("Secret", "v1", "UPPER"),
    ("ServiceAccount", "v1", "has space"),
    ("Namespace", "v1", "has.dot"),  # a label: no dots
    ("Namespace", "v1", "n" * 64),
    ("Service", "v1", "1starts-with-digit"),  # DNS-1035: a letter first
    ("Service", "v1", "web.internal"),
    ("Deployment", "apps/v1", "Web"),
    ("CronJob", "batch/v1", "c" * 53),  # 52 at most
    ("Role", "rbac.authorization.k8s.io/v1", "a/b"),
    ("ClusterRole", "rbac.authorization.k8s.io/v1", "50%"),
    ("ClusterRoleBinding", "rbac.authorization.k8s.io/v1", ".."),
])
def test_names_the_api_server_refuses_are_refused(kind, api_version, name):
    errors = [e for e in errors_of(named(kind, name, api_version)) if "metadata.name" in e]
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"a.yaml:4: {kind}/")
    assert f"is not a valid {kind} name: must be " in errors[0]


@pytest.mark.parametrize("kind,api_version,name", [
    ("ConfigMap", "v1", "a" * 253),
    ("ConfigMap", "v1", "kube-root-ca.crt"),
    ("Namespace", "v1", "n" * 63),
    ("Service", "v1", "web-1"),
    ("Deployment", "apps/v1", "web.v2"),
    ("CronJob", "batch/v1", "c" * 52),
    ("ClusterRole", "rbac.authorization.k8s.io/v1", "system:aggregate-to-view"),  # RBAC names take ':'
    ("Role", "rbac.authorization.k8s.io/v1", "Mixed_Case"),
])
def test_names_the_api_server_takes_are_taken(kind, api_version, name):
    assert [e for e in errors_of(named(kind, name, api_version)) if "metadata.name" in e] == []


def test_the_message_names_file_line_and_object_and_shortens_a_long_name():
    [error] = [e for e in errors_of(named("ConfigMap", "x" * 300)) if "metadata.name" in e]
    assert error.startswith("a.yaml:4: ConfigMap/" + "x" * 60 + "…: metadata.name '" + "x" * 56 + "... "
                            "(300 characters) is not a valid ConfigMap name: must be a DNS-1123 subdomain")
    assert "\n" not in error


def test_namespace_field_must_be_a_dns_label():
    obj = {**CONFIGMAP, "metadata": {"name": "settings", "namespace": "Team_A"}}
    assert errors_of(obj) == ["a.yaml:5: ConfigMap/settings: metadata.namespace 'Team_A' is not a valid "
                              "namespace name: a DNS-1123 label: lower case letters, digits and '-', starting "
                              "and ending with a letter or digit, at most 63 characters"]


def test_a_crd_name_must_be_plural_dot_group():
    crd = named("CustomResourceDefinition", "widget.example.com", "apiextensions.k8s.io/v1", spec={
        "group": "example.com", "scope": "Namespaced", "names": {"kind": "Widget", "plural": "widgets"},
        "versions": [{"name": "v1", "served": True, "storage": True,
                      "schema": {"openAPIV3Schema": {"type": "object"}}}]})
    assert errors_of(crd) == ["a.yaml:4: CustomResourceDefinition/widget.example.com: metadata.name must be "
                              "spec.names.plural + '.' + spec.group: 'widgets.example.com'"]


# --- labels and annotations -------------------------------------------------------------------

@pytest.mark.parametrize("labels,expected", [
    ({"app name": "x"}, "metadata.labels: key 'app name' is invalid"),
    ({"example.com/": "x"}, "metadata.labels: key 'example.com/' is invalid"),
    ({"/app": "x"}, "metadata.labels: key '/app' is invalid: the prefix before '/' is empty"),
    ({"Example.COM/app": "x"}, "metadata.labels: key 'Example.COM/app' is invalid: the prefix"),
    ({"k" * 64: "x"}, "metadata.labels: key 'kkk"),
    ({"app": "v" * 64}, "metadata.labels[\"app\"]: value 'vvv"),
    ({"app": "has space"}, "metadata.labels[\"app\"]: value 'has space' is invalid"),
    ({"app": "-x"}, "metadata.labels[\"app\"]: value '-x' is invalid"),
])
def test_label_keys_and_values(labels, expected):
    obj = {**CONFIGMAP, "metadata": {"name": "settings", "labels": labels}}
    [error] = errors_of(obj)
    assert error.startswith("a.yaml:6: ConfigMap/settings: " + expected), error


def test_good_labels_pass():
    labels = {"app.kubernetes.io/name": "web", "k" * 63: "v" * 63, "empty": "", "a.b/C_d-e.f": "X.y_z-1"}
    assert errors_of({**CONFIGMAP, "metadata": {"name": "settings", "labels": labels}}) == []


def test_pod_template_labels_and_selectors_are_checked_too():
    deployment = named("Deployment", "web", "apps/v1", spec={
        "selector": {"matchLabels": {"app": "web server"}},
        "template": {"metadata": {"labels": {"bad key": "web"}},
                     "spec": {"containers": [{"name": "web", "image": "nginx"}]}}})
    errors = errors_of(deployment)
    assert any("spec.selector.matchLabels[\"app\"]: value 'web server' is invalid" in e for e in errors), errors
    assert any("spec.template.metadata.labels: key 'bad key' is invalid" in e for e in errors), errors
    service = named("Service", "web", spec={"selector": {"app": "a b"}, "ports": [{"port": 80}]})
    assert any("spec.selector[\"app\"]: value 'a b'" in e for e in errors_of(service))


def test_annotations_keys_and_total_size():
    obj = {**CONFIGMAP, "metadata": {"name": "settings", "annotations": {"Some Key": "x"}}}
    assert errors_of(obj)[0].startswith("a.yaml:6: ConfigMap/settings: metadata.annotations: key 'Some Key' "
                                        "is invalid")
    fits = {"a": "b" * (object_names.ANNOTATIONS_LIMIT - 1)}
    assert errors_of({**CONFIGMAP, "metadata": {"name": "settings", "annotations": fits}}) == []
    over = {"a": "b" * object_names.ANNOTATIONS_LIMIT}
    assert errors_of({**CONFIGMAP, "metadata": {"name": "settings", "annotations": over}}) == [
        "a.yaml:5: ConfigMap/settings: metadata.annotations: 262145 bytes in all, over the API server's "
        "limit of 262144 bytes (256 KiB)"]
    upper = {"Example.com/Key": "x"}  # keys are checked lower-cased, as the server does
    assert errors_of({**CONFIGMAP, "metadata": {"name": "settings", "annotations": upper}}) == []


# --- ConfigMap and Secret keys, base64 ------------------------------------------------------------

@pytest.mark.parametrize("key", ["no spaces", "..hidden", ".", "..", "a/b", "k" * 254])
def test_configmap_and_secret_keys(key):
    assert "is not" not in errors_of({**CONFIGMAP, "data": {"ok.key_1-x": "1"}})
    [error] = errors_of({**CONFIGMAP, "data": {key: "1"}})
    assert error.startswith("a.yaml:6: ConfigMap/settings: data: key ") and " must " in error
    secret = named("Secret", "db", stringData={key: "1"})
    assert any(e.startswith("a.yaml:6: Secret/db: stringData: key ") for e in errors_of(secret))


def test_secret_data_must_be_base64_and_the_value_is_never_shown():
    secret = named("Secret", "db", data={"password": "hunter2!!", "ok": "aHVudGVyMg==", "wrapped": "aHVu\ndGVy\nMg==\n"})
    assert errors_of(secret) == ["a.yaml:6: Secret/db: data.password: the value is not base64 "
                                 "(put plain text under stringData)"]
    configmap = {**CONFIGMAP, "binaryData": {"blob": "not base64"}}
    assert errors_of(configmap) == ["a.yaml:8: ConfigMap/settings: binaryData.blob: the value is not base64 "
                                    "(put plain text under data)"]


@pytest.mark.parametrize("field,value", [
    ("stringData", {"password": 73251}),
    ("stringData", {"password": ["hunter2-in-a-list"]}),
    ("data", {"password": True}),
    ("data", "hunter2-the-whole-map"),
    ("stringData", {"password": {"nested": "hunter2-nested"}}),
])
def test_a_manifest_secret_value_never_appears_in_a_validation_error(field, value):
    errors = errors_of(named("Secret", "db", **{field: value}))
    assert errors, "the value is invalid: there must be an error"
    text = "\n".join(errors)
    for secret in ("73251", "hunter2", "true", "True"):
        assert secret not in text, text
    assert "value not shown" in text or "not shown" in text


def test_other_kinds_still_show_the_value():
    obj = named("Service", "web", spec={"ports": [{"port": "eighty"}]})
    assert any("got string 'eighty'" in e for e in errors_of(obj))


# --- component folder names ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["My_App", "café", "app.", "-app", "a" * 64, "has space", ""])
def test_component_folder_names_that_no_label_value_holds(name):
    error = object_names.component_name_error(name, f"manifests/{name}")
    assert isinstance(error, UserError)
    assert str(error).startswith(f"manifests/{name}: component folder name ")
    assert "rename the folder" in str(error)


@pytest.mark.parametrize("name", ["app", "ingress-nginx", "a" * 63, "v1.2", "0app"])
def test_component_folder_names_that_are_fine(name):
    assert object_names.component_name_error(name, name) is None


def test_render_refuses_a_component_folder_name(project):
    project.write("manifests/My_App/a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    result = project.run("template")
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[0].startswith(
        "error: manifests/My_App: component folder name 'My_App' is not usable")
    assert "Traceback" not in result.stderr


# --- custom resources without their CRD ------------------------------------------------------------

WIDGET = named("Widget", "w", "widgets.example.com/v1")


def test_offline_a_custom_resource_without_crd_is_a_warning_naming_apiversion_and_kind():
    report = v.validate([(WIDGET, Where(yaml.safe_dump(WIDGET)))], "1.37")
    assert report.errors == [] and report.unvalidated == ["Widget/w"]
    assert [str(w) for w in report.warnings] == [
        "a.yaml:1: Widget/w: no CustomResourceDefinition for widgets.example.com/v1 Widget in the rendered "
        "set; if the cluster has it, run against the cluster"]


def test_missing_kinds_against_the_cluster_discovery():
    class Index:  # k8s.cluster.discovery.Index's interface
        def __init__(self, served):
            self.served = served

        def get(self, group, version, kind):
            return object() if (group, version, kind) in self.served else None

    class Rendered:  # a RenderedObject's interface
        def __init__(self, data):
            self.data, self.source = data, Where(yaml.safe_dump(data, sort_keys=False))

    builtin = {("", "v1", "ConfigMap")}
    objects = [Rendered(WIDGET), Rendered(named("Widget", "w2", "widgets.example.com/v1")), Rendered(CONFIGMAP),
               Rendered(named("FlowSchema", "f", "flowcontrol.apiserver.k8s.io/v1beta9"))]
    errors = [str(e) for e in v.missing_kinds(objects, Index(builtin))]
    assert errors == [
        "a.yaml:1: Widget/w: the cluster does not serve widgets.example.com/v1 Widget and no "
        "CustomResourceDefinition in the rendered set defines it: install its CRD first",
        "a.yaml:1: FlowSchema/f: the cluster does not serve flowcontrol.apiserver.k8s.io/v1beta9 FlowSchema "
        "(an API its version or its configuration does not enable)"]
    served = builtin | {("widgets.example.com", "v1", "Widget"), ("flowcontrol.apiserver.k8s.io", "v1beta9",
                                                                   "FlowSchema")}
    assert v.missing_kinds(objects, Index(served)) == []
    assert v.missing_kinds([(o.data, o.source) for o in objects], served) == []  # pairs and a set work too
    crd = named("CustomResourceDefinition", "widgets.widgets.example.com", "apiextensions.k8s.io/v1",
                spec={"group": "widgets.example.com", "names": {"kind": "Widget", "plural": "widgets"}})
    assert [str(e) for e in v.missing_kinds([Rendered(crd), Rendered(WIDGET)], {("apiextensions.k8s.io", "v1",
                                                                                  "CustomResourceDefinition")})] == []


def test_the_shipped_manifests_pass_the_new_checks(project):
    """Every shipped component renders and validates (imports not vendored are left out)."""
    from ..conftest import ROOT

    result = project.run("--manifests", os.path.join(ROOT, "manifests"), "--vars",
                         os.path.join(ROOT, "Makefile.vars"), "validate")
    assert result.returncode == 0, result.stderr

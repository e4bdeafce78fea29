"""Rendering: substitution safety and typing, Jinja2, documents, namespaces, duplicates."""

import os
import re
import textwrap

import pytest
from hypothesis import given, settings, strategies as st

from k8s.core import components, emit, kubeyaml, render
from k8s.errors import UserError

from ..conftest import examples


def render_text(tmp_path, text, variables, name="a.yaml", namespace="demo"):
    folder = tmp_path / "manifests" / "app"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(text))
    found = components.discover(str(tmp_path / "manifests"), {"K8S_NAMESPACE": namespace, **variables})
    return render.render_components(found, variables)


CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm
data:
  plain: $V
  single: '$V'
  double: "$V"
  braced: "pre-${V}-post"
  block: |
    $V
"""

NASTY_VALUES = [
    "a: b", "x # not a comment", "line1\nline2", "*alias", "&anchor", "!tag", "'single'",
    '"double"', "back\\slash", "[1, 2]", "{a: 1}", "- item", "? key", "| block", "> folded",
    "%directive", "@at", "`tick`", " leading", "trailing ", "tab\there", "--- doc", "... end",
    "$NOT_A_VAR", "$$", "unicode ✓ ünï", "a:b", "#hash", "", "trailing:",
]


@pytest.mark.parametrize("value", NASTY_VALUES)
def test_a_value_never_changes_the_yaml_structure(tmp_path, value):
    [obj] = render_text(tmp_path, CONFIGMAP, {"V": value})
    data = obj.data["data"]
    assert set(data) == {"plain", "single", "double", "braced", "block"}
    assert data["single"] == value
    assert data["double"] == value
    assert data["braced"] == f"pre-{value}-post"
    assert data["block"] == value + "\n"
    # Unquoted: the value as YAML would type it on its own, but never structure.
    assert isinstance(data["plain"], (str, type(None))) or value.strip() == ""


@pytest.mark.parametrize("value, expected", [
    ("3", 3), ("true", True), ("yes", True), ("off", False), ("0644", 420), ("1_000", 1000),
    ("", None), ("~", None), ("1.5", 1.5), ("2024-01-01", "2024-01-01"), ("v1.2", "v1.2"),
])
def test_unquoted_scalars_keep_yaml_typing_and_quoted_ones_stay_strings(tmp_path, value, expected):
    text = """\
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: cm
    data:
      quoted: "$N"
    binaryData: {}
    immutable: false
    """
    [obj] = render_text(tmp_path, text, {"N": value})
    assert obj.data["data"]["quoted"] == value
    plain = render_text(tmp_path, "apiVersion: v1\nkind: X\nmetadata:\n  name: x\nv: $N\n",
                        {"N": value}, name="b.yaml", namespace="")[-1]
    assert plain.data["v"] == expected and type(plain.data["v"]) is type(expected)


def test_every_undefined_variable_is_reported_at_once(tmp_path):
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: $NAME\ndata:\n  a: ${ONE}-$TWO\n"
    with pytest.raises(UserError) as err:
        render_text(tmp_path, text, {})
    lines = str(err.value).splitlines()
    path = os.path.join(str(tmp_path), "manifests", "app", "a.yaml")
    assert lines == [f"{path}:4:9: undefined variable NAME",
                     f"{path}:6:6: undefined variable ONE",
                     f"{path}:6:13: undefined variable TWO"]


def test_the_problems_of_every_file_come_together_in_the_order_of_the_files(tmp_path):
    # each file fails at another step of the render (decode, substitute, read, make objects)
    files = {"a.yaml": "apiVersion: v1\nkind: [\n", "b.yaml": "kind: $MISSING\n",
             "c.yaml": b"\xff\xfe", "d.yaml": "apiVersion: v1\nkind: ConfigMap\n"}
    folder = tmp_path / "manifests" / "app"
    folder.mkdir(parents=True)
    for name, content in files.items():
        (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    found = components.discover(str(tmp_path / "manifests"), {"K8S_NAMESPACE": "demo"})
    with pytest.raises(UserError) as err:
        render.render_components(found, {})
    named = [re.match(r".*/(\w\.yaml)", line)[1] for line in str(err.value).splitlines()]
    assert named == ["a.yaml", "b.yaml", "c.yaml", "d.yaml"], str(err.value)


def test_defaults_required_values_and_dollar_escape(tmp_path):
    text = """\
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: ${NAME:-fallback}
    data:
      price: "$$5 and $${NOT}"
      empty: "${EMPTY:-was empty}"
    """
    [obj] = render_text(tmp_path, text, {"EMPTY": ""})
    assert obj.name == "fallback"
    assert obj.data["data"] == {"price": "$5 and ${NOT}", "empty": "was empty"}
    with pytest.raises(UserError, match=r"a.yaml:4:9: undefined variable NAME: set it"):
        render_text(tmp_path, text.replace(":-fallback", ":?set it"), {})


def test_jinja_templates_loop_and_fail_on_undefined_names(tmp_path):
    text = """\
    {% for v in VOLUMES.split() %}
    ---
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: vol-{{ v }}
    {% endfor %}
    """
    objects = render_text(tmp_path, text, {"VOLUMES": "admin share"}, name="v.yaml.j2")
    assert [o.name for o in objects] == ["vol-admin", "vol-share"]
    with pytest.raises(UserError, match=r"v.yaml.j2:1: undefined variable in template: 'VOLUMES'"):
        render_text(tmp_path, text, {}, name="v.yaml.j2")


def test_namespaced_objects_get_the_default_namespace_cluster_scoped_do_not(tmp_path):
    text = """\
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: a}
    ---
    ---
    apiVersion: rbac.authorization.k8s.io/v1
    kind: ClusterRole
    metadata: {name: b}
    ---
    apiVersion: v1
    kind: Secret
    metadata: {name: c, namespace: other}
    """
    objects = render_text(tmp_path, text, {})
    assert [(o.kind, o.namespace) for o in objects] == [
        ("ConfigMap", "demo"), ("ClusterRole", None), ("Secret", "other")]
    assert [o.source.line for o in objects] == [1, 6, 10]


def test_duplicate_objects_name_both_places(tmp_path):
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: same\n"
    folder = tmp_path / "manifests" / "app"
    folder.mkdir(parents=True)
    (folder / "a.yaml").write_text(doc)
    (folder / "b.yaml").write_text("# comment\n---\n" + doc)
    found = components.discover(str(tmp_path / "manifests"), {"K8S_NAMESPACE": "demo"})
    with pytest.raises(UserError) as err:
        render.render_components(found, {})
    assert str(err.value) == (f"{folder}/b.yaml:3: ConfigMap/same: duplicate object, "
                              f"first defined at {folder}/a.yaml:1")


def test_a_list_document_and_missing_fields_are_errors(tmp_path):
    with pytest.raises(UserError, match=r"a.yaml:1: document 1 is a list, expected a Kubernetes object"):
        render_text(tmp_path, "- a\n- b\n", {})
    with pytest.raises(UserError, match=r"a.yaml:1: ConfigMap/\?: missing metadata.name"):
        render_text(tmp_path, "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", {})


def test_kind_list_is_expanded(tmp_path):
    text = """\
    apiVersion: v1
    kind: List
    items:
    - {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}
    - {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}
    """
    assert [o.name for o in render_text(tmp_path, text, {})] == ["a", "b"]


@pytest.mark.parametrize("items, message", [
    ("\n- hello\n- {apiVersion: v1, kind: ConfigMap}", "4: item 1 of the List: a string, expected a "
     "Kubernetes object\n.*a.yaml:5: ConfigMap/\\?: item 2 of the List: missing metadata.name"),
    (" 3", "1: the items of a List must be a list, not a number"),
])
def test_bad_list_items_are_errors_naming_the_item(tmp_path, items, message):
    with pytest.raises(UserError, match=rf"a.yaml:{message}$"):
        render_text(tmp_path, f"apiVersion: v1\nkind: List\nitems:{items}\n", {})


def test_emitted_yaml_decodes_back_to_the_same_objects():
    doc = {"a": "on", "b": "0644", "c": "1e3", "d": "2024-01-01", "e": "", "f": "multi\nline\n",
           "g": 3, "h": True, "i": None, "j": "plain text", "k": "~", "l": "-5", "m": ".inf"}
    [back] = kubeyaml.load_all(emit.to_yaml([doc]), "<emit>")
    assert back.data == doc


# The whole renderer under fuzz: any value, in any scalar position, lands intact.
VALUE = st.text(alphabet=st.sampled_from(list("ab1 :#-*&!|>'\"\\\n\t{}[],?%@`$~.0")), max_size=12)


@settings(max_examples=examples(2000))
@given(value=VALUE)
def test_fuzz_values_land_inside_their_scalars(tmp_path_factory, value):
    tmp_path = tmp_path_factory.mktemp("fuzz")
    [obj] = render_text(tmp_path, CONFIGMAP, {"V": value})
    data = obj.data["data"]
    assert data["single"] == value
    assert data["double"] == value
    assert data["braced"] == f"pre-{value}-post"


@pytest.mark.parametrize("metadata, message", [
    ("{name: a, namespace: {a: b}}", "ConfigMap/a: metadata.namespace must be a string, not a mapping"),
    ("{name: a, namespace: no}", "ConfigMap/a: metadata.namespace must be a string, not a boolean"),
    ("{name: 3}", "ConfigMap/?: metadata.name must be a string, not a number"),
    ("[a]", "ConfigMap/?: metadata must be a mapping, not a list"),
])
def test_mistyped_identity_fields_are_named(tmp_path, metadata, message):
    with pytest.raises(UserError, match=rf"a.yaml:1: {re.escape(message)}$"):
        render_text(tmp_path, f"apiVersion: v1\nkind: ConfigMap\nmetadata: {metadata}\n", {})


def test_a_cluster_scoped_object_with_a_namespace_is_an_error(tmp_path):
    text = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: x, namespace: a}\n"
    with pytest.raises(UserError, match=r"a.yaml:1: ClusterRole/x: ClusterRole is cluster-scoped: "
                                        r"remove metadata.namespace$"):
        render_text(tmp_path, text, {})


FLOW = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data:
  args: [--x, "${V}", ${V}, pre-${V}-post]
  map: {k: ${V}, ${W}: v}
"""


@pytest.mark.parametrize("value", ["a=b", "a#b", " lead", "trail ", "x: y", "<<", "it's", '"q"', "{a}", "[1]", "plain"])
def test_braced_references_inside_flow_collections_land_in_their_scalars(tmp_path, value):
    [obj] = render_text(tmp_path, FLOW, {"V": value, "W": "key"})
    assert obj.data["data"]["args"] == ["--x", value, value, f"pre-{value}-post"]
    assert obj.data["data"]["map"] == {"k": value, "key": "v"}


def test_an_undefined_braced_reference_in_a_flow_collection_names_its_place(tmp_path):
    with pytest.raises(UserError) as err:
        render_text(tmp_path, FLOW, {"W": "a=b"})  # W needs protecting: the per-scalar path
    assert [line.split("a.yaml:")[1] for line in str(err.value).splitlines()] == [
        "5:16: undefined variable V", "5:23: undefined variable V", "5:33: undefined variable V",
        "6:12: undefined variable V"]

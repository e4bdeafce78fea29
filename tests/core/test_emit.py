"""The YAML writer: what it writes, kubectl's decoding (kubeyaml) reads back as the same objects."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k8s.core import emit, kubeyaml

from ..conftest import examples

# Strings that would read as something else unquoted, and some that read right plain.
QUOTED = ["yes", "No", "ON", "off", "y", "N", "true", "False", "null", "Null", "~", "", "0644", "1_000", "1e3",
          "0x1f", "0b101", "-5", "+1", ".inf", ".NaN", "2024-01-01", "2024-01-01T10:00:00Z", "190:20:30",
          " lead", "trail ", "a: b", "a #b", "#x", "- x", "? x", ": x", "&a", "*a", "!tag", "|", ">", "@x",
          "`x", "%x", "'x'", '"x"', "[a]", "{a: 1}", "a,b", "<<", "=", "---", "...", "x:", "tab\there",
          "line\u2028break", "nel\x85", "bom\ufeff", "bell\x07", "del\x7f"]
PLAIN = ["web", "nginx:1.27", "/healthz", "app.kubernetes.io/name", "hello world", "a=b", "_x", "Yesterday",
         "registry.example.com/app@sha256:0123", "100m", "128Mi", "1.5G", "x-1_2.3"]
SCALARS = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.sampled_from(QUOTED + PLAIN),
    st.text(st.sampled_from(list("ab1 :#-\n\t'\"\\|>{}[],?&*!%@`~.=\u2028\x85")), max_size=16),
    st.integers(-2**63, 2**63 - 1), st.booleans(), st.none(),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f != int(f) if abs(f) < 2**53 else True))
KEYS = st.one_of(st.text(st.characters(blacklist_categories=("Cs",)), max_size=12), st.sampled_from(QUOTED + PLAIN))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(KEYS, inner, max_size=3)), max_leaves=16)


def same(a, b):
    """Equal as JSON values, as kubectl compares them: 1e20 and its integer spelling are one number."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None or isinstance(a, str):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or math.isclose(a, b, rel_tol=0, abs_tol=0)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return False


def read(text):
    return [d.data for d in kubeyaml.load_all(text, "<written>")]


@settings(max_examples=examples(1500, 300), deadline=None)
@given(st.lists(st.dictionaries(KEYS, VALUES, min_size=1, max_size=5), min_size=1, max_size=3))
def test_what_it_writes_reads_back_as_the_same_objects(documents):
    text = emit.to_yaml(documents)
    assert same(read(text), documents), text
    assert emit.to_yaml(documents) == text  # the same bytes run to run


@pytest.mark.parametrize("value", QUOTED)
def test_strings_that_would_read_as_something_else_are_quoted(value):
    text = emit.to_yaml([{"k": value}])
    assert text.startswith('---\nk: "'), text
    assert read(text) == [{"k": value}]


@pytest.mark.parametrize("value", PLAIN)
def test_strings_that_read_the_same_are_plain(value):
    assert emit.to_yaml([{"k": value}]) == f"---\nk: {value}\n"


@pytest.mark.parametrize("value, written", [
    ("a\nb\n", "k: |\n  a\n  b\n"), ("a\nb", "k: |-\n  a\n  b\n"), ("a\n\n", "k: |+\n  a\n\n"),
    ("\n\na", "k: |-\n\n\n  a\n"), ("  indented\nx", 'k: "  indented\\nx"\n'), ("trailing \nx", 'k: "trailing \\nx"\n'),
    ("# not a comment\n  more\n", "k: |\n  # not a comment\n    more\n"),
])
def test_several_lines_are_a_literal_block_where_it_holds_them_exactly(value, written):
    text = emit.to_yaml([{"k": value}])
    assert text == "---\n" + written
    assert read(text) == [{"k": value}]


def test_keys_keep_their_order_unless_sorted_and_long_keys_are_explicit():
    doc = {"b": 1, "a": {"d": [], "c": {}}, "k" * 1200: "v"}
    assert emit.to_yaml([doc]).startswith("---\nb: 1\na:\n  d: []\n  c: {}\n? kkk")
    assert emit.to_yaml([doc], sort_keys=True).startswith("---\na:\n  c: {}\n  d: []\nb: 1\n")
    assert read(emit.to_yaml([doc])) == [doc]


def test_keys_that_are_equal_in_python_stay_apart():
    assert emit.to_yaml([{1: "a"}, {True: "b"}, {"1": "c"}]) == '---\n1: a\n---\ntrue: b\n---\n"1": c\n'


def test_floats_stay_floats_and_nan_is_refused():
    assert emit.to_yaml([{"a": 1e20, "b": 0.5, "c": 5e-324}]) == "---\na: 1.0e+20\nb: 0.5\nc: 5.0e-324\n"
    with pytest.raises(ValueError):
        emit.to_yaml([{"a": math.nan}])


def test_a_kept_document_is_its_own_text():
    kept = emit.Kept("# a comment\napiVersion: v1   # here\nkind: List\nitems: []\n")
    assert emit.to_yaml([{"a": 1}, kept]) == "---\na: 1\n---\n" + kept


def test_json_is_a_list_kubectl_reads():
    import json

    docs = [{"a": "é", "b": [1, 2.5, None, True]}]
    assert json.loads(emit.to_json(docs)) == {"apiVersion": "v1", "kind": "List", "items": docs}
    assert emit.to_json(docs).startswith('{\n  "apiVersion": "v1",\n')

"""k8s.core.kubeyaml: kubectl's YAML decoding (hand-written expectations) and fast == slow."""

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k8s.core import kubeyaml, kubeyaml_decoder, kubeyaml_stream
from k8s.errors import UserError
from k8s.core.kubeyaml import Document, is_fast, line_of, load_all, load_all_substituting


def strict(a, b):
    """Equality that also tells bool from int from float, recursively."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strict(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(strict, a, b))
    return a == b


def reference(text):
    """The slow path for every document: the definition of correct."""
    return [Document(i, line, kubeyaml_decoder._decode(
                kubeyaml_stream._chunk(text, start, end), "f.yaml", line0))
            for i, (start, end, line0, line) in enumerate(kubeyaml_stream._spans(text, "f.yaml"))]


def value(text):
    [doc] = load_all(f"k: {text}\n", "f.yaml")
    return doc.data["k"]


# Expected values worked out by hand from go-yaml v2 resolve.go / decode.go, then
# sigs.k8s.io/yaml's JSON round trip (integral floats below 1e21 come back as ints).
VALUES = [
    # YAML 1.1 booleans (resolveMap)
    *[(w, True) for w in "y Y yes Yes YES on On ON true True TRUE".split()],
    *[(w, False) for w in "n N no No NO off Off OFF false False FALSE".split()],
    ("yES", "yES"), ("tRUE", "tRUE"), ("oN", "oN"), ("'yes'", "yes"), ('"on"', "on"), ("|\n  yes", "yes\n"),
    # nulls
    *[(w, None) for w in ["~", "null", "Null", "NULL", ""]], ("nULL", "nULL"), ("''", ""), ('"~"', "~"),
    # ints: strconv.ParseInt(s without '_', 0, 64)
    ("0", 0), ("-0", 0), ("+0", 0), ("8080", 8080), ("-5", -5), ("+5", 5), ("0644", 420), ("00", 0),
    ("0x1F", 31), ("0X1f", 31), ("-0x1F", -31), ("0o17", 15), ("0O17", 15), ("0b101", 5), ("-0b101", -5),
    ("1_000", 1000), ("0x_1F", 31), ("1__0", 10), ("1_", 1), ("+0x1F", 31),
    ("9223372036854775807", 9223372036854775807), ("-9223372036854775808", -9223372036854775808),
    # beyond int64: ParseUint's uint64, then JSON makes it a float
    ("9223372036854775808", 9223372036854775808.0), ("18446744073709551615", 18446744073709551615.0),
    ("18446744073709551616", 18446744073709551616.0), ("99999999999999999999", 1e20),
    ("+9223372036854775808", 9223372036854775808.0),
    # floats: yamlStyleFloat; integral ones below 1e21 come back from JSON as ints
    ("09", 9), ("08.5", 8.5), ("1.0", 1), ("1.", 1), ("-1.0", -1), ("0.0", 0), ("-0.0", 0),
    ("1e3", 1000), ("1E3", 1000), ("1e+3", 1000), ("1.5e3", 1500), ("1.5", 1.5), ("-1.5", -1.5),
    ("1.50", 1.5), (".5", 0.5), ("-.5", -0.5), ("+.5", 0.5), (".5e1", 5), ("1e-3", 0.001),
    ("1e21", 1e21), ("1e20", 1e20), ("1e18", 10**18), ("1.5e20", 1.5e20), ("1e-7", 1e-07),
    ("._5", "._5"), (".5_5", 0.55), ("1_0.5", 10.5), ("1e400", "1e400"),
    ("9223372036854177.5808", 9223372036854178),
    # strings
    ("0x", "0x"), ("0b", "0b"), ("0b2", "0b2"), ("08", 8), ("0_8", 8), ("_1", "_1"), ("1e", "1e"),
    ("5e-", "5e-"), ("1:20", "1:20"), ("1:20:30", "1:20:30"), ("2024-01-01", "2024-01-01"),
    ("2024-01-01T10:00:00Z", "2024-01-01T10:00:00Z"), ("10Gi", "10Gi"), ("500m", "500m"),
    ("1.2.3", "1.2.3"), ("inf", "inf"), ("+inf", "+inf"), ("nan", "nan"), ("--", "--"), ("+", "+"),
    (".", "."), ("<<", "<<"), ("=", "="), ('"0644"', "0644"), ("'1.0'", "1.0"), ("nginx:1.0", "nginx:1.0"),
    ("a b", "a b"), (">\n  a\n  b", "a b\n"),
    # explicit tags (resolve with a tag, decode.go scalar)
    ("!!str 0644", "0644"), ("!!str yes", "yes"), ("!!int '12'", 12), ("!!int 0x10", 16), ("!!float 1", 1),
    ("!!float '1.5'", 1.5), ("!!bool yes", True), ("!!bool 'off'", False), ("!!null ''", None),
    ("!!null ~", None), ("!!binary aGVsbG8=", "hello"), ("!!binary |\n  aGVs\n  bG8=", "hello"),
    ("!!binary /w==", "\ufffd"), ("!!timestamp 2024-02-29", "2024-02-29"),
    ("!!timestamp 2024-1-2 3:4:5", "2024-1-2 3:4:5"), ("!custom 12", "12"), ("! 12", "12"), ("!!map x", "x"),
    ("&a 12", 12),
]


@pytest.mark.parametrize("text, expected", VALUES)
def test_kubectl_value(text, expected):
    got = value(text)
    assert strict(got, expected), (text, got, expected)
    assert strict(reference(f"k: {text}\n")[0].data["k"], expected)


KEYS = [("on", "true"), ("n", "false"), ("TRUE", "true"), ("1", "1"), ("0644", "420"), ("0x1F", "31"),
        ("1.5", "1.5"), ("1.0", "1"), ("1e3", "1000"), ("1e6", "1e+06"), ("1234567.0", "1.234567e+06"),
        ("0.00001", "1e-05"), ("0.0001", "0.0001"), ("3.14159265358979", "3.1415927"), ("-0.0", "-0"),
        (".inf", ".inf"), ("-.inf", "-.inf"), (".nan", ".nan"), ("1e40", ".inf"), ("'on'", "on"),
        ("2024-01-01", "2024-01-01"), ("!!str 1", "1"), ("-9223372036854775808", "-9223372036854775808")]


@pytest.mark.parametrize("text, expected", KEYS)
def test_kubectl_key(text, expected):
    [doc] = load_all(f"{text}: v\n", "f.yaml")
    assert list(doc.data) == [expected]


ERRORS = [
    ("k: .inf\n", 1, 4, ".inf cannot be represented in JSON"),
    ("k:\n  - -.Inf\n", 2, 5, "-.inf cannot be represented"),
    ("k: .NaN\n", 1, 4, ".nan cannot be represented"),
    ("a: 1\nb: 2\na: 3\n", 3, 1, "duplicate key 'a'"),
    ("x:\n  on: 1\n  yes: 2\n", 3, 3, "duplicate key 'true'"),
    ("1: a\n'1': b\n", 2, 1, "duplicate key '1'"),
    ("~: v\n", 1, 1, "unsupported map key null"),
    ("18446744073709551615: v\n", 1, 1, "uint64"),
    ("? [a]\n: v\n", 1, 3, "invalid map key"),
    ("k: !!int 1.5\n", 1, 4, "cannot decode !!float `1.5` as a !!int"),
    ("k: !!bool 1\n", 1, 4, "cannot decode !!int `1` as a !!bool"),
    ("k: !!float 18446744073709551615\n", 1, 4, "as a !!float"),
    ("k: !!null x\n", 1, 4, "cannot decode !!str `x` as a !!null"),
    ("k: !!timestamp 2024-02-30\n", 1, 4, "as a !!timestamp"),
    ("k: !!binary 'a!b'\n", 1, 4, "invalid base64"),
    ("a: &x [*x]\n", 1, 4, "contains itself"),
    ("a: {<<: [1]}\n", 1, 9, "map merge requires map"),
    ("a: {<<: 1}\n", 1, 9, "map merge requires map"),
    ("k: [1, 2\n", 2, 1, "invalid YAML"),
    ("k: *nope\n", 1, 4, "invalid YAML"),
    ("---\na: 1\n---\nb: [\n", 5, 1, "invalid YAML"),
    ("a: 1\n--- a: 2\n", 2, 4, "invalid document separator"),
    ("a: 1\n----\n", 2, 4, "invalid document separator"),
    ("%YAML 1.1\n---\na: 1\n", 2, 1, "invalid YAML"),
    ("k: v\x01\n", 1, 5, "invalid YAML"),
]


@pytest.mark.parametrize("text, line, col, message", ERRORS)
def test_errors(text, line, col, message):
    with pytest.raises(UserError) as info:
        load_all(text, "f.yaml")
    e = info.value
    assert (e.file, e.line, e.col) == ("f.yaml", line, col), str(e)
    assert message in e.message
    assert "\n" not in str(e) and str(e).startswith(f"f.yaml:{line}:{col}: ")


def test_binary_and_json_errors():
    with pytest.raises(UserError, match="binary file"):
        load_all("a: 1\x00\n", "f.yaml")
    with pytest.raises(UserError) as info:  # neither JSON nor YAML: the JSON error
        load_all('{"a": 1,\n "b": [}', "f.json")
    assert (info.value.line, info.value.col) == (2, 8)
    with pytest.raises(UserError, match="duplicate key"):
        load_all('{"a": 1, "a": 2}', "f.json")
    # text that starts like JSON but is none: kubectl reads it as YAML, where NaN is a string
    assert [d.data for d in load_all('{"a": NaN, b: [x,],}', "f.json")] == [{"a": "NaN", "b": ["x"]}]


def test_go_yaml_v2_scanner_where_libyaml_0_2_5_differs():
    # scannerc.go knows no \/ escape but takes \' inside "..."; it ends a plain scalar at '?'
    # inside [ ] and { }
    with pytest.raises(UserError, match="unknown escape"):
        load_all('k: "a\\/b"\n', "f.yaml")
    assert load_all("k: \"it\\'s\"\nj: \"\\'\"\n", "f")[0].data == {"k": "it's", "j": "'"}
    for text in ["k: [a?b]\n", "k: [http://x?y=1]\n", "k: {a?b: c}\n"]:
        with pytest.raises(UserError, match="'\\?'"):
            load_all(text, "f.yaml")
    assert load_all('k: ["a?b", a]\nj: a?b\n', "f")[0].data == {"k": ["a?b", "a"], "j": "a?b"}


def test_documents_read_as_yamlreader_hands_them_on():
    # every line, the last one too, ends in "\n"; CRLF becomes LF
    assert load_all("k: |\n  a", "f")[0].data == {"k": "a\n"}
    assert load_all("k: |\r\n  a\r\n  b\r\n", "f")[0].data == {"k": "a\nb\n"}
    assert load_all("a: 1\r\n---\r\nk: >-\r\n  x\r\n  y", "f")[1].data == {"k": "x y"}


def test_limits_fail_cleanly():
    for text in ["- " * 30000 + "x\n", "k: " + "[" * 60000 + "]" * 60000, "k: " + "{a: " * 1000 + "}" * 1000]:
        with pytest.raises(UserError, match="nested too deeply"):
            load_all(text, "f.yaml")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8))
    with pytest.raises(UserError, match="excessive aliasing"):
        load_all(bomb, "f.yaml")


def test_merge_keys_follow_go_yaml_v2():
    text = """\
base: &base {a: 1, b: 2}
more: &more {b: 20, c: 30}
p:
  <<: *base
  b: 3
q:
  b: 3
  <<: *base
r:
  <<: [*more, *base]
s:
  <<: {a: 1, <<: {d: 4}}
y: {}
"""
    [doc] = load_all(text, "f.yaml")
    assert doc.data["p"] == {"a": 1, "b": 3}
    assert doc.data["q"] == {"a": 1, "b": 2}  # go-yaml v2 merges in place: the later merge wins
    assert doc.data["r"] == {"a": 1, "b": 20, "c": 30}  # a merged list: earlier maps win
    assert doc.data["s"] == {"a": 1, "d": 4}
    assert doc.data["true"] == {}  # y is a YAML 1.1 boolean
    assert load_all("a: {'<<': {b: 1}}", "f")[0].data == {"a": {"<<": {"b": 1}}}  # quoted: a plain key
    assert load_all("a: {!!merge <<: {b: 1}}", "f")[0].data == {"a": {"b": 1}}


def test_documents():
    text = "# head\n---\na: 1\n---\n\n# only a comment\n---\n- 1\n- 2\n---   # c\n\nb: on\n---\n"
    docs = load_all(text, "f.yaml")
    assert docs == [Document(0, 3, {"a": 1}), Document(1, 4, None), Document(2, 8, [1, 2]),
                    Document(3, 12, {"b": True}), Document(4, 13, None)]
    assert load_all("", "f") == [] and load_all("# c\n\n", "f") == []
    assert load_all("a: 1", "f") == [Document(0, 1, {"a": 1})]
    assert load_all("---\n---\n", "f") == [Document(0, 1, None), Document(1, 2, None)]
    assert load_all("\n\na: 1\r\n---\r\nb: 2\r\n", "f") == [
        Document(0, 3, {"a": 1}), Document(1, 5, {"b": 2})]
    # what follows `...` in a document is not read (yaml.Unmarshal reads one document)
    assert load_all("a: 1\n...\nb: [\n", "f") == [Document(0, 1, {"a": 1})]
    # a document can be any value; shape checks are the caller's
    assert [d.data for d in load_all("--- # c\nfoo\n---\n12\n", "f")] == ["foo", 12]


def test_json_stream():
    text = ' \n{"a": 1.0, "b": 1e3, "c": 10,\n "d": 99999999999999999999}\n{"e": [null, true]}\n'
    docs = load_all(text, "f.json")
    assert docs == [Document(0, 2, {"a": 1, "b": 1000, "c": 10, "d": 1e20}),
                    Document(1, 4, {"e": [None, True]})]
    # kubectl sends 1.0 as 1 (encoding/json writes an integral float so; PreserveInts reads an int)
    assert type(docs[0].data["a"]) is int and type(docs[0].data["d"]) is float
    assert line_of(text, "f.json", 0, ["d"]) == 3


def test_line_of():
    text = "a: 1\n---\n# c\nz:\n  q: [1,\n   2]\n  r:\n    - x\n    - y: 1\n  <<: {m: 1}\n"
    assert line_of(text, "f", 0, []) == 1
    assert line_of(text, "f", 1, []) == 4
    assert line_of(text, "f", 1, ["z", "q", 1]) == 6
    assert line_of(text, "f", 1, ["z", "r", 1, "y"]) == 9
    assert line_of(text, "f", 1, ["z", "nope", 1]) == 4
    assert line_of(text, "f", 1, ["z", "r", 5]) == 7
    assert line_of(text, "f", 1, ["z", "m"]) == 10
    assert line_of(text, "f", 2, ["z"]) is None
    assert line_of("a: [\n", "f", 0, ["a"]) is None


def test_substituting():
    env = {"N": "3", "S": "a: b # c\n- x", "E": "", "Y": "yes", "A": "*x", "T": "!!int 1", "O": "0644"}

    def expand(s):
        return re.sub(r"\$(\w+)", lambda m: env[m.group(1)], s)

    text = 'r: $N\nq: "$N"\ns: $S\ne: $E\nv: $Y\nb: |\n  $N\na: $A\nt: $T\no: $O\n$N: k\nl: [$N, \'$N\']\n'
    [doc] = load_all_substituting(text, "t.yaml", expand)
    assert strict(doc.data, {"r": 3, "q": "3", "s": "a: b # c\n- x", "e": None, "v": True, "b": "3\n",
                             "a": "*x", "t": "!!int 1", "o": 420, "3": "k", "l": [3, "3"]})
    with pytest.raises(UserError, match="duplicate key '3'"):
        load_all_substituting("$N: a\n3: b\n", "t.yaml", expand)


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, "app.kubernetes.io/part-of": shop}
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: web
          image: "registry.example.com/web:1.25.3"
          args: ["--port", "8080"]
          ports:
            - containerPort: 8080
          resources:
            limits: {cpu: 500m, memory: 256Mi}
          env:
            - name: RATIO
              value: "0.5"
"""


def test_a_typical_manifest_takes_the_fast_path(monkeypatch):
    text = "---\n".join([DEPLOYMENT] * 3)
    assert is_fast(text)
    expected = reference(text)
    # load_all looks `_decode` up in kubeyaml's namespace (imported from kubeyaml_decoder)
    monkeypatch.setattr(kubeyaml, "_decode", lambda *args: pytest.fail("slow path taken"))
    assert load_all(text, "f.yaml") == expected
    assert expected[2].line == 43 and expected[2].data["spec"]["replicas"] == 3


def test_is_fast():
    fast = ["a: 1\nb: 1.5\nc: -2\nd: true\ne: null\nf: ~\ng: 'on'\nh: \"0644\"\ni: app-1\nj: nginx:1.0\n",
            "k: {a: 1, b: [x, z]}\nl: ['a', \"b\"]\nm: {}\nn1: []\n", "k: \"a\\\\nb\"\nj: 123456.1234567\n",
            "k:\n  - name: x\n    port: 8080\n  - [1, 2.5, 'y']\nl: {m: n1}\n# on\n", "a: 10Gi\nb: 500m\n",
            'args: ["--listen", ":8080"]\n', 'k: ":8080"\n', '- ":x"\n', "k: |\n  x\n", "k: >-\n  a\n  b\nl: 1\n",
            "- k: |\n    x\n", "- |\n    x\n"]
    slow = ["k: on", "k: 0644", "k: 1.0", "k: 1e3", "k: +5", "k: .5", "k: 1_0", "8080: x", "true: x",
            "k: &a x", "k: *a", "k: !t x", "<<: {}", "k:\tx", "k: x\r", "\ufeffk: x", "k: [a, yes]",
            "k:\n- no", "k:\n  - - off", "k: {a: y}", "...\n", "%YAML 1.2\n---\n", "? x\n: y", "[a]: b",
            '{"a":1}', "k: 12345678901234567890", "k: _1", "k: 2.", "k: v # x\nNo: 1", "k: 1.5: 2",
            "k: |\n", "k: >\n", "k:  |\n", "  >\n", "k: | # c\r\n  \r\n", "k: |\n\n  x\n", "- k: |\n  other: 1\n", "k: |2\n   x\n", "k: [a, |]", "k: [a:]", "k: [a ::]", "k: [{~}]", "k: {1}", "k: [a,\n b]",
            "k: [[[a]]]",
            'k: "a\\/b"', "k: [a?b]", 'k: "b":c', '"a":b', 'k: "x\\"":b', "k: 'q\"' \":x\"",
            'k: "b" # ":x"', 'k: {"a":b}', 'k: "a\n  b":c', '":\\"-\n', 'k: a"b, "c, ":x"', "k: 1234567.5", "k: 0.123456789", "x: 1\n" + " " * 6000 + "y: 2\n"]
    assert all(is_fast(t) for t in fast)
    assert not any(is_fast(t) for t in slow), [t for t in slow if is_fast(t)]


@pytest.mark.parametrize("text, expected", [
    ("b: [.NaN]\n<<: {b: 1}\n", {"b": 1}),  # the merge replaces it: kubectl never writes the NaN
    ("b: &x .nan\nc: *x\n<<: {b: 2, c: 3}\n", {"b": 2, "c": 3}),
    ("<<: {b: 1}\nb: [.inf]\n", "2:5: .inf cannot be represented in JSON"),  # set after the merge: it stays
    ("a: [1, {b: -.inf}]\n", "1:12: -.inf cannot be represented in JSON"),
    ("a: {~: 1}\n<<: {a: 2}\n", {"a": 2}),  # a null key, in a mapping the merge replaces
    ("<<: {a: {~: 1}}\na: 3\n", {"a": 3}),
    ("<<: {a: {~: 1}}\n", "1:10: unsupported map key null"),
])
def test_what_json_cannot_hold_is_refused_only_when_it_stays_in_the_object(text, expected):
    if isinstance(expected, dict):
        assert load_all(text, "f.yaml")[0].data == expected
    else:
        with pytest.raises(UserError, match=f"f.yaml:{expected}"):
            load_all(text, "f.yaml")


def test_an_anchor_defined_again_before_a_colon_is_renamed_once():
    # an anchor's name is letters, digits, '-' and '_': renaming `a:` instead never ended
    with pytest.raises(UserError, match="unsupported map key null"):
        load_all("[{&a: X, &a: X}]\n", "f.yaml")
    decoded = load_all("a: &k one\nb: &k two\nc: {*k: 1}\n", "f.yaml")[0].data
    assert decoded == {"a": "one", "b": "two", "c": {"two": 1}}  # the alias names the latest


# --- fast path == slow path -------------------------------------------------------------

TRICKY = """y Y yes Yes YES yES n N no No NO on On ON oN off Off OFF true True TRUE tRUE false False
FALSE null Null NULL nULL ~ 0 -0 +0 00 01 0644 09 08 0x1F 0X1f 0x 0o17 0b101 -0b101 0b 1_000 _1 1_ +5 -5
1.0 1. 2. 0.0 -0.0 .5 -.5 +.5 ._5 1e3 1E3 1e+3 1e-3 1e_3 1.5e3 1.5 -1.5 0.1 1.50 3.10 1e21 1e400 7 42 8080
9223372036854775807 9223372036854775808 -9223372036854775808 18446744073709551616 123456789012345678
1234567890123456789 .inf -.inf +.inf .Inf .nan .NaN inf nan 2024-01-01 2024-01-01T10:00:00Z 1:20 1:20:30
<< = - -- + . 10Gi 500m 1h app-1 nginx:1.0 é 日本 x a:b #x *a &a !x ? [a] {a} 'q "q | > %x @x `x , ::
""".split() + ["", " ", "a b", "a #b", "a: b", "-1 x", "on off", "x\ty", "é\u00a0x", "\u2028", "\x85"]


def scalar_text(s, style):
    if style == "single":
        return "'" + s.replace("'", "''") + "'"
    if style == "double":
        return json.dumps(s, ensure_ascii=False)
    return s  # plain, and block styles where no block can be (flow, keys)


class Pairs(list):
    """A mapping to render: [(key scalar, value)]."""


def render(value, indent, flow):
    """YAML text for `value` (a scalar is (text, style)); not always valid YAML, on purpose."""
    pad = " " * indent
    if isinstance(value, tuple):
        return scalar_text(*value)
    if flow or not value:
        if not isinstance(value, Pairs):
            return "[" + ", ".join(render(v, 0, True) for v in value) + "]"
        return "{" + ", ".join(f"{render(k, 0, True)}: {render(v, 0, True)}" for k, v in value) + "}"
    lines = []
    for item in value:
        if not isinstance(value, Pairs):
            head, v = f"{pad}-", item
        else:
            head, v = f"{pad}{render(item[0], 0, True)}:", item[1]
        if isinstance(v, tuple) and v[1] in BLOCK:  # a block scalar, maybe empty, maybe under-indented
            text, style = v
            body = "".join(f"\n{pad}{' ' * (len(text) % 3)}{line}" if line else "\n"
                           for line in text.split(" ")[:3])
            lines.append(f"{head} {BLOCK[style]}{body}")
        elif isinstance(v, tuple) or not v:
            lines.append(f"{head} {render(v, 0, True)}")
        else:
            lines.append(head + "\n" + render(v, indent + 2, False))
    return "\n".join(lines)


BLOCK = {"literal": "|", "folded": ">", "strip": "|-", "keep": ">+"}
scalars = st.tuples(st.one_of(st.sampled_from(TRICKY), st.text("01.-+_eExXoObB9y:# ", max_size=6)),
                    st.sampled_from(["plain", "plain", "plain", "single", "double", *BLOCK]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.lists(st.tuples(scalars, inner), max_size=4).map(Pairs)), max_leaves=12)
documents = st.lists(st.tuples(values, st.booleans()), min_size=1, max_size=3).map(
    lambda docs: "---\n".join(render(v, 0, flow) + "\n" for v, flow in docs))


def check_fast_equals_slow(text):
    if kubeyaml_stream._JSON_START.match(text):
        text = "# yaml\n" + text  # kubectl would read it as JSON
    try:
        expected = reference(text)
    except UserError:
        with pytest.raises(UserError):
            load_all(text, "f.yaml")
        return
    got = load_all(text, "f.yaml")
    assert [(d.index, d.line) for d in got] == [(d.index, d.line) for d in expected]
    assert all(strict(g.data, e.data) for g, e in zip(got, expected)), (text, got, expected)


PROFILE = settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))


@PROFILE
@given(documents)
def test_fast_equals_slow(text):
    check_fast_equals_slow(text)


EDITS = list(":-?,[]{}#&*!|>'\"%@` \n\t\r.0123456789eyno~<") + [
    "\n---\n", "\n...\n", ": ", "- ", "\ufeff", "\\/", "\\'", "\n  "]


@PROFILE
@given(documents, st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(EDITS)), max_size=4))
def test_fast_equals_slow_mutated(text, edits):
    for at, piece in edits:
        at %= len(text) + 1
        text = text[:at] + piece + text[at:]
    check_fast_equals_slow(text)


WORDS = st.sampled_from(["x", "a b", "k: v", "- item", "# not a comment", "[1, 2]", "on", "0644", ""])


@PROFILE
@given(st.lists(st.tuples(st.sampled_from(["|", ">", "|-", ">+", "|+", ">-"]),
                          st.lists(st.tuples(st.integers(0, 4), WORDS), max_size=4),
                          st.integers(0, 2), st.booleans()), min_size=1, max_size=4))
def test_block_scalars_fast_equals_slow(blocks):
    """Block scalars of every chomping, empty or not, indented or not, in maps and lists."""
    lines = []
    for i, (header, body, depth, in_list) in enumerate(blocks):
        pad = "  " * depth
        lines.append(f"{pad}{'- ' if in_list else ''}key{i}: {header}")
        lines += [f"{pad}{' ' * extra}{word}" if word else "" for extra, word in body]
    text = "\n".join(lines) + "\n"
    check_fast_equals_slow(text)


def test_a_number_too_long_for_any_integer_stays_text():
    """Go's ParseInt, ParseUint and ParseFloat all fail on it: go-yaml keeps the string."""
    digits = "9" * 5000
    assert load_all(f"a: {digits}\n", "f")[0].data == {"a": digits}

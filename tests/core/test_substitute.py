"""Tests for k8s.core.substitute: envsubst parity, extensions, errors, is_inert.

The fuzz test runs a few hundred examples by default and 10,000 with
HYPOTHESIS_PROFILE=ci.
"""

import itertools
import re
import string
import subprocess
import time

import pytest
import yaml
import yaml_rs
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from k8s.errors import UserError, UserErrors
from k8s.core.substitute import Reference, expand, expand_inert, is_inert, references, used_values

from ..conftest import examples

ENVSUBST = "/usr/bin/envsubst"

# Explicit counts, whatever the profile's default: HYPOTHESIS_PROFILE=ci
# (tests/conftest.py) runs the full 10,000 fuzz examples.
FUZZ_SETTINGS = settings(
    max_examples=examples(10_000, 500),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# Each example spawns envsubst: keep it at ~300 whatever the profile.
PARITY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def envsubst(text, variables):
    """The real GNU envsubst, with exactly `variables` as its environment."""
    done = subprocess.run(
        [ENVSUBST],
        input=text.encode(),
        env=variables,
        capture_output=True,
        check=True,
    )
    return done.stdout.decode()


# Every name that could follow `$` or `${` in a text: a superset of the
# references, so that defining all of them leaves nothing undefined.
_CANDIDATE_NAMES = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def uses_extensions(text):
    """Whether `text` may use syntax where we differ from envsubst by design."""
    return "$$" in text or re.search(r"\$\{[A-Za-z_][A-Za-z0-9_]*:[-?]", text) is not None


# --------------------------------------------------------------------------
# Parity with GNU envsubst (every variable defined, no extensions used)
# --------------------------------------------------------------------------

PARITY_VARIABLES = {
    "A": "va",
    "B": "vb",
    "AB": "vab",
    "A1": "va1",
    "_": "vu",
    "_1": "vu1",
    "a": "lower",
    "LONG_NAME_2": "long",
    "E": "",
    "D": "$B",  # inserted text is not expanded again
    "BR": "${A}",
    "ML": "line1\nline2",
    "U8": "héllo wörld",
}

PARITY_TEXTS = [
    "",
    "no dollar at all",
    "$",
    "x$",
    "$\n",
    "$A",
    "${A}",
    "$A$B",
    "$AB",
    "${A}B",
    "$A1",
    "$A-B",
    "$A.B",
    "$A:B",
    "$A}",
    "${A}}",
    "{$A}",
    "$_",
    "$_1",
    "${_}",
    "$a",
    "$LONG_NAME_2.x",
    "$1",
    "$12A",
    "${1}",
    "${1A}",
    "$ A",
    "$\tA",
    "$-A",
    "${",
    "${ A}",
    "${A",
    "${A\n}",
    "${A B}",
    "${A$B}",
    "${$A}",
    "${{A}",
    "${}",
    "${A:}",
    "${A:x}",
    "${A-x}",
    "${A=x}",
    "${A:=x}",
    "${A:+x}",
    "${#A}",
    "${A[0]}",
    "${A:-x",  # unterminated: literal, as in envsubst
    "${A:-x\ny}",  # no line break in an argument: literal
    "${A:?x\n}",
    "$Aé",
    "$é",
    "$Ä$A",
    "\\$A",
    "'$A'",
    '"$A"',
    "$D",
    "$BR",
    "${ML}",
    "$E|${E}|",
    "$U8",
    "key: $A\r\nother: ${B}\r\n",
    "image: ${A}/pause:${B}  # comment $AB\n  - $_1\n",
    "a: |\n  echo $A ${B} $1 ${A B}\n  $\n",
]


@pytest.mark.parametrize("text", PARITY_TEXTS)
def test_parity_with_envsubst_table(text):
    assert all(name in PARITY_VARIABLES for name in _CANDIDATE_NAMES.findall(text))
    assert expand(text, PARITY_VARIABLES) == envsubst(text, PARITY_VARIABLES)


_PARITY_FRAGMENTS = st.sampled_from(
    ["$", "$", "$", "{", "}", "${", "A", "B", "_", "a", "1", "9", " ", "\n", "\t",
     "-", ":", "?", "=", "é", "$A", "${A}", "${B}", "$AB", "${A:-x}", "${B:?m}", "}}"]
)
_PARITY_CHARS = st.characters(blacklist_categories=("Cs",))
# Values: no NUL (cannot be in an environment), no surrogates (not encodable).
_VALUES = st.text(
    alphabet=st.one_of(
        st.sampled_from("$${}A\n "),
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    ),
    max_size=8,
)


def _without_extensions(text):
    """Break every use of our extensions, keeping the text otherwise as it is."""
    text = re.sub(r"\$(?=\$)", "$ ", text)
    return re.sub(r"(\$\{[A-Za-z_][A-Za-z0-9_]*):(?=[-?])", r"\1:_", text)


@PARITY_SETTINGS
@given(
    text=st.lists(st.one_of(_PARITY_FRAGMENTS, _PARITY_CHARS), max_size=40)
    .map("".join)
    .map(_without_extensions),
    data=st.data(),
)
def test_parity_with_envsubst_generated(text, data):
    assert not uses_extensions(text)
    names = sorted(set(_CANDIDATE_NAMES.findall(text)))
    variables = {name: data.draw(_VALUES, label=name) for name in names}
    assert expand(text, variables) == envsubst(text, variables)


def test_envsubst_differs_by_design():
    """Documents where (and how) we deliberately differ from envsubst."""
    variables = {"A": "va", "E": ""}
    assert envsubst("$$A", variables) == "$va"
    assert expand("$$A", variables) == "$A"
    assert envsubst("${A:-x}", variables) == "${A:-x}"
    assert expand("${A:-x}", variables) == "va"
    assert envsubst("$U", variables) == ""
    with pytest.raises(UserError):
        expand("$U", variables)


# --------------------------------------------------------------------------
# Fuzz against an independent model
# --------------------------------------------------------------------------

_NAME_START = set(string.ascii_letters + "_")
_NAME_CHAR = _NAME_START | set(string.digits)


def _line_col(text, offset):
    return text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset)


def model_expand(text, variables):
    """A character-by-character transliteration of envsubst's scanner (gettext
    envsubst.c, subst_from_stdin) plus our extensions.

    Returns (output, errors) with errors as "line:col: message" strings.
    """
    out, problems = [], []
    i, n = 0, len(text)

    def insert(start, name, operator=None, argument=None, argument_start=None):
        value = variables.get(name)
        if operator is None:
            if value is None:
                problems.append((start, f"undefined variable {name}"))
            else:
                out.append(value)
            return
        unescaped = []
        p = 0
        while p < len(argument):
            if argument[p] == "$":
                if argument[p + 1 : p + 2] != "$":
                    what = "default" if operator == ":-" else "message"
                    problems.append(
                        (
                            argument_start + p,
                            f"`$` in the {what} of {name}: nested references are"
                            " not expanded (write $$ for a literal $)",
                        )
                    )
                    return
                p += 1
            unescaped.append(argument[p])
            p += 1
        argument = "".join(unescaped)
        if value:
            out.append(value)
        elif operator == ":-":
            out.append(argument)
        else:
            message = f"undefined variable {name}"
            if argument:
                message += f": {argument}"
            problems.append((start, message))

    while i < n:
        c = text[i]
        if c != "$":
            out.append(c)
            i += 1
            continue
        start = i
        i += 1
        if i < n and text[i] == "$":
            out.append("$")
            i += 1
            continue
        brace = i < n and text[i] == "{"
        if brace:
            i += 1
        if not (i < n and text[i] in _NAME_START):
            out.append("${" if brace else "$")
            continue
        j = i
        while j < n and text[j] in _NAME_CHAR:
            j += 1
        name = text[i:j]
        if not brace:
            insert(start, name)
            i = j
            continue
        if j < n and text[j] == "}":
            insert(start, name)
            i = j + 1
            continue
        if text[j : j + 2] in (":-", ":?"):
            k = j + 2
            while k < n and text[k] not in "}\n":
                k += 1
            if k < n and text[k] == "}":
                insert(start, name, text[j : j + 2], text[j + 2 : k], j + 2)
                i = k + 1
                continue
        out.append("${" + name)
        i = j
    errors = []
    for offset, message in problems:
        line, col = _line_col(text, offset)
        errors.append(f"{line}:{col}: {message}")
    return "".join(out), errors


_FUZZ_NAMES = ["A", "B", "AB", "E", "U", "_", "A1", "x"]
_FUZZ_FRAGMENTS = st.sampled_from(
    ["$", "$", "$", "$$", "$$$", "{", "}", "${", "A", "B", "E", "U", "_", "1",
     ":-", ":?", ":", "-", "?", " ", "\n", "\t", "é", "\u4e2d", "x",
     "$A", "${A}", "$U", "${U}", "${U:-d}", "${E:-}", "${E:?m}", "${A:?}",
     "${U:-$$}", "${U:-$}", "$${A}", "}}", "${U:-a\nb}", "${A:?m\n}"]
)
_FUZZ_TEXTS = st.lists(
    st.one_of(_FUZZ_FRAGMENTS, st.characters()), max_size=50
).map("".join)
_FUZZ_VARIABLES = st.dictionaries(
    st.sampled_from(_FUZZ_NAMES),
    st.one_of(st.just(""), st.sampled_from(["v", "$", "$$", "${A}", "$B", "x\ny"]), st.text(max_size=5)),
)


@FUZZ_SETTINGS
@given(text=_FUZZ_TEXTS, variables=_FUZZ_VARIABLES)
def test_fuzz_expand(text, variables):
    expected, expected_errors = model_expand(text, variables)
    try:
        result = expand(text, variables, "f.yaml")
    except UserError as error:  # anything else fails the test
        lines = str(error).split("\n")
        assert lines == [f"f.yaml:{e}" for e in expected_errors]
        assert isinstance(error, UserErrors) == (len(expected_errors) > 1)
        return
    assert not expected_errors
    assert result == expected

    # No `$` lost or duplicated: the output is the text between references,
    # with each `$$` turned into `$`, interleaved with the inserted values.
    refs = references(text)
    values = used_values(text, variables)
    assert len(values) == len(refs)
    assert expand_inert(text, variables, "f.yaml") == (result, all(map(is_inert, values)))
    segments, pos = [], 0
    for ref in refs:
        segments.append(text[pos : ref.start])
        pos = ref.end
    segments.append(text[pos:])
    rebuilt = segments[0].replace("$$", "$") + "".join(
        value + segment.replace("$$", "$") for value, segment in zip(values, segments[1:])
    )
    assert result == rebuilt
    assert result.count("$") == (
        text.count("$")
        - sum(text[r.start : r.end].count("$") for r in refs)
        - sum(s.count("$$") for s in segments)
        + sum(v.count("$") for v in values)
    )

    # Escaping every `$` as `$$` makes any text come out unchanged.
    assert expand(text.replace("$", "$$"), variables) == text


@given(text=st.text())
def test_escaped_text_roundtrips(text):
    assert expand(text.replace("$", "$$"), {}) == text
    assert references(text.replace("$", "$$")) == []


def test_dollar_escape():
    variables = {"A": "va"}
    assert expand("$$", variables) == "$"
    assert expand("$$A", variables) == "$A"
    assert expand("$${A}", variables) == "${A}"
    assert expand("$$$A", variables) == "$va"
    assert expand("$$$$A", variables) == "$$A"
    assert expand("a$$ b", variables) == "a$ b"
    assert expand("$$U", {}) == "$U"  # not a reference: no error
    assert references("$$A $${A}") == []


def test_text_without_dollar_is_returned_as_is():
    text = "kind: ConfigMap\n" * 1000
    assert expand(text, {}) is text
    assert references(text) == []
    assert used_values(text, {}) == []


def test_one_megabyte_is_fast():
    line = "  image: ${REGISTRY}/pause:${TAG}  # ${NS:-default} $$HOME\n"
    text = line * (1_000_000 // len(line))
    variables = {"REGISTRY": "registry.k8s.io", "TAG": "3.10", "NS": "ns"}
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        expand(text, variables)
        best = min(best, time.perf_counter() - started)
    # ~50,000 references; about 0.03 s on a laptop.  A per-character Python
    # loop over a megabyte takes well over this bound.
    assert best < 0.5


# --------------------------------------------------------------------------
# Undefined variables
# --------------------------------------------------------------------------


def test_all_undefined_reported_with_positions():
    text = "a: $X\n\tb: ${Y} é${Z}\n$X${OK}$$W\n€€ ${X:?}"
    with pytest.raises(UserErrors) as caught:
        expand(text, {"OK": "ok"}, "manifests/app.yaml")
    assert str(caught.value).split("\n") == [
        "manifests/app.yaml:1:4: undefined variable X",
        "manifests/app.yaml:2:5: undefined variable Y",  # a tab is one column
        "manifests/app.yaml:2:11: undefined variable Z",  # so is é
        "manifests/app.yaml:3:1: undefined variable X",
        "manifests/app.yaml:4:4: undefined variable X",
    ]
    assert [(e.file, e.line, e.col) for e in caught.value.errors] == [
        ("manifests/app.yaml", 1, 4),
        ("manifests/app.yaml", 2, 5),
        ("manifests/app.yaml", 2, 11),
        ("manifests/app.yaml", 3, 1),
        ("manifests/app.yaml", 4, 4),
    ]


def test_single_undefined_is_a_plain_user_error():
    with pytest.raises(UserError) as caught:
        expand("x\n  y: ${NOPE}", {})
    assert not isinstance(caught.value, UserErrors)
    assert str(caught.value) == "<string>:2:6: undefined variable NOPE"
    assert caught.value.message == "undefined variable NOPE"


def test_empty_but_defined_is_fine():
    assert expand("[$E][${E}]", {"E": ""}) == "[][]"


def test_position_offset_of_a_piece_of_a_file():
    with pytest.raises(UserErrors) as caught:
        expand("ab $X\n$Y", {}, "f.yaml", line=10, col=7)
    assert str(caught.value).split("\n") == [
        "f.yaml:10:10: undefined variable X",
        "f.yaml:11:1: undefined variable Y",
    ]


def test_crlf_and_unicode_columns():
    with pytest.raises(UserErrors) as caught:
        expand("k: v\r\n\U0001f600 $X\r\n$Y", {}, "f")
    assert str(caught.value).split("\n") == [
        "f:2:3: undefined variable X",
        "f:3:1: undefined variable Y",
    ]


# --------------------------------------------------------------------------
# ${NAME:-default} and ${NAME:?message}
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("${A:-d}", "va"),
        ("${E:-d}", "d"),  # empty counts as unset, like the shell
        ("${U:-d}", "d"),
        ("${U:-}", ""),
        ("${U:-a b:c/d}", "a b:c/d"),
        ("${U:-{x}", "{x"),  # the default ends at the first }
        ("${U:-x}}", "x}"),
        ("${U:-$$}", "$"),
        ("${U:-a$$b$$$$c}", "a$b$$c"),
        ("${U:-x:-y}", "x:-y"),
        ("${A:?m}", "va"),
        ("${A:?}", "va"),
        ("${A:-$$}", "va"),
    ],
)
def test_operators(text, expected):
    assert expand(text, {"A": "va", "E": ""}) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("${U:?set U to the cluster name}", "1:1: undefined variable U: set U to the cluster name"),
        ("${E:?must not be empty}", "1:1: undefined variable E: must not be empty"),
        ("${U:?}", "1:1: undefined variable U"),
        ("${U:?cost: $$5}", "1:1: undefined variable U: cost: $5"),
        (
            "x ${U:-${B}}",
            "1:8: `$` in the default of U: nested references are not expanded"
            " (write $$ for a literal $)",
        ),
        (
            "${A:-$B}",  # an error even though the default is not used
            "1:6: `$` in the default of A: nested references are not expanded"
            " (write $$ for a literal $)",
        ),
        (
            "${U:?$$$}",
            "1:8: `$` in the message of U: nested references are not expanded"
            " (write $$ for a literal $)",
        ),
    ],
)
def test_operator_errors(text, message):
    with pytest.raises(UserError) as caught:
        expand(text, {"A": "va", "B": "vb", "E": ""}, "f")
    assert str(caught.value) == f"f:{message}"


def test_operator_errors_are_collected_with_undefined():
    with pytest.raises(UserErrors) as caught:
        expand("$X ${Y:?why} ${Z:-ok} $W", {}, "f")
    assert str(caught.value).split("\n") == [
        "f:1:1: undefined variable X",
        "f:1:4: undefined variable Y: why",
        "f:1:23: undefined variable W",
    ]


def test_references():
    text = "a $A ${B}\n  ${C:-x$$y} ${D:?msg} $$E ${F ${G:-x\n}"
    assert references(text) == [
        Reference("A", 2, 4, 1, 3),
        Reference("B", 5, 9, 1, 6, braced=True),
        Reference("C", 12, 22, 2, 3, ":-", "x$$y", True),
        Reference("D", 23, 32, 2, 14, ":?", "msg", True),
    ]
    assert references(text)[2].default == "x$y"
    assert references(text)[3].default is None
    for ref in references(text):
        assert text[ref.start] == "$"


def test_used_values():
    text = "$A ${B} ${E:-dflt} ${U:-u$$} ${A:-no} ${U} $$C ${E:?}"
    assert used_values(text, {"A": "va", "B": "vb", "E": ""}) == ["va", "vb", "dflt", "u$", "va"]


# --------------------------------------------------------------------------
# is_inert
# --------------------------------------------------------------------------

INERT = [
    "3",
    "0",
    "true",
    "null",
    "~",
    "registry.k8s.io/pause:3.10",
    "100m",
    "my-namespace",
    "10.244.0.0/16",
    "a b",
    "a  b",
    "-x",
    "--x",
    "x-",
    "a:b",
    "http://example.com/path",
    "x*&!|>%@`",
    "a=b",
    "<",
    "a<<b",
    "ÄÖÜ中文",
    "a\xa0b",
    "$",
    "$HOME",
    "x" * 1024,
]

NOT_INERT = [
    "",
    "a\nb",
    "a\rb",
    "a\tb",
    "a\x85b",
    "a\u2028b",
    "a\u2029b",
    "a\x00b",
    "a\x1bb",
    "a\x7fb",
    "a\x9fb",
    "a\ufeffb",
    "a\ud800b",
    'a"b',
    "a'b",
    "a\\b",
    "a#b",
    "a,b",
    "a[b",
    "a]b",
    "a{b",
    "a}b",
    "a?b",
    "a: b",
    "a:",
    " a",
    "a ",
    " ",
    "*a",
    "&a",
    "!a",
    "|a",
    ">a",
    "%a",
    "@a",
    "`a",
    ":a",
    ":",
    "-",
    "- a",
    "?",
    "? a",
    "---",
    "---a",
    "...",
    "...a",
    "<<",
    "=",
    "x" * 1025,
]


@pytest.mark.parametrize("value", INERT)
def test_inert(value):
    assert is_inert(value)


@pytest.mark.parametrize("value", NOT_INERT)
def test_not_inert(value):
    assert not is_inert(value)


def _raw(node):
    """A composed YAML node as plain data, scalars as their exact characters."""
    if isinstance(node, yaml.ScalarNode):
        return node.value
    if isinstance(node, yaml.SequenceNode):
        return [_raw(n) for n in node.value]
    return [(_raw(k), _raw(v)) for k, v in node.value]


# (template, expected raw structure for a pasted value v); "k" and "b" are the
# only literal keys (values equal to them are skipped: duplicate keys).
YAML_POSITIONS = [
    ("k: ${V}\n", lambda v: [("k", v)]),
    ("k: a ${V} b\n", lambda v: [("k", f"a {v} b")]),
    ("k: x${V}x\n", lambda v: [("k", f"x{v}x")]),
    ('k: "${V}"\n', lambda v: [("k", v)]),
    ("k: 'a ${V}'\n", lambda v: [("k", f"a {v}")]),
    ("k: |\n  ${V}\n", lambda v: [("k", v + "\n")]),
    ("k: >-\n  a ${V}\n  b\n", lambda v: [("k", f"a {v} b")]),
    ("# ${V}\nk: x # ${V}\n", lambda v: [("k", "x")]),
    ("${V}: x\n", lambda v: [(v, "x")]),
    ("${V}:\n  ${V}: x\n", lambda v: [(v, [(v, "x")])]),
    ("? ${V}\n: ${V}\n", lambda v: [(v, v)]),
    ("[${V}, ${V}]\n", lambda v: [v, v]),
    ("[${V}]\n", lambda v: [v]),
    ("{${V}: ${V}}\n", lambda v: [(v, v)]),
    ("{${V}}\n", lambda v: [(v, "")]),
    ("k: [a, ${V}, {b: ${V}}]\n", lambda v: [("k", ["a", v, [("b", v)]])]),
    ("- ${V}\n- - ${V}\n", lambda v: [v, [v]]),
    ("${V}\n", lambda v: v),
    ("--- ${V}\n", lambda v: v),
    ("k:\n  ${V}\n", lambda v: [("k", v)]),
    ("k: a\n  ${V}\n", lambda v: [("k", f"a {v}")]),
    ('k: "a\n  ${V}"\n', lambda v: [("k", f"a {v}")]),
    ("k: ${V} # c\n", lambda v: [("k", v)]),
]


def _paste(template, value):
    return expand(template, {"V": value})


# Values built from the pieces the rules are about, so that the boundary
# cases (a trailing ":", a leading "-", "---", spaces at the ends, ...) are
# frequent; is_inert then picks the ones the test may paste.
_INERT_CANDIDATES = (
    st.lists(
        st.one_of(
            st.sampled_from(
                ["a", "z", "0", "9", ".", "-", "_", "/", ":", "@", "%", "!", "&",
                 "*", "|", ">", "=", "<", "<<", "~", "+", "$", "^", ";", "`", " ",
                 "é", "\xa0", "中", "---", "...", "- ", ": ", "-", "a:", "true",
                 "null", "0x1", "1e3"]
            ),
            st.sampled_from("'\"#,[]{}?\\\t\n\r\x85\u2028"),
            st.characters(),
        ),
        max_size=6,
    )
    .map("".join)
    .filter(is_inert)
)


@settings(FUZZ_SETTINGS, max_examples=examples(3000, 300))
@given(value=_INERT_CANDIDATES)
def test_inert_values_keep_every_yaml_position(value):
    assume(value not in ("k", "b"))
    _check_every_position(value)


def _check_every_position(value):
    """`value` pasted into each of YAML_POSITIONS lands as exactly its
    characters, for pure-Python PyYAML, libyaml (what k8s.core.kubeyaml composes
    with) and yaml-rs (kubeyaml's fast path)."""
    for template, expected in YAML_POSITIONS:
        document = _paste(template, value)
        assert _raw(yaml.compose(document, Loader=yaml.SafeLoader)) == expected(value), document
        assert _raw(yaml.compose(document, Loader=yaml.CSafeLoader)) == expected(value), document
        yaml.safe_load(document)  # must not raise (e.g. "=", "<<")
        yaml_rs.loads(document)


def _short_values():
    indicators = "a-:?*&!|>%@`.#,[]{}'\"\\ ~<=$^+/_0\t"
    for length in (1, 2):
        yield from map("".join, itertools.product(indicators, repeat=length))
    yield from map("".join, itertools.product("a -:.?", repeat=3))


def test_inert_short_values_exhaustive():
    """Every inert value of up to 2 indicator characters (3 of a few) keeps
    every position, with all three YAML parsers."""
    tried = 0
    for value in _short_values():
        if not is_inert(value) or value in ("k", "b"):
            continue
        tried += 1
        _check_every_position(value)
    assert tried > 250


@pytest.mark.parametrize(
    "value, template",
    [
        ("", "[${V}, b]\n"),
        ("a?b", "[${V}]\n"),
        (":a", "[${V}]\n"),
        ("a,b", "[${V}]\n"),
        ("a: b", "k: ${V}\n"),
        ("a:", "${V} b\n"),
        ("a #b", "k: ${V}\n"),
        ("- a", "${V}\n"),
        ("a -", "[${V}]\n"),  # yaml-rs only
        ("-", "${V}\n"),
        ("*a", "k: ${V}\n"),
        ("!a", "k: ${V}\n"),
        ("|a", "k: ${V}\n"),
        ("a'b", "k: '${V}'\n"),
        ('a"b', 'k: "${V}"\n'),
        ("a\\tb", 'k: "${V}"\n'),
        ("a\nb: c", "k: ${V}\n"),
        ("<<", "${V}: {b: c}\n"),
        ("=", "k: ${V}\n"),
        ("--- a", "${V}\n"),
        ("x" * 1025, "${V}: b\n"),
    ],
)
def test_why_not_inert(value, template):
    """Each rule of is_inert, shown breaking a position (PyYAML or yaml-rs)."""
    assert not is_inert(value)
    document = _paste(template, value)
    try:
        composed = _raw(yaml.compose(document))
        loaded = yaml.safe_load(document)
        yaml_rs.loads(document)
    except (yaml.YAMLError, yaml_rs.YAMLDecodeError):
        return  # no longer parses
    if value == "<<":
        assert loaded == {"b": "c"}  # merged, not a key "<<"
        return
    # What pasting promised: the structure of the template with the value's
    # exact characters where the placeholder Q was.
    promised = _swap(_raw(yaml.compose(_paste(template, "Q"))), value)
    assert composed != promised


def _swap(raw, value):
    if isinstance(raw, str):
        return raw.replace("Q", value)
    if isinstance(raw, tuple):
        return tuple(_swap(r, value) for r in raw)
    return [_swap(r, value) for r in raw]

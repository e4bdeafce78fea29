"""k8s.core.variables against GNU make itself: every value must be what make computes.

The oracle includes a vars file the way the project's Makefile does
(`-include $(VARS_FILE)` then `include <file>`) and writes each variable's value
with `$(file ...)`, which involves no shell quoting.

Fixtures in tests/vars/*.vars may carry header comments, which make ignores:
`# env: NAME=value ...` (shell words) adds an environment to test with, and
`# overlay: FILE` reads FILE (relative to the fixture) as the VARS_FILE overlay.
"""

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k8s.core import variables
from k8s.errors import UserError, UserErrors
from k8s.core.variables import Variable, describe, load_variables

HERE = Path(__file__).resolve().parent.parent  # tests/
SHIPPED = HERE.parent / "Makefile.vars"
FIXTURES = sorted((HERE / "vars").glob("*.vars"))
MAKE = shutil.which("make") or "/usr/bin/make"
# Variables make defines itself, with origin "file" or "environment".
MAKE_OWN = {"MAKEFLAGS", "MFLAGS", "GNUMAKEFLAGS", "MAKELEVEL", "CURDIR", "MAKEFILE_LIST", ".DEFAULT_GOAL"}
# make needs PATH for nothing here, but a realistic environment has one.
BASE_ENV = {"PATH": "/usr/bin:/bin"}
# An environment value full of characters make or a shell might mangle ($$ is `$` once expanded).
NASTY = "from env: 'single' \"double\" $$ # * & ! é"

class MakeFailed(Exception):
    pass


def make_variables(path, env, workdir):
    """{name: (value, origin)} for every variable make defines after reading `path`.

    Environment variables are reported verbatim (`$(value ...)`), as make exports them.
    The value is None for a recursive variable with `:` in its name (`export $(X)` can
    make one): `$(a:b)` would be a substitution reference, so make cannot show it.
    """
    assert Path(MAKE).exists(), "GNU make, the oracle of these tests, is not installed"
    out = workdir / "make-values"
    out.unlink(missing_ok=True)
    oracle = workdir / "oracle.mk"
    oracle.write_text(
        "-include $(VARS_FILE)\n"
        f"include {path}\n"
        "$(foreach v,$(.VARIABLES),$(if $(filter file environment,$(origin $v)),"
        f"$(file >>{out},$(origin $v) $v $(if $(filter environment,$(origin $v))$(filter simple,$(flavor $v)),"
        "$(value $v),$(if $(findstring :,$v),:unknown,$($v))))))\n"
        "all: ;@:\n"
    )
    run = subprocess.run([MAKE, "-s", "-f", str(oracle)], env=env, cwd=workdir, capture_output=True, text=True)
    if run.returncode:
        raise MakeFailed(run.stderr.strip())
    found = {}
    # Bytes, not read_text().splitlines(): values may hold \r or \f.
    records = out.read_bytes().decode(errors="replace").split("\n")[:-1] if out.exists() else []
    for record in records:
        origin, name, value = record.split(" ", 2)  # names hold no spaces (make splits .VARIABLES)
        if name not in MAKE_OWN:
            found[name] = (None if value == ":unknown" else value, origin)
    return found


def assert_matches(got, expected, message):
    """`got == expected`, leaving out the variables make could not show."""
    unknown = {name for name, (value, _) in expected.items() if value is None}
    got = {k: v for k, v in got.items() if k not in unknown}
    expected = {k: v for k, v in expected.items() if k not in unknown}
    assert got == expected, message


def our_variables(path, env, overlay=None):
    got = load_variables(path, overlay=overlay, environ=env)
    for name, var in got.items():
        assert var.name == name
    return {n: (v.value, "environment" if v.origin.startswith("environment") else "file") for n, v in got.items()}


def fixture_settings(path):
    """The `# env:` environments and the `# overlay:` file a fixture asks for."""
    envs, overlay = [], None
    for line in path.read_text().splitlines():
        if line.startswith("# env:"):
            envs.append(dict(word.split("=", 1) for word in shlex.split(line[len("# env:") :])))
        elif line.startswith("# overlay:"):
            overlay = str(path.parent / line[len("# overlay:") :].strip())
    return envs, overlay


def environments(path, extra_envs, overlay, workdir):
    """Environments to test `path` under: none, every file variable overridden, the fixture's own."""
    base = dict(BASE_ENV, VARS_FILE=overlay) if overlay else dict(BASE_ENV)
    defined = [n for n, (_, origin) in make_variables(path, base, workdir).items() if origin == "file"]
    yield "no environment", base
    yield "every variable in the environment", dict(base, **{n: f"{NASTY} {n}" for n in defined})
    for i, extra in enumerate(extra_envs):
        yield f"# env: line {i + 1}", dict(base, **extra)


def assert_same_as_make(path, tmp_path, extra_envs=(), overlay=None):
    for label, env in environments(path, extra_envs, overlay, tmp_path):
        expected = make_variables(path, env, tmp_path)
        assert_matches(our_variables(path, env), expected, f"{path.name} with {label}")
        if overlay:  # the same overlay given as an argument instead of through VARS_FILE
            env = {k: v for k, v in env.items() if k != "VARS_FILE"}
            expected.pop("VARS_FILE")
            assert_matches(our_variables(path, env, overlay=overlay), expected, f"{path.name} with {label}")


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fixture_matches_make(path, tmp_path):
    extra_envs, overlay = fixture_settings(path)
    assert_same_as_make(path, tmp_path, extra_envs, overlay)


def test_shipped_makefile_vars_matches_make(tmp_path):
    if not SHIPPED.exists():
        pytest.skip(f"{SHIPPED} does not exist yet")
    assert_same_as_make(SHIPPED, tmp_path)


# A sample of expected values, so a bug shared with the oracle harness cannot hide.
@pytest.mark.parametrize(
    "fixture, env, name, value",
    [
        ("lazy_immediate.vars", {}, "CHAIN", "third-first"),
        ("lazy_immediate.vars", {}, "EARLY", "[]"),
        ("lazy_immediate.vars", {}, "SELF", "xy"),
        ("lazy_immediate.vars", {}, "QUERY", "third"),
        ("dollars_and_refs.vars", {}, "LITERAL", "$HOME and ${HOME} and $(HOME) and $$"),
        ("dollars_and_refs.vars", {}, "MIXED", "computed-a computed-a computed-alpha"),
        ("dollars_and_refs.vars", {}, "SINGLE", "hostalpha-hostx"),
        ("dollars_and_refs.vars", {}, "DOLLAR_SPACE", "ab"),
        ("dollars_and_refs.vars", {}, "TRAILING_DOLLAR", "cost: 5$"),
        ("dollars_and_refs.vars", {}, "PAREN_IN_NAME", ")"),
        ("dollars_and_refs.vars", {}, "DOLLAR_NAME", "from a computed name/prefix computed"),
        ("continuation.vars", {}, "JOINED", "one two three"),
        ("continuation.vars", {}, "NO_SPACE", "one two"),
        ("continuation.vars", {}, "EMPTY_NEXT", "value "),
        ("continuation.vars", {}, "STARTS_EMPTY", "after"),
        ("continuation.vars", {}, "THREE_BACKSLASHES", "ends with three\\ next"),
        ("continuation.vars", {}, "TWO_BACKSLASHES", "ends with two\\\\"),
        ("continuation.vars", {}, "COMMENT_IN_CONT", "a "),
        ("continuation.vars", {}, "CONTINUED_NAME", "on the next line"),
        ("comments.vars", {}, "PLAIN", "value "),
        ("comments.vars", {}, "ESCAPED", "colour #ff0000"),
        ("comments.vars", {}, "TWO", "a\\"),
        ("comments.vars", {}, "THREE", "a\\#b"),
        ("comments.vars", {}, "URL", "http://example.com/"),
        ("whitespace.vars", {}, "TRAILING_SPACES", "value   "),
        ("whitespace.vars", {}, "TRAILING_TAB", "value\t"),
        ("whitespace.vars", {}, "EMPTY_SPACES", ""),
        ("whitespace.vars", {}, "REF_TRAILING", "x  |"),
        ("conditional.vars", {"DEFAULTED": "env"}, "USES", "env/immediate/not-used-when-env-is-empty/recursive"),
        ("conditional.vars", {"EMPTY_ENV": "", "RECURSIVE": "env"}, "USES", "default/immediate//recursive"),
        ("conditional.vars", {}, "REDEFINED", "three two"),
        ("append.vars", {}, "LIST", "a b late"),
        ("append.vars", {}, "SIMPLE", "a"),
        ("append.vars", {}, "EMPTY_APPEND", "y"),
        ("append.vars", {"ENV_LIST": "e"}, "ENV_LIST", "e file-item"),
        ("export.vars", {}, "PRE_DECLARED", ""),
        ("export.vars", {}, "EXP_A", "a"),
        ("export.vars", {}, "EXP_B", ""),
        ("export.vars", {}, "export", "a variable called export"),
        ("special_values.vars", {}, "MIXED_QUOTES", "it's \"fine\""),
        ("special_values.vars", {}, "REF_UNICODE", "héllo wörld ✓ 日本語!"),
        ("env_refs.vars", {"USER": "u", "TEMPLATE": "$(USER)@$(HOST)"}, "ADDRESS", "u@file-host"),
        ("env_refs.vars", {"DOLLARS": "a$$b"}, "MONEY", "a$b"),
        ("env_refs.vars", {"DOLLARS": "a$$b"}, "DOLLARS", "a$$b"),
        ("crlf.vars", {}, "CR_CONT", "a b"),
        ("no_final_newline.vars", {}, "NO_NEWLINE", "no final newline"),
        ("bom.vars", {}, "BOM_FIRST", "the UTF-8 byte order mark before this name is skipped"),
    ],
)
def test_known_values(fixture, env, name, value):
    assert load_variables(HERE / "vars" / fixture, environ=env)[name].value == value


def test_overlay_precedence():
    main, overlay = HERE / "vars" / "overlay_main.vars", HERE / "vars" / "cluster.overlay"
    got = load_variables(main, overlay=overlay, environ={"REPLICAS": "7"})
    assert got["CLUSTER"].value == "prod"  # overlay's = beats the main file's ?=
    assert got["REPLICAS"].value == "7"  # the environment beats both ?=
    assert got["DOMAIN"].value == "prod.example.com"
    assert got["HOST"].value == "api.prod.example.com"
    assert got["BASE_LATE"].value == "main value wins (plain =)"  # read later, plain =
    assert got["OVERLAY_REF"].value == "from-main"  # lazy: sees the main file
    assert got["CLUSTER"].origin == f"overlay {overlay}:2"
    assert got["BASE_ONLY"].origin == f"{main}:9"
    assert got["REPLICAS"].origin == f"environment (overrides overlay {overlay}:3)"


def test_overlay_from_vars_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("Makefile.vars").write_text("A ?= main\nB = $(A)\n")
    Path("prod.vars").write_text("A = prod\n")
    got = load_variables(environ={"VARS_FILE": "prod.vars"})
    assert (got["B"].value, got["A"].origin, got["B"].origin) == ("prod", "overlay prod.vars:1", "Makefile.vars:2")
    assert load_variables(environ={"VARS_FILE": ""})["B"].value == "main"


def test_origins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("Makefile.vars").write_text("# c\nA ?= a\nB = b\n\nC := c\nexport D\nE = \\\n e\nA ?= again\nF += f\n")
    got = load_variables(environ={"A": "envA", "B": "envB", "OTHER": "x"})
    assert got["A"] == Variable("A", "envA", "environment (overrides Makefile.vars:2)")
    assert got["B"] == Variable("B", "b", "Makefile.vars:3")
    assert got["C"].origin == "Makefile.vars:5"
    assert got["D"] == Variable("D", "", "Makefile.vars:6")
    assert got["E"] == Variable("E", "e", "Makefile.vars:7")  # a continued line is its first line
    assert got["F"].origin == "Makefile.vars:10"
    assert got["OTHER"] == Variable("OTHER", "x", "environment")
    assert list(got) == ["A", "B", "C", "D", "E", "F", "OTHER"]


def test_default_environment_is_os_environ(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("K8S_TEST_VARIABLE", "from os")
    monkeypatch.delenv("VARS_FILE", raising=False)
    Path("Makefile.vars").write_text("K8S_TEST_VARIABLE ?= default\n")
    assert load_variables()["K8S_TEST_VARIABLE"].value == "from os"


def test_environment_values_are_verbatim_but_expand_when_referenced(tmp_path):
    path = tmp_path / "v.vars"
    path.write_text("A ?= default\nB = <$(A)>\n")
    got = load_variables(path, environ={"A": "$(C)$$", "C": "c"})
    assert got["A"].value == "$(C)$$"  # as make exports it to recipes
    assert got["B"].value == "<c$>"  # as make expands it


def test_make_own_variable_defined_by_the_file_is_fine(tmp_path):
    path = tmp_path / "v.vars"
    path.write_text("CURDIR = /srv\nB = $(CURDIR)/x\nCC := gcc\nCC += -O2\nexport CC\n")
    got = load_variables(path, environ={"CURDIR": "/env"})
    assert (got["B"].value, got["CC"].value) == ("/srv/x", "gcc -O2")


def test_variable_is_frozen():
    with pytest.raises(AttributeError):
        Variable("A", "1", "environment").value = "2"


def test_describe(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("Makefile.vars").write_text("Z = z\nA ?= $(Z)\nM := m\n")
    got = load_variables(environ={"A": "env a", "HOME": "/root", "NL": "x\ny"})
    assert describe(got) == [
        "Z=z  (Makefile.vars:1)",
        "A=env a  (environment (overrides Makefile.vars:2))",
        "M=m  (Makefile.vars:3)",
    ]
    assert describe(got, ["HOME", "Z", "NL"]) == ["HOME=/root  (environment)", "Z=z  (Makefile.vars:1)", "NL=x\\ny  (environment)"]
    assert describe(got, []) == []
    with pytest.raises(UserError) as err:
        describe(got, ["Z", "NOPE"])
    assert str(err.value) == "unknown variable 'NOPE'"
    with pytest.raises(UserErrors) as err:
        describe(got, ["NOPE", "NADA"])
    assert str(err.value) == "unknown variable 'NOPE'\nunknown variable 'NADA'"


REFUSALS = [
    ("A = 1\nB = $(shell hostname)\n", 2, "make function $(shell ...) is not supported; set the value directly"),
    ("B := ${shell date}\n", 1, "make function ${shell ...} is not supported; set the value directly"),
    ("B ?= $(wildcard *.yaml)\n", 1, "make function $(wildcard ...) is not supported; set the value directly"),
    ("B = x$(subst a,b,$(A))\n", 1, "make function $(subst ...) is not supported; set the value directly"),
    ("B = $(foreach v,$(L),$v)\n", 1, "make function $(foreach ...) is not supported; set the value directly"),
    ("B = $(call f,x)\n", 1, "make function $(call ...) is not supported; set the value directly"),
    ("B = $(A_$(shell id))\n", 1, "make function $(shell ...) is not supported; set the value directly"),
    ("$(shell id) = x\n", 1, "make function $(shell ...) is not supported; set the value directly"),
    ("export $(shell id)\n", 1, "make function $(shell ...) is not supported; set the value directly"),
    ("$(info hello)\n", 1, "make function $(info ...) is not supported; set the value directly"),
    ("X = 1\nX ?= $(shell never run)\n", 2, "make function $(shell ...) is not supported; set the value directly"),
    ("B = $(A,B)\n", 1, "variable reference $(A,B) is not supported: names cannot hold spaces or commas"),
    ("B = $( A)\n", 1, "variable reference $( A) is not supported: names cannot hold spaces or commas"),
    ("B = $(A )\n", 1, "variable reference $(A ) is not supported: names cannot hold spaces or commas"),
    ("B = $(A b)\n", 1, "variable reference $(A b) is not supported: names cannot hold spaces or commas"),
    ("B = $(filter-out a,$(L))\n", 1, "make function $(filter-out ...) is not supported; set the value directly"),
    ("S = a b\nX$(S) = 1\n", 2, "variable name 'Xa b' contains whitespace"),
    ("B = $(A:.c=.o)\n", 1, "substitution reference $(A:.c=.o) is not supported; set the value directly"),
    ("C = A:b=X\n\nD = $($(C))\n", 3, "substitution reference $(A:b=X) is not supported; set the value directly"),
    ("C = A:b=X\nD := $($(C))\n", 2, "substitution reference $(A:b=X) is not supported; set the value directly"),
    ("B = $(CURDIR)/x\n", 1, "make's own variable $(CURDIR) is not supported; set the value directly"),
    ("B := $(SHELL)\n", 1, "make's own variable $(SHELL) is not supported; set the value directly"),
    ("B = $(.VARIABLES)\n", 1, "make's own variable $(.VARIABLES) is not supported; set the value directly"),
    ("CC ?= gcc\n", 1, "'?=' on make's own variable CC is not supported"),
    ("RM += -r\n", 1, "'+=' on make's own variable RM is not supported"),
    (".RECIPEPREFIX = >\n", 1, "'=' on make's own variable .RECIPEPREFIX is not supported"),
    ("export LD\n", 1, "exporting make's own variable LD is not supported; set the value directly"),
    ("B = $(A\n", 1, "unterminated variable reference $(A"),
    ("B = 5$€\n", 1, "'$€' is not supported: write $$ for a literal $, $(€...) for a variable"),
    ("B = ${A_$(C)\n", 1, "unterminated variable reference ${A_$(C)"),
    ("B != hostname\n", 1, "shell assignment '!=' is not supported; set the value directly"),
    ("ifeq ($(A),1)\nB = 1\nendif\n", 1, "make directive 'ifeq' is not supported; only variable assignments are supported"),
    ("A = 1\nifdef A\n", 2, "make directive 'ifdef' is not supported; only variable assignments are supported"),
    ("else\n", 1, "make directive 'else' is not supported; only variable assignments are supported"),
    ("endif\n", 1, "make directive 'endif' is not supported; only variable assignments are supported"),
    ("include other.vars\n", 1, "make directive 'include' is not supported; only variable assignments are supported"),
    ("-include other.vars\n", 1, "make directive '-include' is not supported; only variable assignments are supported"),
    ("define B\nx\nendef\n", 1, "make directive 'define' is not supported; only variable assignments are supported"),
    ("export define B\n", 1, "make directive 'define' is not supported; only variable assignments are supported"),
    ("undefine B\n", 1, "make directive 'undefine' is not supported; only variable assignments are supported"),
    ("override B = 1\n", 1, "make directive 'override' is not supported; only variable assignments are supported"),
    ("unexport B\n", 1, "make directive 'unexport' is not supported; only variable assignments are supported"),
    ("vpath %.c src\n", 1, "make directive 'vpath' is not supported; only variable assignments are supported"),
    ("A = 1\n\nall: build\n", 3, "rule lines (target: prerequisites) are not supported; only variable assignments are supported"),
    ("target: B = 1\n", 1, "rule lines (target: prerequisites) are not supported; only variable assignments are supported"),
    ("\techo hi\n", 1, "recipe lines (starting with a tab) are not supported; only variable assignments are supported"),
    ("\t$(EMPTY)\n", 1, "recipe lines (starting with a tab) are not supported; only variable assignments are supported"),
    ("echo hi\n", 1, "not a variable assignment (expected NAME = value)"),
    ("A B = 1\n", 1, "not a variable assignment (expected NAME = value)"),
    ("$(EMPTY) = 1\n", 1, "empty variable name"),
    ("A = $(B)\nB = $(C)\nC = $(A)\n", 1, "Recursive variable 'A' references itself (eventually)"),
    ("A = x\nB = $(B)\n", 2, "Recursive variable 'B' references itself (eventually)"),
    ("A = $(B)\nB = $(A)\nC := $(B)\n", 2, "Recursive variable 'B' references itself (eventually)"),
    ("A = 1\n# c\nB = \\\n  $(shell x)\n", 3, "make function $(shell ...) is not supported; set the value directly"),
]


@pytest.mark.parametrize("text, line, message", REFUSALS, ids=[m.split(" is")[0] for _, _, m in REFUSALS])
def test_refusals(text, line, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("Makefile.vars").write_text(text)
    with pytest.raises(UserError) as err:
        load_variables(environ={"SHELL": "/bin/bash"})  # make ignores SHELL from the environment
    assert (err.value.file, err.value.line, err.value.message) == ("Makefile.vars", line, message)
    assert str(err.value) == f"Makefile.vars:{line}: {message}"


def test_shell_is_never_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("Makefile.vars").write_text("A ?= $(shell touch ran)\n")
    with pytest.raises(UserError):
        load_variables(environ={"A": "set, so make would not expand the default either"})
    Path("Makefile.vars").write_text("A := $(B)\n")
    with pytest.raises(UserError):
        load_variables(environ={"B": "$(shell touch ran)"})
    assert not Path("ran").exists()


def test_refusal_in_overlay_names_the_overlay(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("Makefile.vars").write_text("A = 1\n")
    Path("prod.vars").write_text("\nB = $(shell id)\n")
    with pytest.raises(UserError) as err:
        load_variables(overlay="prod.vars", environ={})
    assert str(err.value) == "prod.vars:2: make function $(shell ...) is not supported; set the value directly"


def test_refusal_in_referenced_environment_value(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("Makefile.vars").write_text("A = 1\nB := $(EVIL)\n")
    with pytest.raises(UserError) as err:
        load_variables(environ={"EVIL": "$(shell touch ran)"})
    assert str(err.value) == (
        "Makefile.vars:2: environment variable EVIL: make function $(shell ...) is not supported; set the value directly"
    )
    # An environment value nobody references is passed on verbatim, never expanded.
    assert load_variables(environ={"OTHER": "$(shell x)"})["OTHER"].value == "$(shell x)"


def test_missing_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as err:
        load_variables(environ={})
    assert str(err.value) == "Makefile.vars: vars file not found"
    Path("Makefile.vars").write_text("A = 1\n")
    with pytest.raises(UserError) as err:
        load_variables(overlay="nope.vars", environ={})
    assert str(err.value) == "nope.vars: overlay file (VARS_FILE) not found"
    with pytest.raises(UserError) as err:
        load_variables(environ={"VARS_FILE": "typo.vars"})
    assert str(err.value) == "typo.vars: overlay file (VARS_FILE) not found"


def test_not_utf8(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("Makefile.vars").write_bytes(b"A = 1\nB = \xff\n")
    with pytest.raises(UserError) as err:
        load_variables(environ={})
    assert str(err.value) == "Makefile.vars:2: not valid UTF-8"


def test_a_chain_of_200_lines_loads(tmp_path):
    # (how fast is bench/'s business, on whole commands: a timed test only measures the machine)
    lines = []
    for i in range(50):
        lines += [
            f"# setting {i}",
            f"export NAME_{i} ?= value-{i} with some text  # comment",
            f"REF_{i} = $(NAME_{i})/$(REF_{i - 1})" if i else "REF_0 = $(NAME_0)",
            f"IMM_{i} := ${{NAME_{i}}}-$$literal \\\n   continued",
        ]
    path = tmp_path / "big.vars"
    path.write_text("\n".join(lines) + "\n")
    assert len(path.read_text().splitlines()) == 250
    variables._parse.cache_clear()
    got = load_variables(path, environ=dict(BASE_ENV))
    assert got["REF_49"].value.count("/") == 49
    assert got["IMM_7"].value == "value-7 with some text  -$literal continued"  # make keeps the spaces before a comment


# Random vars files built from tricky pieces, checked against make: either both
# fail, or both agree on every variable, or we refused what make accepts but we
# do not support: an unterminated reference make never expands (in a `?=` that
# does not apply, say), `$(A )`, a computed name like `$(A_$(B))` with B=":", or
# a line `:` (make ignores a rule without targets), `$é` (make reads one byte).
ALLOWED_REFUSALS = [
    "unterminated variable reference", "names cannot hold spaces", "substitution reference", "rule lines",
    "write $$ for a literal $",
]  # fmt: skip
NAMES = ["A", "B", "C", "A_A", "A_B", "AB"]
PIECES = [
    "a", "b c", "é✓", "'q'", '"d"', "*", "&", "!", ":", ": ", "=", "?", ",", "(", ")", "{", "}",
    " ", "  ", "\t", "\\", "\\\\", "#", "\\#", "\\\\#", " # c", "\\\n", " \\\n  ", "\\\\\\\n", "\r\n",
    "$(A)", "${B}", "$A", "$B", "$C", "$(A_$(B))", "${A_${C}}", "$(A_$B)", "$$", "$", "$ ", "$(A",
    "$(A(B))", "$($(C))", "$()",
]  # fmt: skip
OPERATORS = ["=", " = ", ":=", " ::= ", "?=", " ?= ", "+=", " += ", "\t=\t"]
PREFIXES = ["", "export ", "  ", "\t", "export export "]
assignment = st.builds(
    lambda prefix, name, op, value: f"{prefix}{name}{op}{''.join(value)}",
    st.sampled_from(PREFIXES),
    st.sampled_from(NAMES),
    st.sampled_from(OPERATORS),
    st.lists(st.sampled_from(PIECES), max_size=6),
)
line = st.one_of(assignment, st.sampled_from(["", "# comment \\", "export A", "export B C", "export", "\\"]))
vars_file = st.builds(lambda lines, end: "\n".join(lines) + end, st.lists(line, max_size=7), st.sampled_from(["\n", ""]))
environment = st.dictionaries(
    st.sampled_from(NAMES), st.lists(st.sampled_from([p for p in PIECES if "\n" not in p]), max_size=3).map("".join)
)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(main=vars_file, overlay=st.none() | vars_file, env=environment)
def test_random_files_match_make(main, overlay, env, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("random")
    path = workdir / "main.vars"
    path.write_text(main)
    env = dict(BASE_ENV, **env)
    if overlay is not None:
        (workdir / "overlay.vars").write_text(overlay)
        env["VARS_FILE"] = str(workdir / "overlay.vars")
    try:
        expected = make_variables(path, env, workdir)
    except MakeFailed as failure:
        with pytest.raises(UserError):
            our_variables(path, env)
        return
    try:
        got = our_variables(path, env)
    except UserError as e:
        assert any(m in e.message for m in ALLOWED_REFUSALS), failure_report(main, overlay, env, e)
        return
    assert_matches(got, expected, failure_report(main, overlay, env, None))


def failure_report(main, overlay, env, error):
    return f"main={main!r} overlay={overlay!r} env={env!r} error={error}"


def test_an_environment_value_equal_to_the_default_keeps_the_file_as_origin(tmp_path):
    # Under make, the recipe's environment already holds every exported value.
    path = tmp_path / "Makefile.vars"
    path.write_text("export A ?= one\nexport B ?= $(A)-two\n")
    got = load_variables(str(path), environ={"A": "one", "B": "one-two"})
    assert got["A"].origin == f"{path}:1"
    assert got["B"].origin == f"{path}:2"
    assert load_variables(str(path), environ={"A": "uno"})["A"].origin == \
        f"environment (overrides {path}:1)"

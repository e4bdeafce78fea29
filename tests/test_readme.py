"""The README's tables and conventions, held against what the commands do.

The make-target table against the Makefile, the lists of commands that take
-o and -n against the parser, and the exit codes it states against real runs
(render.py and make, offline; a cluster's refusals are in tests/badinput).
"""

import argparse
import os
import re
import subprocess
import sys

import pytest

from .conftest import ROOT

with open(os.path.join(ROOT, "README.md")) as f:
    README = f.read()
with open(os.path.join(ROOT, "Makefile")) as f:
    MAKEFILE = f.read()
# Targets for the toolkit's own upkeep, not for operating a cluster.
UPKEEP = {"help", ".venv", "clean"}


def section(title):
    """The README text under `## title`, to the next heading of that level."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def readme_targets():
    """The make targets the README's table names, as the Makefile spells its rules."""
    names = set()
    for row in re.findall(r"^\| (`[^|]*(?:\\\|[^|]*)*) \|", section("Make targets"), re.M):
        for form in re.findall(r"`([^`]*)`", row):
            words = form.split()
            if "make" not in words or words.index("make") + 1 == len(words):
                continue
            target = words[words.index("make") + 1]
            names.add({"<component>": "$(COMPONENTS)"}.get(target, target.replace("NAME", "%")))
    return names


def makefile_targets():
    """The Makefile's rules with a `##` description (what `make help` lists)."""
    return set(re.findall(r"^([$()A-Za-z0-9_./%-]+):.*## ", MAKEFILE, re.M))


def test_the_readme_table_has_every_make_target_and_only_those():
    assert readme_targets() == makefile_targets() - UPKEEP


def commands():
    """{"secrets apply": its parser, ...} for every command of render.py."""
    from k8s import cli

    return {p.prog.partition(" ")[2]: p for p in cli._commands(cli.build_parser())}


def options(parser):
    return {o: a for a in parser._actions for o in a.option_strings}


def named_in(convention):
    """The commands a README convention lists in its parentheses, `secrets apply/list` spelt out."""
    text = section("Make targets")
    found = re.search(re.escape(convention) + r"[^(]*\(([^)]*)\)", text)
    assert found, convention
    names = set()
    for item in re.split(r",\s*(?:and\s+)?|\s+and\s+", " ".join(found.group(1).replace("`", "").split())):
        first, *more = item.strip().split("/")
        names.add(first)
        names.update(f"{first.rsplit(' ', 1)[0]} {m}" for m in more)
    return names


def test_the_commands_with_a_report_format_are_those_the_readme_lists():
    reporting = {name for name, p in commands().items()
                 if "-o" in options(p) and "text" in (options(p)["-o"].choices or ())}
    assert reporting == named_in("`-o text|json|yaml` on the commands that report")
    for name, parser in commands().items():
        if "-o" in options(parser):
            assert set(options(parser)["-o"].choices) <= {"text", "json", "yaml"}, name


def test_the_commands_with_a_namespace_are_those_the_readme_lists():
    with_namespace = {name for name, p in commands().items() if "-n" in options(p)}
    assert with_namespace == named_in("`-n/--namespace` on the commands that act in one namespace")
    for name in with_namespace:
        assert "--namespace" in options(commands()[name]), name


def test_the_global_options_the_readme_names_are_the_parsers():
    from k8s import cli

    named = set(re.findall(r"`(--[a-z-]+)`", re.search(r"The global options \(([^)]*)\)", README).group(1)))
    parser = cli.build_parser()
    globals_ = {o for a in parser._actions for o in a.option_strings
                if o.startswith("--") and not isinstance(a, argparse._HelpAction)} - {"--version"}
    assert named == globals_ == set(cli.GLOBAL_OPTIONS)


def run(project, *args, env=None):
    full = {k: v for k, v in os.environ.items() if k not in ("VARS_FILE", "MAKEFLAGS", "MAKELEVEL")}
    full.update({"KUBECONFIG": os.path.join(str(project), "no-kubeconfig"), **(env or {})})
    return subprocess.run([sys.executable, os.path.join(ROOT, "render.py"), *args], cwd=project,
                          env=full, capture_output=True, text=True)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "Makefile.vars").write_text("export K8S_NAMESPACE ?= demo\n")
    (tmp_path / "manifests" / "app").mkdir(parents=True)
    (tmp_path / "manifests" / "app" / "a.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: $NAME\n")
    return tmp_path


# The README's "Exit status" line, case by case: (arguments, environment, exit code).
EXIT_CODES = {
    "0 success": (("validate",), {"NAME": "settings"}, 0),
    "1 bad input": (("validate",), {}, 1),                        # NAME undefined
    "1 bad input, with a cluster": (("apply", "app"), {"NAME": "settings"}, 1),  # no kubeconfig
    "2 a bad command line": (("validate", "--frobnicate"), {}, 2),
    "2 an unknown component": (("apply", "nope"), {}, 2),
    "diff: 1 bad input": (("diff",), {"NAME": "settings"}, 1),
    "diff --exit-code: 2 an error": (("diff", "--exit-code"), {"NAME": "settings"}, 2),
    "diff --exit-code: 2 an unknown component": (("diff", "--exit-code", "nope"), {}, 2),
}


def test_the_exit_status_paragraph_is_still_the_one_tested():
    assert ("- Exit status: 0 success (`diff` too, with or without changes); 1 bad input, a\n"
            "  refused object or a failed component, with one `error:` line each; 2 a bad\n"
            "  command line. `diff --exit-code`: 0 nothing would change, 1 something would,\n"
            "  2 an error. Through make, every failure shows as make's own 2.") in README


@pytest.mark.parametrize("case", sorted(EXIT_CODES))
def test_exit_codes_are_those_the_readme_states(case, project):
    args, env, code = EXIT_CODES[case]
    result = run(project, *args, env=env)
    assert result.returncode == code, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert (errors != []) == (code != 0), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("target, env", [("vars", {"VARS_FILE": "clusters/none.vars"}),
                                         ("diff", {"C": "nope"})])
def test_through_make_every_failure_is_makes_2(target, env, tmp_path):
    full = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL")}
    full.update(KUBECONFIG=str(tmp_path / "none"), **env)
    result = subprocess.run(["make", "-s", target], cwd=ROOT, env=full, capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: "), result.stderr

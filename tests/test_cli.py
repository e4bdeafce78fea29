"""render.py as a user runs it: commands, summaries, and the bad-input corpus.

Each bad-input case builds a small project, runs render.py in a subprocess and
checks the exact first line of the error, the exit code, and that no
traceback is printed.
"""

import json
import os
import subprocess
import sys

from k8s.core import kubeyaml

from .conftest import ROOT

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: $REPLICAS
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
"""


def test_help_is_fast_to_import_and_lists_commands(project):
    result = project.run("--help")
    assert result.returncode == 0
    for command in ("template", "validate", "vars", "components"):
        assert command in result.stdout


def test_template_renders_validates_and_writes_one_file_per_component(project):
    project.write("Makefile.vars", "export K8S_NAMESPACE ?= demo\nexport REPLICAS ?= 2\n")
    project.write("manifests/web/10-deployment.yaml", DEPLOYMENT)
    project.write("manifests/base/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n")
    project.write("manifests/web/component.yaml", "depends: [base]\n")
    result = project.run("template", "--out", "build")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "  base: 1 object -> build/base.yaml",
        "  web: 1 object -> build/web.yaml",
        "2 objects from 2 components, valid for Kubernetes 1.37",
    ]
    with open(os.path.join(project.root, "build", "web.yaml")) as f:
        text = f.read()
    assert "replicas: 2\n" in text and "namespace: demo\n" in text

    as_json = json.loads(project.run("template", "web", "-o", "json").stdout)
    assert [i["kind"] for i in as_json["items"]] == ["Deployment"]


def test_vars_shows_values_and_origins(project):
    project.write("Makefile.vars", "export A ?= one\nexport B = $(A)-two\n")
    result = project.run("vars", "A", "B", env={"A": "env"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].startswith("B=env-two")
    assert "environment" in result.stdout.splitlines()[0]
    assert "Makefile.vars:2" in result.stdout.splitlines()[1]


def test_components_lists_dependencies(project):
    project.write("manifests/a/x.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
    project.write("manifests/b/x.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n")
    project.write("manifests/b/component.yaml", "depends: [a]\n")
    lines = project.run("components").stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["a", "b"]
    assert "depends: a" in lines[1]


def test_the_shipped_manifests_render_and_validate_with_the_shipped_defaults(tmp_path):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "VARS_FILE"}
    result = subprocess.run([sys.executable, "render.py", "template", "--out", str(tmp_path)],
                            cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "valid for Kubernetes" in result.stdout.splitlines()[-1]
    assert os.listdir(tmp_path)


def test_template_says_why_a_named_component_is_left_out(project):
    project.write("manifests/old/component.yaml", 'maxVersion: "1.24"\n')
    project.write("manifests/old/a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    result = project.run("--kube-version", "1.30", "template", "old")
    assert (result.returncode, result.stdout) == (0, "")
    assert result.stderr == "note: old: skipped (needs Kubernetes <= 1.24)\n"


def test_kube_version_is_checked_where_it_comes_from(project):
    project.write("manifests/app/a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    bad = project.run("validate", env={"KUBE_VERSION": "banana"})
    assert (bad.returncode, bad.stderr) == (
        1, "error: KUBE_VERSION: invalid Kubernetes version 'banana', expected MAJOR.MINOR like 1.31\n")
    for reported in ("v1.30.0-rc.1", "v1.31.2+k3s1"):  # as servers and kubeadm spell versions
        good = project.run("validate", env={"KUBE_VERSION": reported})
        assert good.returncode == 0, good.stderr
        assert good.stdout.splitlines()[-1] == f"1 objects from 1 components, valid for Kubernetes {reported}"


def test_command_line_numbers_and_names_are_checked_before_anything_runs(project):
    for args, message in [
        (("untaint", "?watch=1"), "error: NODE: '?watch=1' is not a node name"),
        (("apply", "--parallel", "0", "app"), "argument --parallel: expected a number above 0, got '0'"),
        (("persistent", "--timeout", "nan"), "argument --timeout: expected a number above 0, got 'nan'"),
    ]:
        result = project.run(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr.splitlines()[-1], (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_kubeconfig_needs_the_user_namespace(project):
    project.write("Makefile.vars", "")
    result = project.run("kubeconfig")
    assert (result.returncode, result.stderr) == (
        1, "error: K8S_NAMESPACE is not set: the user's namespace (Makefile.vars)\n")


# --- kubectl's conventions ---------------------------------------------------------------------

def test_version_and_options_before_or_after_the_command(project):
    version = project.run("--version")
    assert version.returncode == 0 and version.stdout.startswith("render.py (k8s-toolkit) "), version.stderr
    project.write("Makefile.vars", "export K8S_NAMESPACE ?= demo\nexport REPLICAS ?= 2\n")
    project.write("manifests/web/deployment.yaml", DEPLOYMENT)
    before = project.run("--kube-version", "1.30", "validate")
    after = project.run("validate", "--kube-version", "1.30")
    assert before.returncode == after.returncode == 0, before.stderr + after.stderr
    assert before.stdout == after.stdout and "valid for Kubernetes 1.30" in after.stdout
    assert project.run("validate", "--kube-version", "banana").returncode == 1


def test_every_option_of_every_command_says_what_it_does():
    import argparse

    from k8s import cli

    parser = cli.build_parser()
    silent = [f"{p.prog} {'/'.join(a.option_strings) or a.dest}" for p in [parser, *cli._commands(parser)]
              for a in p._actions if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
              and not a.help and a.help != argparse.SUPPRESS]
    assert silent == []


def test_a_missing_argument_names_the_make_variable(project):
    for argv, line in ((("untaint",), "error: render.py untaint: the following arguments are required: NODE "
                                      "(through make: NODE=... make untaint_master)"),
                       (("encryption", "rotate"), "error: render.py encryption rotate: the following arguments "
                                                  "are required: STEP (through make: STEP=... make encryption_rotate)")):
        result = project.run(*argv)
        assert (result.returncode, result.stderr.splitlines()) == (2, [line])


def test_components_and_vars_as_json_and_yaml_say_the_same(project):
    import yaml

    project.write("Makefile.vars", "export K8S_NAMESPACE ?= demo\nexport REPLICAS ?= 2\n")
    project.write("manifests/web/deployment.yaml", DEPLOYMENT)
    for command in (("components",), ("vars",)):
        as_json = project.run(*command, "-o", "json")
        as_yaml = project.run(*command, "-o", "yaml")
        assert as_json.returncode == as_yaml.returncode == 0, as_json.stderr + as_yaml.stderr
        assert json.loads(as_json.stdout) == yaml.safe_load(as_yaml.stdout)
    assert {"name": "REPLICAS", "value": "2", "origin": "Makefile.vars:2"} in json.loads(
        project.run("vars", "-o", "json").stdout)
    assert [c["name"] for c in json.loads(project.run("components", "-o", "json").stdout)] == ["web"]


# --- what template writes ---------------------------------------------------------------------

KEPT = """\
# the greeting of the web pods
apiVersion: v1
kind: ConfigMap
metadata:
  name: web          # read by the Deployment
  namespace: demo
data: {greeting: $GREETING, answer: '42'}
"""
DEFAULTED = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: no-namespace\ndata:\n  a: 'on'\n"
SECRET = "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: demo}\nstringData: {password: hunter2}\n"
TEMPLATE = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ 'tpl' }}, namespace: demo}\n"
MIRRORED = DEPLOYMENT.replace("  name: web\n", "  name: web\n  namespace: demo\n")


def test_template_keeps_the_text_of_what_it_only_substituted_and_writes_the_rest(project):
    project.write("Makefile.vars", "export K8S_NAMESPACE ?= demo\nexport REPLICAS ?= 2\nexport GREETING ?= hello\n")
    project.write("manifests/web/a.yaml", KEPT + "---\n" + DEFAULTED + "---\n" + SECRET)
    project.write("manifests/web/b.yaml.j2", TEMPLATE)
    project.write("manifests/web/c.yaml", MIRRORED)
    result = project.run("template", env={"IMAGE_MIRROR": "mirror.local:5000"})
    assert result.returncode == 0, result.stderr
    documents = result.stdout.split("---\n")[1:]
    assert documents[0] == KEPT.replace("$GREETING", "hello")  # comments and layout as written
    assert documents[1] == ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: no-namespace\n"
                            '  namespace: demo\ndata:\n  a: "on"\n')  # a namespace added: written
    assert "hunter2" not in documents[2] and "password:" in documents[2]  # masked: written
    assert documents[3] == "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tpl\n  namespace: demo\n"
    assert "image: mirror.local:5000/library/nginx:1.27\n" in documents[4]  # mirrored: written
    as_json = json.loads(project.run("template", "-o", "json", env={"IMAGE_MIRROR": "mirror.local:5000"}).stdout)
    assert [d.data for d in kubeyaml.load_all(result.stdout, "out")] == as_json["items"]


def test_each_command_is_registered_by_the_family_its_run_imports():
    import importlib

    from k8s import cli
    from k8s.commands import FAMILIES, FAMILY_OF

    registered = {}
    for family in FAMILIES:
        parser = cli.Parser(prog="render.py")
        commands = parser.add_subparsers(dest="command")
        importlib.import_module(f"k8s.commands.{family}").register(commands)
        registered.update(dict.fromkeys(commands.choices, family))
    assert registered == FAMILY_OF
    assert cli._command_in(["--kube-version", "1.30", "--debug", "template", "x"]) == "template"
    assert cli._command_in(["--vars=x", "vars"]) == "vars" and cli._command_in(["--help"]) is None


def test_an_offline_command_ends_with_all_it_printed_and_its_exit_status(project):
    """render.py ends an offline command without freeing what it made (k8s.cli.script): what
    it printed must still all arrive, through a pipe too, with the command's own status."""
    project.write("Makefile.vars", "export K8S_NAMESPACE ?= demo\nexport REPLICAS ?= 2\n")
    for i in range(300):
        project.write(f"manifests/web/{i:03d}.yaml", DEPLOYMENT.replace("name: web", f"name: web-{i}"))
    buffered = {k: v for k, v in os.environ.items() if k not in ("PYTHONUNBUFFERED", "VARS_FILE", "K8S_NAMESPACE")}
    for argv, printed in ((["template", "--out", "build"], "300 objects from 1 components"), (["template"], "web-299")):
        result = subprocess.run([sys.executable, os.path.join(ROOT, "render.py"), *argv], env=buffered,
                                cwd=project.root, capture_output=True, text=True)
        assert result.returncode == 0 and printed in result.stdout, result.stderr
    assert [d.data["metadata"]["name"] for d in kubeyaml.load_all(result.stdout, "out")] == [
        f"web-{i}" for i in range(300)]
    cut = subprocess.run(f"{sys.executable} {ROOT}/render.py template | head -c 100", shell=True,
                         env=buffered, cwd=project.root, capture_output=True, text=True)
    assert cut.returncode == 0 and len(cut.stdout) == 100 and cut.stderr == ""
    project.write("manifests/web/bad.yaml", DEPLOYMENT.replace("$REPLICAS", "$UNDEFINED"))
    failed = project.run("template")
    assert (failed.returncode, failed.stdout) == (1, "")
    assert failed.stderr.startswith("error: manifests/web/bad.yaml:6:") and "UNDEFINED" in failed.stderr

"""render.py as a user runs it: commands, summaries, and the bad-input corpus.

Each bad-input case builds a small project, runs render.py in a subprocess and
checks the exact first line of the error, the exit code, and that no
traceback is printed.
"""

import json
import os

import pytest

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


# --- the bad-input corpus ---------------------------------------------------
# (files to write, render.py arguments (default: validate), environment, exit code,
#  exact first line of stderr)
CASES = {
    "bad yaml": (
        {"manifests/app/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [x\n"},
        [], {}, 1, "error: manifests/app/a.yaml:4:1: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence)"),
    "undefined variable": (
        {"manifests/app/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: $NOPE\n"},
        [], {}, 1, "error: manifests/app/a.yaml:4:9: undefined variable NOPE"),
    "shell in Makefile.vars": (
        {"Makefile.vars": "export A ?= 1\nexport IP ?= $(shell dig +short x)\n"},
        [], {}, 1, "error: Makefile.vars:2: make function $(shell ...) is not supported; set the value directly"),
    "duplicate object": (
        {"manifests/app/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n"
                                 "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"},
        [], {}, 1, "error: manifests/app/a.yaml:5: ConfigMap/x: duplicate object, "
                   "first defined at manifests/app/a.yaml:1"),
    "schema violation": (
        {"manifests/app/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndatum: {}\n"},
        [], {}, 1, 'error: manifests/app/a.yaml:4: ConfigMap/x: unknown field "datum"'),
    "removed api": (
        {"manifests/app/a.yaml": "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: x}\n"},
        [], {}, 1, "error: manifests/app/a.yaml:1: Ingress/x: extensions/v1beta1 Ingress was removed in Kubernetes 1.22; use networking.k8s.io/v1"),
    "unknown kind": (
        {"manifests/app/a.yaml": "apiVersion: v1\nkind: Gizmo\nmetadata: {name: x}\n"},
        [], {}, 1, "error: manifests/app/a.yaml:2: Gizmo/x: unknown kind Gizmo in apiVersion v1 for Kubernetes 1.37"),
    "empty file": (
        {"manifests/app/a.yaml": "# nothing here\n"},
        [], {}, 1, "error: manifests/app/a.yaml: no Kubernetes objects in file"),
    "binary file": (
        {"manifests/app/a.yaml": b"\x7fELF\x00\x01\x02"},
        [], {}, 1, "error: manifests/app/a.yaml: binary file, expected YAML text"),
    "not utf-8": (
        {"manifests/app/a.yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: caf\xe9}\n"},
        [], {}, 1, "error: manifests/app/a.yaml:3: not UTF-8 text (byte 0xe9)"),
    "list document": (
        {"manifests/app/a.yaml": "- apiVersion: v1\n"},
        [], {}, 1, "error: manifests/app/a.yaml:1: document 1 is a list, expected a Kubernetes object"),
    "missing name": (
        {"manifests/app/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n"},
        [], {}, 1, "error: manifests/app/a.yaml:1: ConfigMap/?: missing metadata.name"),
    "required variable": (
        {"manifests/app/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                 "  name: ${NAME:?set NAME to the app name}\n"},
        [], {}, 1, "error: manifests/app/a.yaml:4:9: undefined variable NAME: set NAME to the app name"),
    "dependency cycle": (
        {"manifests/a/component.yaml": "depends: [b]\n", "manifests/b/component.yaml": "depends: [a]\n",
         "manifests/a/x.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
         "manifests/b/x.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n"},
        [], {}, 1, "error: dependency cycle between components: a -> b -> a"),
    "unknown component": (
        {"manifests/app/a.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n"},
        ["validate", "ghost"], {}, 2, "error: unknown component ghost (known: app)"),
    "unknown option": (
        {}, ["--frobnicate"], {}, 2, "usage: render.py [-h] [--vars FILE] [--vars-file FILE] [--manifests DIR]"),
    "jinja undefined": (
        {"manifests/app/a.yaml.j2": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ NOPE }}\n"},
        [], {}, 1, "error: manifests/app/a.yaml.j2:4: undefined variable in template: 'NOPE' is undefined"),
    "wrong type": (
        {"manifests/app/a.yaml": DEPLOYMENT},
        [], {"REPLICAS": "three"}, 1, "error: manifests/app/a.yaml:6: Deployment/web: spec.replicas: invalid type: got string 'three', expected integer"),
    "duplicate key": (
        {"manifests/app/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
                                 "data:\n  a: '1'\n  a: '2'\n"},
        [], {}, 1, "error: manifests/app/a.yaml:6:3: duplicate key 'a' in a mapping"),
    "unsupported version": (
        {"manifests/app/a.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n"},
        ["--kube-version", "1.99", "validate"], {}, 1, "error: Kubernetes version 1.99 is not supported; supported versions are 1.25 to 1.37"),
    "missing overlay": (
        {}, [], {"VARS_FILE": "clusters/nope.vars"}, 1, "error: clusters/nope.vars: overlay file (VARS_FILE) not found"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gives_one_clear_line_and_an_exit_code(project, case):
    files, args, env, code, first_line = CASES[case]
    for rel, content in files.items():
        project.write(rel, content, mode="wb" if isinstance(content, bytes) else "w")
    result = project.run(*(args or ["validate"]), env=env)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines, "no error printed"
    assert lines[0] == first_line

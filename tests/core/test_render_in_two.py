"""A large render in two processes: the same bytes as one process, or one process again."""

import os
import signal

import pytest

from k8s.core import render, render_in_two, two_processes

from ..conftest import in_process
from .test_validate import CRD  # widgets.example.com: a namespaced Widget, spec.replicas >= 1


@pytest.fixture
def forking(monkeypatch):
    """Two processes whatever the size of the set and the threads of the test process."""
    monkeypatch.setattr(two_processes, "available", lambda: True)
    monkeypatch.setattr(render_in_two, "MIN_BYTES", 0)


def _meeting_twice(part):
    first = yield f"{part}-1"
    second = yield first + (f"{part}-2",)
    return part, os.getpid(), second


def test_each_half_gets_both_values_of_every_meeting_and_the_child_is_another_process(forking):
    (part0, pid0, seen0), (part1, pid1, seen1) = two_processes.run(("a", "b"), _meeting_twice)
    assert (part0, part1) == ("a", "b")
    assert pid0 == os.getpid() and pid1 != pid0
    assert seen0 == seen1 == (("a-1", "b-1", "a-2"), ("a-1", "b-1", "b-2"))


def _fails_in(where):
    def work(part):
        yield part
        if part == where:
            raise ValueError("bad file")
        return part
    return work


def _child_dies(part):
    yield part
    if part == "b":
        os.kill(os.getpid(), signal.SIGKILL)
    return part


def _meets_once_or_twice(part):
    yield 1
    if part == "b":
        yield 2
    return part


@pytest.mark.parametrize("work", [_fails_in("a"), _fails_in("b"), _child_dies, _meets_once_or_twice])
def test_a_failed_half_dead_child_or_mismatched_meetings_give_none(forking, work):
    assert two_processes.run(("a", "b"), work) is None


def test_one_cpu_or_a_running_thread_means_one_process(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert not two_processes.available()
    assert two_processes.run(("a", "b"), _meeting_twice) is None


WIDGET = """\
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w-$N
spec:
  size: $SIZE
"""
SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: s-$N
stringData:
  password: hunter2
"""
CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: c-$N
  # a comment kept, as written
data:
  key: "$N"
"""


def _set(project, widget=WIDGET):
    """Three components in this order: the CRD, the ConfigMaps and Secrets (cut in two), the
    Widgets (namespaced and validated by a CRD the other process read)."""
    project.write("Makefile.vars", "export K8S_NAMESPACE ?= demo\nexport SIZE ?= 3\nexport N ?= 1\n")
    project.write("manifests/crds/component.yaml", "namespace: demo\n")
    project.write("manifests/crds/crd.yaml", CRD)
    for i in range(6):
        project.write(f"manifests/apps/{i}.yaml", (CONFIGMAP + "---\n" + SECRET).replace("$N", f"{i}"))
    project.write("manifests/apps/component.yaml", "depends: [crds]\n")
    for i in range(4):
        project.write(f"manifests/widgets/{i}.yaml", widget.replace("$N", f"{i}"))
    project.write("manifests/widgets/component.yaml", "namespace: demo\ndepends: [apps]\n")


def _one_then_two(monkeypatch, capfd, argv, checked=True):
    """[(result, {path: text} of build/)] of `argv` run in one process, then in two.
    `checked`: fail if either run goes the other way (two falling back to one)."""
    runs = []
    for two in (False, True):
        with monkeypatch.context() as m:
            if two:
                m.setattr(two_processes, "available", lambda: True)
                m.setattr(render_in_two, "MIN_BYTES", 0)
            if checked and two:
                m.setattr(render, "render_components", lambda *a, **k: pytest.fail("one process"))
            elif checked:
                m.setattr(two_processes, "run", lambda *a: pytest.fail("two processes"))
            result = in_process(["--kube-version", "1.37", *argv], capfd)
        files = {}
        for folder, _, names in os.walk("build"):
            for name in names:
                with open(os.path.join(folder, name)) as f:
                    files[os.path.join(folder, name)] = f.read()
        runs.append((result, files))
    return runs


@pytest.mark.parametrize("argv", [
    ["template", "--out", "build"], ["template", "-o", "json", "--out", "build"], ["template"],
    ["template", "-o", "json"], ["template", "--show-secrets"], ["validate"], ["template", "apps"]])
def test_two_processes_write_what_one_writes(project, capfd, monkeypatch, argv):
    _set(project)
    monkeypatch.chdir(project.root)
    one, two = _one_then_two(monkeypatch, capfd, argv)
    assert one == two
    assert one[0].code == 0
    assert ("hunter2" in one[0].out) == ("--show-secrets" in argv)


@pytest.mark.parametrize("widget, message", [
    (WIDGET + "  replicas: 0\n", "spec.replicas"),  # invalid, in the second half
    (WIDGET + "  $UNDEFINED: 1\n", "UNDEFINED"),  # does not render
    (CONFIGMAP.replace("c-$N", "c-0") + "---\n" + WIDGET, "duplicate object"),  # one in each half
])
def test_a_problem_in_either_half_is_reported_as_one_process_reports_it(project, capfd, monkeypatch,
                                                                        widget, message):
    _set(project, widget)
    monkeypatch.chdir(project.root)
    one, two = _one_then_two(monkeypatch, capfd, ["template", "--out", "build"], checked=False)
    assert one == two
    assert one[0].code == 1 and message in one[0].err and "Traceback" not in one[0].err
    assert one[1] == {}  # nothing written


def test_the_cut_falls_where_half_the_bytes_are(tmp_path, monkeypatch):
    sizes = [10, 10, 50, 20, 10]
    paths = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"{i}.yaml"
        path.write_text("x" * size)
        paths.append(("c", str(path)))
    assert render_in_two._halves(paths, str(tmp_path)) is None  # 100 bytes: not worth a process
    monkeypatch.setattr(render_in_two, "MIN_BYTES", 0)
    first, second = render_in_two._halves(paths, str(tmp_path))
    assert len(first) == 3 and len(second) == 2  # 70 and 30 bytes: 20 and 80 were worse
    assert render_in_two._halves(paths[:1], str(tmp_path)) is None  # one file is not shared

"""Benchmark: the commands users type, as whole processes, against what they replace.

The tree of bench/render.py (10,000 documents in 1,000 files), and the same
manifests as a Helm chart (each `$NAME` a `{{ .Values.NAME }}`). Each command runs
as its own process, the commands taking turns (A B C A B C ...); each figure is the
median of the runs with their min and max, and the peak memory (max RSS) of the
largest run:
  - one `envsubst` process per file, written into a folder (the glue: a shell loop);
  - `helm template --output-dir` of the equivalent chart (helm from tests/layer_binaries);
  - `render.py template --out DIR`, what `make render` runs (render, validate, write);
  - the same with `-o json`; `render.py validate` (no output).
"""

import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from tests import layer_binaries  # noqa: E402


def _load(name):
    """bench/NAME.py as a module (the checkout's render.py has the same name)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"bench_{name}", os.path.join(HERE, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tree = _load("render")  # the tree and its variables

RUNS = 11
VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def make_chart(root, paths):
    """The tree as a Helm chart: the same documents, values where the manifests have variables."""
    chart = os.path.join(root, "chart")
    os.makedirs(os.path.join(chart, "templates"))
    with open(os.path.join(chart, "Chart.yaml"), "w") as f:
        f.write("apiVersion: v2\nname: bench\nversion: 0.1.0\n")
    with open(os.path.join(chart, "values.yaml"), "w") as f:
        f.write("".join(f'{name}: "{value}"\n' for name, value in tree.VARIABLES.items()))
    for path in paths:
        with open(path) as f:
            text = VARIABLE.sub(lambda m: "{{ .Values.%s }}" % (m[1] or m[2]), f.read())
        name = os.path.relpath(path, os.path.join(root, "manifests")).replace(os.sep, "-")
        with open(os.path.join(chart, "templates", name), "w") as f:
            f.write(text)
    return chart


def measured(command, env, cwd):
    """(seconds, peak RSS in bytes) of one run of `command`, in a fresh process."""
    probe = ("import resource, subprocess, sys, time\n"
             "start = time.perf_counter()\n"
             "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
             "print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", probe, *command], env=env, cwd=cwd, check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), int(out[1]) * 1024


def main(runs=RUNS):
    with tempfile.TemporaryDirectory() as tmp:
        paths = tree.generate(tmp)
        with open(os.path.join(tmp, "Makefile.vars"), "w") as f:
            f.write("".join(f"export {k} ?= {v}\n" for k, v in tree.VARIABLES.items()))
        chart = make_chart(tmp, paths)
        for c in range(tree.COMPONENTS):
            os.makedirs(os.path.join(tmp, "envsubst", f"component-{c:02d}"))
        env = {k: v for k, v in os.environ.items() if k not in ("VARS_FILE", "PYTHONDONTWRITEBYTECODE")}
        render_py = [sys.executable, os.path.join(ROOT, "render.py"), "--kube-version", "1.37"]
        commands = {
            "envsubst": ["sh", "-c", "cd manifests && for f in */*.yaml; do envsubst < $f > ../envsubst/$f; done"],
            "helm": [layer_binaries.binary("helm"), "template", "bench", chart, "--output-dir", os.path.join(tmp, "helm")],
            "template": [*render_py, "template", "--out", os.path.join(tmp, "build")],
            "template -o json": [*render_py, "template", "-o", "json", "--out", os.path.join(tmp, "build-json")],
            "validate": [*render_py, "validate"],
        }
        run_env = dict(env, **tree.VARIABLES)
        for command in commands.values():  # warm: caches, __pycache__, the page cache
            measured(command, run_env, tmp)
        times, peaks = {name: [] for name in commands}, dict.fromkeys(commands, 0)
        for _ in range(runs):
            for name, command in commands.items():
                seconds, peak = measured(command, run_env, tmp)
                times[name].append(seconds)
                peaks[name] = max(peaks[name], peak)

    median = {name: statistics.median(t) for name, t in times.items()}

    def line(name, label, note=""):
        t = times[name]
        print(f"  {label:<44} {median[name]:6.2f} s ({min(t):.2f}-{max(t):.2f})  "
              f"peak {peaks[name] / 2**20:6.1f} MiB{note}")

    def ratio(name, base):
        """How many times faster `name` is than `base`, median (min-max over paired runs)."""
        pairs = [b / a for a, b in zip(times[name], times[base])]
        return f"{median[base] / median[name]:.2f}x ({min(pairs):.2f}-{max(pairs):.2f})"

    print(f"commands: {tree.FILES * tree.DOCS_PER_FILE} documents in {tree.FILES} files, whole processes, "
          f"median of {runs} (min-max)")
    line("envsubst", "envsubst, one process per file (baseline)")
    line("helm", "helm template --output-dir (baseline)")
    line("template", "render.py template --out DIR (make render)")
    line("template -o json", "render.py template -o json --out DIR")
    line("validate", "render.py validate")
    print(f"  template vs envsubst per file: {ratio('template', 'envsubst')} faster (target >= 2x, stretch 3x)")
    print(f"  template vs helm template:     {ratio('template', 'helm')} faster (target >= 2.5x)")
    print(f"  template -o json vs envsubst:  {ratio('template -o json', 'envsubst')} faster (target >= 2x)")
    print(f"  peak memory of template: {peaks['template'] / peaks['helm']:.2f}x helm's (target < 1)")


if __name__ == "__main__":
    main()

"""Benchmark: rendering and validating a large manifest tree.

A generated tree of 10,000 documents in 1,000 files (10 components of 100
files, 10 documents each: Deployments, Services and ConfigMaps). In one run:
  (a) render.py's render (substitute + parse) against the original way, one
      `envsubst` process per file, and the parser alone on the substituted
      text: its ratio bounds what any render built on that parser can reach;
  (b) render + validate against render alone;
  (c) `render.py --help` start-up against `python -c pass`.
Reported as ratios; each timing is the median of several repetitions, taken in turns
(A B C A B C ...) so that a slow spell of a shared machine falls on all of them, and each
ratio of (a) and (b) also with its min and max over the turns.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import yaml_rs  # noqa: E402

from k8s.core import components, files, render, substitute, validate  # noqa: E402

FILES, DOCS_PER_FILE, COMPONENTS = 1000, 10, 10
VARIABLES = {"K8S_NAMESPACE": "bench", "REGISTRY": "registry.example.com", "VERSION_APP": "1.4.2",
             "REPLICAS": "3", "CPU_REQUEST": "100m", "MEM_REQUEST": "128Mi", "DOMAIN": "example.com"}

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{n}
  labels:
    app.kubernetes.io/name: app-{n}
    app.kubernetes.io/part-of: bench
spec:
  replicas: $REPLICAS
  selector:
    matchLabels:
      app.kubernetes.io/name: app-{n}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: app-{n}
    spec:
      containers:
      - name: app
        image: ${{REGISTRY}}/app:${{VERSION_APP}}
        args: ["--listen", ":8080", "--domain", "app-{n}.$DOMAIN"]
        ports:
        - containerPort: 8080
          name: http
        env:
        - name: MODE
          value: "production"
        resources:
          requests:
            cpu: $CPU_REQUEST
            memory: $MEM_REQUEST
        readinessProbe:
          httpGet:
            path: /healthz
            port: http
"""
SERVICE = """apiVersion: v1
kind: Service
metadata:
  name: app-{n}
spec:
  selector:
    app.kubernetes.io/name: app-{n}
  ports:
  - name: http
    port: 80
    targetPort: http
"""
CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: app-{n}
data:
  domain: app-{n}.$DOMAIN
  settings.ini: |
    [server]
    listen = :8080
    workers = 4
"""
KINDS = [DEPLOYMENT] * 6 + [SERVICE] * 2 + [CONFIGMAP] * 2


def generate(root):
    """Write the tree under `root`/manifests; returns the manifest file paths."""
    paths = []
    for c in range(COMPONENTS):
        folder = os.path.join(root, "manifests", f"component-{c:02d}")
        os.makedirs(folder)
        for f in range(FILES // COMPONENTS):
            docs = [KINDS[d].format(n=f"{c}-{f}-{d}") for d in range(DOCS_PER_FILE)]
            path = os.path.join(folder, f"{f:03d}.yaml")
            with open(path, "w") as out:
                out.write("---\n".join(docs))
            paths.append(path)
    return paths


def in_turns(functions, repeat):
    """{name: [seconds of each run]}: the functions run in turns, `repeat` times each."""
    times = {name: [] for name in functions}
    for _ in range(repeat):
        for name, fn in functions.items():
            start = time.perf_counter()
            result = fn()
            times[name].append(time.perf_counter() - start)
            del result  # freeing 10,000 objects is not rendering them: outside the timer
    return times


def median_time(fn, repeat):
    return statistics.median(in_turns({"": fn}, repeat)[""])


def envsubst_per_file(paths):
    env = dict(os.environ, **VARIABLES)
    for path in paths:
        with open(path, "rb") as f:
            subprocess.run(["envsubst"], stdin=f, stdout=subprocess.PIPE, env=env, check=True)


def parse_only(texts):
    """The parser's share of a render: yaml-rs on each file's substituted text."""
    with render.paused_gc():
        return [yaml_rs.loads(text, parse_datetime=False) for text in texts]


def main(repeat=9):
    with tempfile.TemporaryDirectory() as tmp:
        paths = generate(tmp)
        found = components.discover(os.path.join(tmp, "manifests"), VARIABLES)

        def render_tree():
            return render.render_components(found, VARIABLES)

        objects = render_tree()
        assert len(objects) == FILES * DOCS_PER_FILE, len(objects)
        version = validate.supported_versions()[-1]

        def render_and_validate():
            report = validate.validate([(o.data, o.source) for o in render_tree()], version)
            assert not report.errors, report.errors[:3]

        render_and_validate()  # warm the schema cache, as the second component would
        substituted = [substitute.expand(files.read_text(path), VARIABLES) for path in paths]
        # envsubst apart: a thousand processes disturb the caches of whatever runs next
        t_envsubst = median_time(lambda: envsubst_per_file(paths), max(1, repeat // 2))
        times = in_turns({"render": render_tree, "parser": lambda: parse_only(substituted),
                          "validate": render_and_validate}, repeat)
    t_render, t_parser, t_validate = (statistics.median(times[name]) for name in ("render", "parser", "validate"))

    def spread(name, base, less=0):
        """min-max over the turns of `name`'s time over `base`'s, less `less`"""
        pairs = [a / b - less for a, b in zip(times[name], times[base])]
        return f"({min(pairs):.2f}-{max(pairs):.2f})"

    python = sys.executable
    # As on a user's machine, modules are compiled once and then loaded from __pycache__
    # (some environments set PYTHONDONTWRITEBYTECODE, which would compile them every run).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    help_command = [python, os.path.join(ROOT, "render.py"), "--help"]
    subprocess.run(help_command, stdout=subprocess.DEVNULL, env=env, check=True)
    t_pass = median_time(lambda: subprocess.run([python, "-c", "pass"], env=env, check=True), 10)
    t_help = median_time(lambda: subprocess.run(help_command, stdout=subprocess.DEVNULL, env=env,
                                                check=True), 10)

    print(f"render: {FILES * DOCS_PER_FILE} documents in {FILES} files")
    print(f"  envsubst, one process per file   {t_envsubst:8.3f} s")
    print(f"  render.py render                 {t_render:8.3f} s   "
          f"{t_envsubst / t_render:5.1f}x faster (target >= 5x)")
    print(f"  yaml-rs alone on the same text     {t_parser:8.3f} s   "
          f"{t_envsubst / t_parser:5.1f}x: the most any render built on it can reach")
    print(f"  render against the parser alone    {t_render / t_parser:8.2f}x {spread('render', 'parser')} "
          "(target <= 2x)")
    print(f"  render.py render + validate      {t_validate:8.3f} s   "
          f"validation adds {(t_validate - t_render) / t_render:4.2f}x the render time "
          f"{spread('validate', 'render', 1)} (target <= 1.0x)")
    print(f"  python -c pass                   {t_pass * 1000:8.1f} ms")
    print(f"  render.py --help                 {t_help * 1000:8.1f} ms   "
          f"{t_help / t_pass:4.2f}x python start-up (target < 150 ms)")


if __name__ == "__main__":
    main()

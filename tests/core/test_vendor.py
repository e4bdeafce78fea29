"""Pinned upstream imports (`make vendor`, vendor/lock.yaml) and IMAGE_MIRROR.

A real HTTP server on 127.0.0.1 plays upstream, serving the small release in
tests/fixtures/vendor/ (a CRD with a schema and a custom resource of it, a
Deployment with every form of image name). Every test works in a scratch
folder laid out like a checkout (manifests/, vendor/) and runs from it, so
paths in messages read as users see them.
"""

import argparse
import hashlib
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from k8s.core import components, images, render, substitute, validate, vendor, vendor_download, vendor_lock
from k8s.commands import vendor as vendor_command
from k8s.errors import UserError

from ..conftest import ROOT

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "vendor")
WIDGETS = "${UPSTREAM}/releases/download/${VERSION_WIDGETS}/widgets.yaml"
APP = "${UPSTREAM}/releases/download/${VERSION_WIDGETS}/app.yaml"
MIRROR = "registry.local:5000"


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


class Upstream:
    """An HTTP server in a thread: `files` maps paths to bytes, `requests` logs paths."""

    def __init__(self):
        self.files = {f"/releases/download/v1.0.0/{n}": fixture(n) for n in ("widgets.yaml", "app.yaml")}
        self.requests = []
        files, requests = self.files, self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                requests.append(self.path)
                body = files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def stop(self):
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()
            self.thread.join()


@pytest.fixture
def upstream():
    server = Upstream()
    yield server
    server.stop()


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.makedirs("manifests")
    return tmp_path


def component(name, urls, variables):
    """A Component with `imports`, expanded as components.load expands component.yaml."""
    os.makedirs(os.path.join("manifests", name), exist_ok=True)
    c = components.Component(name=name, path=os.path.join("manifests", name))
    c.imports = [substitute.expand(u, variables, "component.yaml") for u in urls]
    return c


def widgets(server, version="v1.0.0", urls=(WIDGETS, APP)):
    return component("widgets", urls, {"UPSTREAM": server.url, "VERSION_WIDGETS": version})


def run(components_, **kwargs):
    """vendor_download.vendor into ./vendor; returns (Result, output lines)."""
    lines = []

    class Out:
        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    result = vendor_download.vendor(components_, "vendor", timeout=5, out=Out(), **kwargs)
    return result, "".join(lines).splitlines()


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def snapshot():
    """{path: (bytes, mtime)} of everything under vendor/."""
    found = {}
    for folder, _, names in os.walk("vendor"):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                found[path] = (f.read(), os.stat(path).st_mtime_ns)
    return found


def render_objects(found, variables, vendor_root="vendor"):
    """Render components with their vendored imports (IMAGE_MIRROR applied)."""
    return render.render_components(found, variables, vendor_root=vendor_root)


# --- make vendor ---------------------------------------------------------------

def test_vendor_downloads_every_import_and_writes_a_sorted_stable_lock(checkout, upstream):
    extra = component("extra", ["${UPSTREAM}/releases/download/v1.0.0/app.yaml"],
                      {"UPSTREAM": upstream.url})
    result, lines = run([widgets(upstream), extra])
    assert sorted(upstream.requests) == ["/releases/download/v1.0.0/app.yaml"] * 2 + [
        "/releases/download/v1.0.0/widgets.yaml"]
    assert read("vendor/widgets/widgets.yaml").encode() == fixture("widgets.yaml")
    assert read("vendor/widgets/app.yaml").encode() == fixture("app.yaml")
    assert read("vendor/extra/app.yaml").encode() == fixture("app.yaml")
    sha = {n: hashlib.sha256(fixture(n)).hexdigest() for n in ("widgets.yaml", "app.yaml")}
    size = {n: len(fixture(n)) for n in ("widgets.yaml", "app.yaml")}
    base = f"{upstream.url}/releases/download/v1.0.0"
    assert read("vendor/lock.yaml") == vendor_lock.LOCK_HEADER + f"""\
imports:
- component: "extra"
  url: "{base}/app.yaml"
  file: "extra/app.yaml"
  sha256: "{sha['app.yaml']}"
  size: {size['app.yaml']}
- component: "widgets"
  url: "{base}/app.yaml"
  file: "widgets/app.yaml"
  sha256: "{sha['app.yaml']}"
  size: {size['app.yaml']}
- component: "widgets"
  url: "{base}/widgets.yaml"
  file: "widgets/widgets.yaml"
  sha256: "{sha['widgets.yaml']}"
  size: {size['widgets.yaml']}
"""
    # one progress line per file: URL, where it went, size, sha256 prefix
    assert lines[0] == (f"downloaded {base}/widgets.yaml -> vendor/widgets/widgets.yaml "
                        f"(1.0 KiB, sha256 {sha['widgets.yaml'][:12]})")
    assert lines[-1] == "vendor/lock.yaml written: 3 files (3 downloaded)"
    assert result.count("downloaded") == 3 and result.lock_written
    assert vendor_lock.read_lock("vendor")["widgets", f"{base}/widgets.yaml"].size == size["widgets.yaml"]
    assert not [n for f in ("widgets", "extra") for n in os.listdir(f"vendor/{f}") if n.startswith(".")]


def test_a_second_vendor_verifies_offline_and_changes_nothing(checkout, upstream):
    run([widgets(upstream)])
    before, upstream.requests[:] = snapshot(), []
    upstream.stop()  # no network needed when files, lock and URLs agree
    result, lines = run([widgets(upstream)])
    assert snapshot() == before
    assert [line.split()[0] for line in lines] == ["ok", "ok", "vendor/lock.yaml"]
    assert lines[-1] == "vendor/lock.yaml unchanged: 2 files (2 ok)"
    assert not result.lock_written and upstream.requests == []


def test_changed_upstream_is_only_taken_with_update(checkout, upstream):
    run([widgets(upstream)])
    before, upstream.requests[:] = snapshot(), []
    changed = fixture("widgets.yaml").replace(b"size: 3", b"size: 4")
    upstream.files["/releases/download/v1.0.0/widgets.yaml"] = changed
    # without --update: the lock is the pin; nothing changed locally, so nothing is fetched
    run([widgets(upstream)])
    assert snapshot() == before and upstream.requests == []
    # --update downloads everything again and records what upstream serves now
    result, lines = run([widgets(upstream)], update=True)
    assert sorted(upstream.requests) == ["/releases/download/v1.0.0/app.yaml",
                                         "/releases/download/v1.0.0/widgets.yaml"]
    assert [(a, e.file) for a, e in result.files] == [("updated", "widgets/widgets.yaml"),
                                                      ("unchanged", "widgets/app.yaml")]
    assert read("vendor/widgets/widgets.yaml").encode() == changed
    [entry] = [e for e in vendor_lock.read_lock("vendor").values() if e.file == "widgets/widgets.yaml"]
    assert entry.sha256 == hashlib.sha256(changed).hexdigest()
    assert lines[-1] == "vendor/lock.yaml written: 2 files (1 updated, 1 unchanged)"


def test_a_version_bump_downloads_the_new_url_and_drops_the_old_entry(checkout, upstream):
    run([widgets(upstream)])
    upstream.requests[:] = []
    newer = fixture("widgets.yaml").replace(b"enum: [red, green, blue]", b"enum: [red, green, blue, black]")
    upstream.files["/releases/download/v1.1.0/widgets.yaml"] = newer
    upstream.files["/releases/download/v1.1.0/app.yaml"] = fixture("app.yaml")
    result, _ = run([widgets(upstream, "v1.1.0")])
    assert sorted(upstream.requests) == ["/releases/download/v1.1.0/app.yaml",
                                         "/releases/download/v1.1.0/widgets.yaml"]
    assert read("vendor/widgets/widgets.yaml").encode() == newer
    assert sorted(url.rsplit("/", 2)[1] for _, url in vendor_lock.read_lock("vendor")) == ["v1.1.0", "v1.1.0"]
    assert result.count("downloaded") == 2
    # an import removed from component.yaml loses its file and its entry
    result, lines = run([widgets(upstream, "v1.1.0", urls=(WIDGETS,))])
    assert not os.path.exists("vendor/widgets/app.yaml") and result.removed == ["widgets/app.yaml"]
    assert "removed    vendor/widgets/app.yaml (no longer imported)" in lines
    assert [e.file for e in vendor_lock.read_lock("vendor").values()] == ["widgets/widgets.yaml"]


def test_a_damaged_file_is_restored_from_upstream_only_if_it_matches_the_lock(checkout, upstream):
    run([widgets(upstream)])
    with open("vendor/widgets/widgets.yaml", "a") as f:
        f.write("# local edit\n")
    os.remove("vendor/widgets/app.yaml")
    result, _ = run([widgets(upstream)])
    assert sorted(a for a, _ in result.files) == ["restored", "restored"]
    assert read("vendor/widgets/widgets.yaml").encode() == fixture("widgets.yaml")
    # the bytes at a pinned URL changed: an error, and nothing is written
    os.remove("vendor/widgets/widgets.yaml")
    upstream.files["/releases/download/v1.0.0/widgets.yaml"] = b"kind: Other\n"
    lock = read("vendor/lock.yaml")
    with pytest.raises(UserError) as err:
        run([widgets(upstream)])
    url = f"{upstream.url}/releases/download/v1.0.0/widgets.yaml"
    assert str(err.value).startswith(f"{url}: upstream sha256 ")
    assert "the file at this pinned URL changed" in str(err.value)
    assert read("vendor/lock.yaml") == lock and not os.path.exists("vendor/widgets/widgets.yaml")
    assert not [n for n in os.listdir("vendor/widgets") if n.startswith(".")]


def test_download_failures_are_one_line_and_write_nothing(checkout, upstream):
    missing = component("missing", ["${UPSTREAM}/releases/download/v9/missing.yaml"],
                        {"UPSTREAM": upstream.url})
    with pytest.raises(UserError) as err:
        run([widgets(upstream), missing])
    assert str(err.value) == f"{upstream.url}/releases/download/v9/missing.yaml: HTTP 404 Not Found"
    assert not os.path.exists("vendor/lock.yaml")
    assert not os.path.exists("vendor/widgets/widgets.yaml")  # all or nothing
    upstream.files["/page.yaml"] = b"<html><body>Sign in to continue</body></html>\n"
    page = component("page", ["${UPSTREAM}/page.yaml"], {"UPSTREAM": upstream.url})
    with pytest.raises(UserError, match=r"page.yaml: no Kubernetes objects in the downloaded file$"):
        run([page])
    upstream.stop()
    with pytest.raises(UserError, match=r"widgets.yaml: cannot download: .*refused"):
        run([widgets(upstream)])
    assert not os.path.exists("vendor/lock.yaml")


@pytest.mark.parametrize("url, message", [
    ("http://example.com/x.yaml", "import http://example.com/x.yaml uses http://: only https:// URLs "
                                  "are vendored (http:// only from localhost)"),
    ("ftp://example.com/x.yaml", "import 'ftp://example.com/x.yaml' is not an https:// URL"),
    ("https://example.com/releases/", "import 'https://example.com/releases/' has no usable file name"),
])
def test_bad_import_urls_name_component_yaml(checkout, url, message):
    c = component("bad", [url], {})
    with pytest.raises(UserError) as err:
        vendor.planned(c)
    assert str(err.value).startswith(f"manifests/bad/component.yaml: {message}")


def test_two_imports_may_not_land_in_the_same_file(checkout):
    c = component("gw", ["https://a.example/v1/deploy.yaml", "https://b.example/v2/deploy.yaml"], {})
    with pytest.raises(UserError) as err:
        vendor.documents(c, "vendor")
    assert str(err.value) == ("manifests/gw/component.yaml: imports https://a.example/v1/deploy.yaml and "
                              "https://b.example/v2/deploy.yaml would both be vendored as vendor/gw/deploy.yaml")


# --- rendering from vendor/ -----------------------------------------------------

def test_render_reads_only_vendor_offline_and_validates_crs_against_vendored_crds(checkout, upstream):
    c = widgets(upstream)
    run([c])
    upstream.stop()
    objects = render_objects([c], {"IMAGE_MIRROR": MIRROR})
    assert [(o.kind, o.name, o.source.file) for o in objects] == [
        ("CustomResourceDefinition", "widgets.example.com", "vendor/widgets/widgets.yaml"),
        ("Widget", "default-widget", "vendor/widgets/widgets.yaml"),
        ("Namespace", "widgets", "vendor/widgets/app.yaml"),
        ("Deployment", "widget-controller", "vendor/widgets/app.yaml")]
    [widget] = [o for o in objects if o.kind == "Widget"]
    assert widget.data["spec"]["note"] == "costs $5; ${NOT_A_VARIABLE} and $$ stay as written"
    report = validate.validate([(o.data, o.source) for o in objects], "1.37")
    assert report.errors == [] and report.unvalidated == []  # the Widget was checked by its CRD
    [deployment] = [o for o in objects if o.kind == "Deployment"]
    spec = deployment.data["spec"]["template"]["spec"]
    assert [x["image"] for x in spec["initContainers"] + spec["containers"]] == [
        "registry.local:5000/library/nginx:1.27",
        "registry.local:5000/jetstack/cert-manager-controller:v1.21.2",
        "registry.local:5000/x/y:1",
        "registry.local:5000/instantlinux/data-sync:tag",
        "registry.local:5000/example/pinned@sha256:" + "0123456789abcdef" * 4]


def test_an_invalid_vendored_cr_fails_validation_with_its_line(checkout, upstream):
    path = "/releases/download/v1.0.0/widgets.yaml"
    upstream.files[path] = upstream.files[path].replace(b"size: 3\n  color: blue",
                                                        b"size: 0\n  colour: blue")
    c = widgets(upstream, urls=(WIDGETS,))
    run([c])
    objects = render_objects([c], {})
    report = validate.validate([(o.data, o.source) for o in objects], "1.37")
    assert [str(e) for e in report.errors] == [
        'vendor/widgets/widgets.yaml:43: Widget/default-widget: spec.size: 0 is less than the minimum of 1',
        'vendor/widgets/widgets.yaml:44: Widget/default-widget: spec: unknown field "colour"']


def test_a_tampered_file_is_an_exact_one_line_error(checkout, upstream):
    c = widgets(upstream, urls=(WIDGETS,))
    run([c])
    [entry] = vendor_lock.read_lock("vendor").values()
    with open("vendor/widgets/widgets.yaml", "a") as f:
        f.write("# tampered\n")
    now = hashlib.sha256(fixture("widgets.yaml") + b"# tampered\n").hexdigest()
    with pytest.raises(UserError) as err:
        vendor.documents(c, "vendor")
    assert str(err.value) == (f"vendor/widgets/widgets.yaml: sha256 {now[:12]}… does not match "
                              f"vendor/lock.yaml ({entry.sha256[:12]}…) for {entry.url}; run make vendor")


def test_a_missing_file_and_an_unlocked_url_are_one_line_errors(checkout, upstream):
    c = widgets(upstream)
    run([c])
    os.remove("vendor/widgets/app.yaml")
    bumped = widgets(upstream, "v1.1.0", urls=(WIDGETS,))  # VERSION bumped, make vendor not run
    with pytest.raises(UserError) as err:
        vendor.documents(c, "vendor")
    url = f"{upstream.url}/releases/download/v1.0.0/app.yaml"
    assert str(err.value) == f"vendor/widgets/app.yaml: missing, not vendored yet ({url}); run make vendor"
    with pytest.raises(UserError) as err:
        vendor.documents(bumped, "vendor")
    sha = hashlib.sha256(fixture("widgets.yaml")).hexdigest()
    assert str(err.value) == (f"vendor/lock.yaml: no entry for {upstream.url}/releases/download/v1.1.0/"
                              f"widgets.yaml (vendor/widgets/widgets.yaml has sha256 {sha[:12]}…); "
                              "run make vendor")


def test_components_never_vendored_are_told_apart(checkout, upstream):
    c = widgets(upstream)
    assert vendor.not_vendored(c, "vendor")
    assert vendor.note(c) == "widgets: not vendored yet (make vendor)"
    assert not vendor.not_vendored(components.Component(name="plain", path="manifests/plain"), "vendor")
    run([c])
    os.remove("vendor/widgets/app.yaml")
    os.remove("vendor/widgets/widgets.yaml")
    assert not vendor.not_vendored(c, "vendor")  # the lock knows it: missing files are an error
    assert vendor.vendor_dir("manifests") == "vendor"
    assert vendor.vendor_dir("/srv/k8s/manifests/") == "/srv/k8s/vendor"


def test_a_malformed_lock_is_an_error_with_its_line(checkout):
    os.makedirs("vendor")
    with open("vendor/lock.yaml", "w") as f:
        f.write('imports:\n- component: "a"\n  url: "https://x/a.yaml"\n  file: "a/a.yaml"\n'
                '  sha256: "abc"\n  size: 1\n')
    with pytest.raises(UserError) as err:
        vendor_lock.read_lock("vendor")
    assert str(err.value) == ("vendor/lock.yaml:2: entry 1: sha256 must be 64 lower-case hex digits; "
                              "run make vendor to rewrite it")


# --- IMAGE_MIRROR -----------------------------------------------------------------

@pytest.mark.parametrize("image, mirrored", [
    ("registry.k8s.io/x/y:1", "registry.local:5000/x/y:1"),
    ("quay.io/jetstack/cert-manager-controller:v1.x", "registry.local:5000/jetstack/cert-manager-controller:v1.x"),
    ("nginx:1.27", "registry.local:5000/library/nginx:1.27"),
    ("nginx", "registry.local:5000/library/nginx"),
    ("instantlinux/data-sync:tag", "registry.local:5000/instantlinux/data-sync:tag"),
    ("docker.io/library/busybox:1.36", "registry.local:5000/library/busybox:1.36"),
    ("docker.io/busybox", "registry.local:5000/library/busybox"),
    ("index.docker.io/kubernetesui/dashboard:v2.7.0", "registry.local:5000/kubernetesui/dashboard:v2.7.0"),
    ("localhost/app:dev", "registry.local:5000/app:dev"),
    ("localhost:5000/team/app", "registry.local:5000/team/app"),
    ("ghcr.io/a/b@sha256:" + "ab" * 32, "registry.local:5000/a/b@sha256:" + "ab" * 32),
    ("nginx:1.27@sha256:" + "cd" * 32, "registry.local:5000/library/nginx:1.27@sha256:" + "cd" * 32),
    ("registry.local:5000/library/nginx:1.27", "registry.local:5000/library/nginx:1.27"),
])
def test_mirror_rule_for_every_image_form(image, mirrored):
    assert images.mirror_image(image, MIRROR) == mirrored
    assert images.mirror_image(mirrored, MIRROR) == mirrored  # rewriting twice changes nothing


def test_mirror_with_a_path_and_bad_mirrors():
    assert images.mirror_image("nginx:1.27", "mirror.example.com/hub/") == "mirror.example.com/hub/library/nginx:1.27"
    assert images.check_mirror("registry.local:5000/") == "registry.local:5000"
    for bad in ("https://registry.local", "mirror", "registry.local:5000/Upper", "a b:5000"):
        with pytest.raises(UserError, match=r"^IMAGE_MIRROR '.*' is not a registry: expected a host"):
            images.check_mirror(bad)


def pod_spec(image):
    return {"initContainers": [{"name": "i", "image": image}], "containers": [{"name": "c", "image": image}],
            "ephemeralContainers": [{"name": "e", "image": image}]}


@pytest.mark.parametrize("obj, path", [
    ({"apiVersion": "v1", "kind": "Pod", "spec": pod_spec("nginx")}, ["spec"]),
    *[({"apiVersion": f"{group}/v1", "kind": kind, "spec": {"template": {"spec": pod_spec("nginx")}}},
       ["spec", "template", "spec"])
      for group, kind in [("apps", "Deployment"), ("apps", "DaemonSet"), ("apps", "StatefulSet"),
                          ("apps", "ReplicaSet"), ("batch", "Job")]],
    ({"apiVersion": "batch/v1", "kind": "CronJob",
      "spec": {"jobTemplate": {"spec": {"template": {"spec": pod_spec("nginx")}}}}},
     ["spec", "jobTemplate", "spec", "template", "spec"]),
])
def test_rewrite_reaches_every_container_list_of_every_workload_kind(obj, path):
    changed = images.rewrite(obj, MIRROR)
    assert changed == [(path + [field, 0, "image"], "nginx", "registry.local:5000/library/nginx")
                       for field in ("initContainers", "containers", "ephemeralContainers")]
    assert images.rewrite(obj, MIRROR) == []


def test_rewrite_leaves_other_objects_and_an_empty_mirror_alone():
    custom = {"apiVersion": "example.com/v1", "kind": "Deployment", "spec": {"template": {"spec": pod_spec("x")}}}
    config = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"image": "nginx"}}
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": pod_spec("nginx")}
    assert images.rewrite(custom, MIRROR) == images.rewrite(config, MIRROR) == images.rewrite(pod, "") == []
    assert pod["spec"]["containers"][0]["image"] == "nginx"


# --- the command line -------------------------------------------------------------

def test_register_adds_the_vendor_command(checkout, upstream, monkeypatch, capsys):
    c = widgets(upstream)
    seen = {}

    def discover(root, values):
        seen.update(root=root, values=values)
        return [c, components.Component(name="plain", path="manifests/plain")]

    monkeypatch.setattr(components, "discover", discover)
    with open("Makefile.vars", "w") as f:
        f.write("export FROM ?= variables\n")
    parser = argparse.ArgumentParser()  # the global options render.py's parser has
    parser.add_argument("--vars", default="Makefile.vars")
    parser.add_argument("--vars-file")
    parser.add_argument("--manifests", default="manifests")
    commands = parser.add_subparsers(dest="command")
    vendor_command.register(commands)
    args = parser.parse_args(["vendor", "--timeout", "5", "widgets"])
    assert (args.update, args.components) == (False, ["widgets"])
    monkeypatch.delenv("VARS_FILE", raising=False)
    assert args.run(args) == 0
    assert seen["root"] == "manifests" and seen["values"]["FROM"] == "variables"
    assert capsys.readouterr().out.splitlines()[-1] == "vendor/lock.yaml written: 2 files (2 downloaded)"
    args = parser.parse_args(["vendor", "nope"])
    with pytest.raises(UserError, match=r"^unknown component nope \(known: plain, widgets\)$") as err:
        args.run(args)
    assert err.value.exit_code == 2


# --- after integration: component.yaml `imports:` and render.py ------------------

def integrated():
    from k8s import cli

    parser = cli.build_parser()
    names = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return "imports" in components.SETTINGS and "vendor" in names


needs_integration = pytest.mark.skipif(not integrated(), reason="components.py/cli.py/render.py "
                                       "do not have the vendor integration yet")


@needs_integration
def test_render_py_vendor_then_offline_template_and_tamper(project, upstream):
    project.write("Makefile.vars", f"export K8S_NAMESPACE ?= demo\nexport UPSTREAM ?= {upstream.url}\n"
                  "export VERSION_WIDGETS ?= v1.0.0\nexport IMAGE_MIRROR ?= registry.local:5000\n")
    project.write("manifests/widgets/component.yaml", f"namespace: widgets\nimports:\n- {WIDGETS}\n- {APP}\n")
    project.write("manifests/widgets/10-widget.yaml", "apiVersion: example.com/v1\nkind: Widget\n"
                  "metadata:\n  name: ours\nspec:\n  size: 2\n")
    project.write("manifests/later/component.yaml", "imports:\n- ${UPSTREAM}/later/later.yaml\n")
    result = project.run("vendor", "widgets")
    assert result.returncode == 0, result.stderr
    upstream.stop()
    result = project.run("template", "--out", "build")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == ["  later: not vendored yet (make vendor)",
                                               "5 objects from 1 components, valid for Kubernetes 1.37"]
    text = open(os.path.join(project.root, "build", "widgets.yaml")).read()
    assert "image: registry.local:5000/library/nginx:1.27\n" in text and "name: ours\n" in text
    result = project.run("template", "later")
    assert result.returncode == 1
    assert result.stderr.startswith("error: vendor/later/later.yaml: missing, not vendored yet (")
    with open(os.path.join(project.root, "vendor", "widgets", "app.yaml"), "a") as f:
        f.write("# tampered\n")
    result = project.run("validate", "widgets")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: vendor/widgets/app.yaml: sha256 ")
    assert result.stderr.rstrip().endswith("/app.yaml; run make vendor")


@needs_integration
def test_shipped_components_import_their_pinned_release_urls():
    from k8s.core import variables

    found = variables.load_variables(os.path.join(ROOT, "Makefile.vars"), environ={"HOME": "/root"})
    values = {name: v.value for name, v in found.items()}
    by_name = {c.name: c for c in components.discover(os.path.join(ROOT, "manifests"), values)}
    assert by_name["cert-manager"].imports == [
        "https://github.com/cert-manager/cert-manager/releases/download/"
        f"{values['VERSION_CERT_MANAGER']}/cert-manager.yaml"]
    assert by_name["gateway-api"].imports[0] == (
        "https://github.com/kubernetes-sigs/gateway-api/releases/download/"
        f"{values['VERSION_GATEWAY_API']}/standard-install.yaml")
    assert by_name["gateway-api"].install is (values["GATEWAY_API"] == "true")
    assert by_name["cert-manager"].depends == ["ingress-nginx"]


# --- bad input found by testing: one line each, no traceback ----------------------

@pytest.mark.parametrize("timeout", ["-1", "0", "nan", "inf"])
def test_a_timeout_that_is_not_a_positive_number_is_a_usage_error(checkout, timeout):
    from k8s import cli

    args = cli.build_parser().parse_args(["vendor", "--timeout", timeout])
    with pytest.raises(UserError, match=rf"^--timeout must be a positive number of seconds, "
                                        rf"got {timeout}$") as err:
        args.run(args)
    assert err.value.exit_code == 2


def test_an_invalid_ipv6_url_names_component_yaml(checkout):
    c = component("bad", ["https://[::1/x.yaml"], {})
    with pytest.raises(UserError) as err:
        vendor.planned(c)
    assert str(err.value) == ("manifests/bad/component.yaml: import 'https://[::1/x.yaml' is not a valid URL: "
                              "Invalid IPv6 URL")


def test_a_lock_that_is_a_directory_and_a_vendor_file_are_one_line(checkout, upstream):
    os.makedirs("vendor/lock.yaml")
    with pytest.raises(UserError, match=r"^vendor/lock.yaml: not a regular file \(a directory\)$"):
        run([widgets(upstream)])
    os.rmdir("vendor/lock.yaml")
    os.rmdir("vendor")
    with open("vendor", "w") as f:
        f.write("not a folder\n")
    with pytest.raises(UserError, match=r"^vendor/lock.yaml: cannot read: Not a directory$"):
        run([widgets(upstream)])
    os.remove("vendor")
    os.makedirs("vendor")
    with open("vendor/widgets", "w") as f:  # a file where a component's folder goes
        f.write("not a folder\n")
    with pytest.raises(UserError, match=r"^vendor/widgets: is not a folder: remove it, make vendor makes the "
                                        r"folder$"):
        run([widgets(upstream)])
    os.remove("vendor/widgets")
    os.mkfifo("vendor/lock.yaml")  # a read would block forever
    with pytest.raises(UserError, match=r"^vendor/lock.yaml: not a regular file \(a FIFO\)$"):
        run([widgets(upstream)])


def test_a_directory_where_a_vendored_file_goes_is_one_line_and_nothing_is_restored(checkout, upstream):
    run([widgets(upstream)])
    lock = read("vendor/lock.yaml")
    os.remove("vendor/widgets/app.yaml")
    os.makedirs("vendor/widgets/app.yaml")
    with pytest.raises(UserError) as err:
        run([widgets(upstream)])
    url = f"{upstream.url}/releases/download/v1.0.0/app.yaml"
    assert str(err.value) == f"vendor/widgets/app.yaml: is a directory, not the file of {url}: remove it"
    assert read("vendor/lock.yaml") == lock and os.path.isdir("vendor/widgets/app.yaml")


def test_two_processes_render_vendored_imports_as_one_does(checkout, upstream, monkeypatch):
    """A large render's halves (k8s.core.render_in_two): the vendored CRD in one, a Widget of
    it in the other, namespaced and validated there by the CRD the other process read."""
    import operator

    from k8s.core import emit, render_in_two, two_processes

    c = widgets(upstream)
    run([c])
    upstream.stop()
    local = component("local", [], {})
    local.namespace = "demo"
    local.files = [os.path.join("manifests", "local", "w.yaml")]
    with open(local.files[0], "w") as f:
        f.write("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: mine}\nspec: {size: 2}\n")

    def finish(objects):
        return {name: emit.to_yaml([o.data for o in objects if o.component == name])
                for name in dict.fromkeys(o.component for o in objects)}

    def rendered():
        counts, report, finished = render_in_two.rendered([c, local], {}, "vendor", "1.37", True, finish,
                                                          operator.add)
        return counts, report.unvalidated, finished

    one = rendered()
    monkeypatch.setattr(two_processes, "available", lambda: True)
    monkeypatch.setattr(render_in_two, "MIN_BYTES", 0)
    monkeypatch.setattr(render, "render_components", lambda *a, **k: pytest.fail("one process"))
    assert rendered() == one
    assert one[0] == {"widgets": 4, "local": 1} and one[1] == []  # the Widget checked by its CRD
    assert "namespace: demo" in one[2]["local"]  # namespaced: the CRD says Namespaced

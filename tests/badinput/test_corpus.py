"""The bad-input corpus: every kind of mistake an operator makes, and how it fails.

Each case builds a small project, points render.py at the session's real control
plane (tests.controlplane) through the fault proxy and runs one command as a user
would. It checks the exact first line of the error, the exit code, that no
traceback is printed, and, when the mistake is caught before anything is applied,
that the proxy saw no write at all (dry runs aside). The control plane is shared:
each case works in a namespace of its own (in place of the texts' "demo"),
deleted when the case ends.
"""

import hashlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from ..cluster.test_replies import without
from ..conftest import ROOT
from ..controlplane.faults import FaultProxy
from ..controlplane.harness import kubeconfig_text
from ..gpg import gnupghome, gpg_homes, gpg_session_key  # noqa: F401

# Ours first: the first `?=` wins, the shipped file gives everything else.
BASE_VARS = ("export K8S_NAMESPACE ?= demo\nexport ADMIN_CTX ?= kubernetes-admin@kubernetes\n"
             "export K8S_VOLUMES_PATH ?= /srv/volumes\nexport K8S_NODES ?= kube1.example.com\n")
with open(os.path.join(ROOT, "Makefile.vars")) as f:
    SHIPPED_VARS = f.read()
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: '1'\n"
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n"
SECRET = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: {value}\n"
WRITES = ("POST", "PUT", "PATCH", "DELETE")
NOT_A_LABEL = ("not a DNS label like worker (at most 63 lowercase letters, digits and '-') that YAML reads "
               "as text (0, 1e3, y and no are not)")
# What kube-apiserver answers when it cannot serve a request (as for an unavailable aggregated API).
UNAVAILABLE = ('{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":'
               '"the server is currently unable to handle the request","reason":"ServiceUnavailable","code":503}')


@dataclass
class Case:
    files: dict = field(default_factory=dict)
    args: tuple = ("apply", "app")
    env: dict = field(default_factory=dict)
    code: int = 1
    first_line: str = ""
    stream: str = "stderr"          # where the error line is printed
    before_apply: bool = True       # then the server must have received no write
    setup: object = None            # setup(world) before the run (a World)
    secret: bool = False            # first make secrets/db.yml, encrypted for the test key


@dataclass
class World:
    """What a case's setup works with: the real control plane, the fault proxy in front of it,
    the case's project and namespace. A setup may add to `env` (the run's environment) and to
    `proxies` (every proxy whose log must hold no write; the test stops the ones it added)."""

    plane: object
    proxy: object
    project: object
    namespace: str
    env: dict = field(default_factory=dict)
    proxies: list = field(default_factory=list)

    @property
    def url(self):
        """The URL of the last proxy added, the one the run's kubeconfig names (but for `forbid`'s)."""
        return self.proxies[-1].url


def app(text, name="a.yaml"):
    return {f"manifests/app/{name}": text}


def fault(**kwargs):
    return lambda world: world.proxy.fail(**kwargs)


def kubectl(plane, *args, stdin=None):
    """kubectl as the cluster admin, straight to the apiserver (not through the proxy)."""
    result = subprocess.run(["kubectl", "--kubeconfig", plane.kubeconfig, *args], input=stdin,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def forbid(world):
    """A user whose Role in the case's namespace grants what `apply app` needs except patch on
    configmaps: the real RBAC authorizer refuses the ConfigMap's apply. (A namespace's own name
    is its namespace to RBAC, so the Role covers applying the Namespace object too.) The user's
    client certificate cannot pass a proxy: the run talks to the apiserver itself."""
    ns = world.namespace
    kubectl(world.plane, "create", "-f", "-", stdin=f"""\
apiVersion: v1
kind: Namespace
metadata: {{name: {ns}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: corpus-editor, namespace: {ns}}}
rules:
- {{apiGroups: [""], resources: [namespaces], verbs: [get, list, watch, patch]}}
- {{apiGroups: [""], resources: [configmaps], verbs: [get, list, watch, create, update, delete]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: corpus-editor, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: corpus-editor}}
subjects:
- {{apiGroup: rbac.authorization.k8s.io, kind: User, name: corpus-editor}}
""")
    path = world.plane.user_kubeconfig(os.path.join(world.project.root, "user.kubeconfig"), "corpus-editor")
    world.env.update(KUBECONFIG=path, ADMIN_CTX="corpus-editor@kubernetes")


def conflict(world):
    """The ConfigMap exists, its data.a owned by the field manager helm."""
    kubectl(world.plane, "create", "namespace", world.namespace)
    kubectl(world.plane, "apply", "--server-side", "--field-manager=helm", "-f", "-", stdin=(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: {world.namespace}\n"
        "data:\n  a: '0'\n"))


def bad_token(world):
    """A bearer token the real apiserver never issued, through a proxy that logs every request."""
    proxy = FaultProxy(world.plane, as_admin=False).start()
    world.proxies.append(proxy)
    with open(os.path.join(world.plane.pki, "ca.crt"), "rb") as f:
        world.project.write("kubeconfig", kubeconfig_text(proxy.url, f.read(), "kubernetes-admin",
                                                          token="expired-token"))


def tamper(world):
    text = world.project.read("secrets/db.yml")
    world.project.write("secrets/db.yml", text.replace("name: db", "name: evil"))


def plain_secret(world):
    world.project.write("secrets/plain.yml", SECRET.format(value="in-clear"))


def unreachable(world):
    world.project.write("kubeconfig", kubeconfig_text("http://127.0.0.1:9", b"", "kubernetes-admin", token="unused"))


CASES = {
    # --- render ---------------------------------------------------------------
    "bad yaml": Case(app("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [x\n"), first_line=(
        "error: manifests/app/a.yaml:4:1: invalid YAML: did not find expected ',' or ']' "
        "(while parsing a flow sequence)")),
    "undefined variable": Case(app("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: $NOPE\n"),
                               first_line="error: manifests/app/a.yaml:4:9: undefined variable NOPE"),
    "required variable": Case(app("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${NAME:?set NAME}\n"),
                              first_line="error: manifests/app/a.yaml:4:9: undefined variable NAME: set NAME"),
    "shell in Makefile.vars": Case({"Makefile.vars": BASE_VARS + "export IP ?= $(shell dig +short x)\n"},
                                   first_line=("error: Makefile.vars:5: make function $(shell ...) is not "
                                               "supported; set the value directly")),
    "missing overlay": Case(env={"VARS_FILE": "clusters/nope.vars"},
                            first_line="error: clusters/nope.vars: overlay file (VARS_FILE) not found"),
    "duplicate object": Case(app(CONFIGMAP + "---\n" + CONFIGMAP), first_line=(
        "error: manifests/app/a.yaml:8: ConfigMap/settings: duplicate object, "
        "first defined at manifests/app/a.yaml:1")),
    "duplicate key": Case(app(CONFIGMAP + "  a: '2'\n"),
                          first_line="error: manifests/app/a.yaml:7:3: duplicate key 'a' in a mapping"),
    "empty file": Case(app("# nothing here\n"),
                       first_line="error: manifests/app/a.yaml: no Kubernetes objects in file"),
    "binary file": Case(app(b"\x7fELF\x00\x01\x02"),
                        first_line="error: manifests/app/a.yaml: binary file, expected YAML text"),
    "not utf-8": Case(app(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: caf\xe9}\n"),
                      first_line="error: manifests/app/a.yaml:3: not UTF-8 text (byte 0xe9)"),
    "list document": Case(app("- apiVersion: v1\n"), first_line=(
        "error: manifests/app/a.yaml:1: document 1 is a list, expected a Kubernetes object")),
    "list item not an object": Case(app("apiVersion: v1\nkind: List\nitems: [hello]\n"), first_line=(
        "error: manifests/app/a.yaml:3: item 1 of the List: a string, expected a Kubernetes object")),
    "namespace not a string": Case(app("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: {a: b}}\n"),
                                   first_line=("error: manifests/app/a.yaml:1: ConfigMap/a: metadata.namespace "
                                               "must be a string, not a mapping")),
    "cluster-scoped with namespace": Case(app("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
                                              "metadata: {name: x, namespace: demo}\n"), first_line=(
        "error: manifests/app/a.yaml:1: ClusterRole/x: ClusterRole is cluster-scoped: remove metadata.namespace")),
    "deep JSON": Case(app('{"a":' * 1200 + "1" + "}" * 1200 + "\n"),
                      first_line="error: manifests/app/a.yaml:1: document is nested too deeply"),
    "variable not UTF-8": Case(app(CONFIGMAP.replace("'1'", "$V")), env={"V": "a\udcffb"},
                               first_line="error: manifests/app/a.yaml:6:6: variable V is not valid UTF-8 text"),
    "settings not UTF-8": Case({"manifests/app/component.yaml": b"description: caf\xe9\n"},
                               first_line="error: manifests/app/component.yaml:1: not UTF-8 text (byte 0xe9)"),
    "unquoted version": Case({"manifests/app/component.yaml": "minVersion: 1.30\n"}, first_line=(
        "error: manifests/app/component.yaml: setting 'minVersion': quote the version, as \"1.30\" or \"1.3\" "
        "(unquoted it is the number 1.3)")),
    "value adds a setting": Case({"manifests/app/component.yaml": "namespace: $D\n"},
                                 env={"D": "demo\ninstall: false"}, first_line=(
        "error: manifests/app/component.yaml: namespace 'demo\\ninstall: false' is not a valid namespace "
        "name (lower-case letters, digits and '-', at most 63)")),
    "CRD schema mistyped": Case(app(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.ex.com}\n"
        "spec:\n  group: ex.com\n  names: {kind: Widget, plural: widgets}\n  scope: Namespaced\n  versions: 3\n"
        "---\napiVersion: ex.com/v1\nkind: Widget\nmetadata: {name: w}\n"), first_line=(
        "error: manifests/app/a.yaml:8: CustomResourceDefinition/widgets.ex.com: spec.versions: invalid type: "
        "got integer 3, expected array")),
    "template into a file": Case(args=("template", "--out", "Makefile.vars"),
                                 first_line=(
        "error: Makefile.vars: not a folder: the output goes into a folder (give a new or existing folder)")),
    "missing name": Case(app("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n"),
                         first_line="error: manifests/app/a.yaml:1: ConfigMap/?: missing metadata.name"),
    "infinite number": Case(app("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\nbinaryData: .inf\n"),
                            first_line=("error: manifests/app/a.yaml:4:13: .inf cannot be represented in "
                                        "JSON (kubectl: json: unsupported value)")),
    "jinja undefined": Case(app("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ NOPE }}\n",
                                name="a.yaml.j2"), first_line=(
        "error: manifests/app/a.yaml.j2:4: undefined variable in template: 'NOPE' is undefined")),
    "dependency cycle": Case({"manifests/app/component.yaml": "depends: [base]\n",
                              "manifests/base/component.yaml": "depends: [app]\n",
                              "manifests/base/ns.yaml": NAMESPACE},
                             first_line="error: dependency cycle between components: app -> base -> app"),
    "bad component setting": Case({"manifests/app/component.yaml": "context: root\n"}, first_line=(
        "error: manifests/app/component.yaml: context must be one of admin, user, not 'root'")),
    "unknown component": Case(args=("apply", "ghost"), code=2,
                              first_line="error: unknown component ghost (known: app)"),
    "unknown option": Case(args=("apply", "app", "--frobnicate"), code=2,
                           first_line="error: render.py: unrecognized arguments: --frobnicate"),
    # --- validation -------------------------------------------------------------
    "schema violation": Case(app(CONFIGMAP + "datum: {}\n"),
                             first_line='error: manifests/app/a.yaml:7: ConfigMap/settings: unknown field "datum"'),
    "wrong type": Case(app("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n"
                           "  ports:\n  - port: $PORT\n"), env={"PORT": "eighty"}, first_line=(
        "error: manifests/app/a.yaml:6: Service/web: spec.ports[0].port: invalid type: got string "
        "'eighty', expected integer")),
    "removed api": Case(app("apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: x}\n"), first_line=(
        "error: manifests/app/a.yaml:1: Ingress/x: extensions/v1beta1 Ingress was removed in Kubernetes "
        "1.22; use networking.k8s.io/v1")),
    "psp on 1.25+": Case(app("apiVersion: policy/v1beta1\nkind: PodSecurityPolicy\nmetadata: {name: x}\n"),
                         first_line=("error: manifests/app/a.yaml:1: PodSecurityPolicy/x: policy/v1beta1 "
                                     "PodSecurityPolicy was removed in Kubernetes 1.25; use Pod Security "
                                     "Admission")),
    "unknown kind": Case(app("apiVersion: v1\nkind: Gizmo\nmetadata: {name: x}\n"), first_line=(
        "error: manifests/app/a.yaml:2: Gizmo/x: unknown kind Gizmo in apiVersion v1 for Kubernetes 1.37")),
    "unsupported version": Case(args=("--kube-version", "1.99", "apply", "app"), first_line=(
        "error: Kubernetes version 1.99 is not supported; supported versions are 1.23 to 1.37")),
    # --- volumes ------------------------------------------------------------------
    "invalid quantity": Case(args=("persistent",), env={"POOL_SIZE_SMALL": "500Mb"}, first_line=(
        "error: POOL_SIZE_SMALL='500Mb' (environment): not a Kubernetes quantity like 500m, 0.5, 256Mi or 8Gi")),
    "duplicate volume name": Case(args=("persistent",), env={"LOCAL_VOLUMES": "share"}, first_line=(
        "error: volumes/layout.yaml:44: duplicate volume name share (from $NAMED_VOLUMES)")),
    "unknown node": Case(args=("persistent", "--check-nodes"), first_line=(
        "error: node kube1.example.com of K8S_NODES is not in the cluster (context "
        "kubernetes-admin@kubernetes; it has kube1, kube2, kube3)")),
    # --- secrets ------------------------------------------------------------------
    "unencrypted secret file": Case(secret=True, setup=plain_secret, args=("secrets", "apply"), first_line=(
        "error: secrets/plain.yml: not sops-encrypted (no sops metadata); refusing to use it: "
        "encrypt it with `render.py secrets create`, never commit it")),
    "tampered secret": Case(secret=True, setup=tamper, args=("secrets", "apply", "db"), first_line=(
        "error: secrets/db.yml: tampered or damaged: its MAC does not match its content (it was "
        "changed outside sops); restore it from git")),
    "missing decryption key": Case(secret=True, args=("secrets", "apply", "db"),
                                   env={"GNUPGHOME": "{empty_gnupghome}"}, first_line=(
        "error: secrets/db.yml: no key here can decrypt it; it is encrypted for pgp:{fingerprint}: "
        "import one of these keys (GNUPGHOME, SOPS_AGE_KEY_FILE) or ask a holder to add yours with "
        "`render.py secrets rotate`")),
    # --- the API ------------------------------------------------------------------
    "unreachable api server": Case(setup=unreachable, first_line=(
        "error: cannot reach the API server http://127.0.0.1:9 (context kubernetes-admin@kubernetes): "
        "Connection refused")),
    "unknown context": Case(env={"ADMIN_CTX": "prod-admin"}, first_line=(
        "error: kubeconfig {kubeconfig}: no context 'prod-admin' (set ADMIN_CTX/USER_CTX or --context)")),
    "expired credentials (401)": Case(setup=bad_token, first_line=(
        "error: the API server {url} rejected the credentials of context kubernetes-admin@kubernetes "
        "(401 Unauthorized): Unauthorized")),
    "forbidden (403)": Case(setup=forbid, stream="stdout", before_apply=False, first_line=(
        'configmap/settings failed: configmaps "settings" is forbidden: User "corpus-editor" cannot '
        'patch resource "configmaps" in API group "" in the namespace "{namespace}" (403 Forbidden)')),
    "conflict (409)": Case(setup=conflict, stream="stdout", before_apply=False, first_line=(
        'configmap/settings failed: Apply failed with 1 conflict: conflict with "helm": .data.a '
        '(409 Conflict; --force-conflicts takes these fields over)')),
    # what only the real server's validation refuses: a key both in data and in binaryData (a key
    # that is not a config key is refused offline now: "configmap key with spaces")
    "invalid object (422)": Case(app(CONFIGMAP + "binaryData:\n  a: MQ==\n"),
                                 stream="stdout", before_apply=False, first_line=(
        'configmap/settings failed: ConfigMap "settings" is invalid: data[a]: Invalid value: "a": duplicate '
        "of key present in binaryData (422 Invalid)")),
    "5xx storm beyond the retry budget": Case(setup=fault(status=503, body=UNAVAILABLE, method="PATCH",
                                                          path="/configmaps/"),
                                              env={"K8S_TOOLKIT_RETRY_FOR": "2"},
                                              stream="stdout", before_apply=False, first_line=(
        "configmap/settings failed: the server is currently unable to handle the request "
        "(503, still failing after retrying for 2s)")),
    # --- -n/--namespace: this run's K8S_NAMESPACE, checked like it ---------------------------
    "secrets apply -n with a bad name": Case(secret=True, args=("secrets", "apply", "-n", "Bad_ns"), first_line=(
        "error: K8S_NAMESPACE='Bad_ns' (-n/--namespace): " + NOT_A_LABEL)),
    "secrets list -n that YAML reads as a number": Case(args=("secrets", "list", "-n", "1e3"), first_line=(
        "error: K8S_NAMESPACE='1e3' (-n/--namespace): " + NOT_A_LABEL)),
    "kubeconfig -n with a trailing dot": Case(args=("kubeconfig", "-n", "worker."), first_line=(
        "error: K8S_NAMESPACE='worker.' (-n/--namespace): " + NOT_A_LABEL)),
    "a malformed apply answer mid-component": Case(
        setup=fault(method="PATCH", path="/configmaps/settings$", status=200, rewrite=without("metadata"),
                    content_type=None),
        before_apply=False, first_line="error: {url} PATCH /api/v1/namespaces/{namespace}/configmaps/settings: "
                                       "the reply has no metadata"),
    # --- the command line ------------------------------------------------------------------------
    "a diff of an unknown component, no kubeconfig": Case(args=("diff", "nope"), env={"KUBECONFIG": "nowhere"},
                                                        code=2, first_line="error: unknown component nope (known: app)"),
    "a retry budget below zero": Case(args=("apply", "--retry-for", "-1", "app"), code=2, first_line=(
        "error: render.py apply: argument --retry-for: expected a number above 0, got '-1'")),
    "an output format kubectl does not have": Case(args=("components", "-o", "table"), code=2, first_line=(
        "error: render.py components: argument -o/--output: invalid choice: 'table' (choose from 'text', "
        "'json', 'yaml')")),
    "a Kubernetes version without its minor": Case(args=("validate", "--kube-version", "2"), first_line=(
        "error: --kube-version: invalid Kubernetes version '2', expected MAJOR.MINOR like 1.31")),
    "an unknown variable asked for": Case(args=("vars", "NOPE"), first_line="error: unknown variable 'NOPE'"),
    "untaint without its node": Case(args=("untaint",), code=2, first_line=(
        "error: render.py untaint: the following arguments are required: NODE (through make: NODE=... "
        "make untaint_master)")),
    "a Secret name that is no DNS name": Case(args=("secrets", "create", "Bad_Name", "--from-literal", "a=b",
                                                    "--no-edit"), code=2, first_line=(
        "error: 'Bad_Name' is not a valid Secret name (lower case letters, digits, '-' and '.', starting and "
        "ending with a letter or digit: a DNS-1123 subdomain)")),
}


class Project:
    def __init__(self, root):
        self.root = str(root)
        self.kubeconfig = os.path.join(self.root, "kubeconfig")

    def read(self, rel):
        with open(os.path.join(self.root, rel)) as f:
            return f.read()

    def write(self, rel, content):
        path = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb" if isinstance(content, bytes) else "w") as f:
            f.write(content)


def namespace_for(name):
    """A DNS label unique to the case; the hash keeps truncated names apart."""
    tag = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"corpus-{re.sub(r'[^a-z0-9]+', '-', name.lower())[:40].strip('-')}-{tag}"


def localize(content, namespace):
    """The texts' namespace "demo" made the case's own."""
    return re.sub(r"\bdemo\b", namespace, content) if isinstance(content, str) else content


def run(project, args, env):
    full = {k: v for k, v in os.environ.items()
            if k not in ("VARS_FILE", "K8S_NAMESPACE", "MAKEFLAGS", "MAKELEVEL")}
    full.update({"KUBECONFIG": project.kubeconfig, **env})
    return subprocess.run([sys.executable, os.path.join(ROOT, "render.py"), *args], cwd=project.root,
                          env=full, capture_output=True, text=True)


def real_writes(proxies):
    """Writes a proxy passed on or answered: neither dry runs nor reads."""
    return [(r.method, r.path, r.query) for proxy in proxies for r in proxy.requests()
            if r.method in WRITES and "dryRun" not in r.query]


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, tmp_path, request, control_plane, fault_proxy):
    case = CASES[name]
    project = Project(tmp_path)
    namespace = namespace_for(name)
    world = World(control_plane, fault_proxy, project, namespace, proxies=[fault_proxy])
    env = dict(case.env)
    fingerprint = ""
    if case.secret:
        gpg = request.getfixturevalue("gnupghome")  # GNUPGHOME with the test key
        fingerprint = gpg.fingerprint
        empty = request.getfixturevalue("gpg_homes")()
        env = {k: v.replace("{empty_gnupghome}", empty) for k, v in env.items()}
    project.write("Makefile.vars", localize(BASE_VARS + SHIPPED_VARS, namespace))
    project.write("manifests/app/component.yaml", f"namespace: {namespace}\n")
    project.write("manifests/app/00-namespace.yaml", localize(NAMESPACE, namespace))
    project.write("volumes/layout.yaml", open(os.path.join(ROOT, "volumes", "layout.yaml")).read())
    for rel, content in case.files.items():
        project.write(rel, localize(content, namespace))
    fault_proxy.kubeconfig(project.kubeconfig)
    try:
        if case.setup and not case.secret:
            case.setup(world)
        if "manifests/app/a.yaml" not in case.files and not any(k.startswith("manifests/app/a.")
                                                                   for k in case.files):
            project.write("manifests/app/a.yaml", CONFIGMAP)
        if case.secret:
            for args in (["secrets", "sops-config"], ["secrets", "create", "db", "--from-literal",
                                                      "password=corpus-marker"]):
                made = run(project, args, {"GPG_FINGERPRINT": fingerprint})
                assert made.returncode == 0, made.stderr
            if case.setup:
                case.setup(world)
        result = run(project, case.args, {**env, **world.env})
        writes = real_writes(world.proxies)
    finally:
        for proxy in world.proxies[1:]:
            proxy.stop()
        if control_plane.get(f"/api/v1/namespaces/{namespace}", check=False) is not None:
            kubectl(control_plane, "delete", "namespace", namespace, "--wait=false")
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == case.code, (result.stdout, result.stderr)
    lines = [line for line in getattr(result, case.stream).splitlines()
             if case.stream == "stderr" or " failed" in line]
    assert lines, (result.stdout, result.stderr)
    expected = (case.first_line.replace("{url}", world.url).replace("{kubeconfig}", project.kubeconfig)
                .replace("{namespace}", namespace))
    assert lines[0] == expected.replace("{fingerprint}", fingerprint)
    assert "corpus-marker" not in result.stdout + result.stderr
    if case.before_apply:
        assert writes == []


def test_the_corpus_covers_every_area():
    assert len(CASES) >= 30


# --- bounded reads, names and keys the API server refuses (offline, before any write) ------------

def _at(world, rel):
    path = os.path.join(world.project.root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def fifo(rel):
    return lambda world: os.mkfifo(_at(world, rel))


def sparse(rel, size):
    def make(world):
        with open(_at(world, rel), "wb") as f:
            f.truncate(size)
    return make


def symlink(rel, target):
    return lambda world: os.symlink(target, _at(world, rel))


def folder(rel):
    return lambda world: os.makedirs(_at(world, rel))


SUBDOMAIN = ("must be a DNS-1123 subdomain: lower case letters, digits, '-' and '.', starting and ending "
             "with a letter or digit, at most 253 characters")
LABEL_VALUE = ("must be empty or letters, digits, '-', '_' and '.', starting and ending with a letter or "
               "digit, at most 63 characters")
LONG_NAME = "n" * 300

READS_AND_NAMES = {
    "vars file is /dev/zero": Case(env={"VARS_FILE": "/dev/zero"},
                                   first_line="error: VARS_FILE=/dev/zero: not a regular file"),
    "vars file is a FIFO": Case(setup=fifo("clusters/prod.vars"), env={"VARS_FILE": "clusters/prod.vars"},
                                first_line="error: VARS_FILE=clusters/prod.vars: not a regular file (a FIFO)"),
    "vars file is a directory": Case(env={"VARS_FILE": "manifests"},
                                     first_line="error: VARS_FILE=manifests: not a regular file (a directory)"),
    "vars file over 1 MiB": Case(setup=sparse("clusters/big.vars", 2 << 20), env={"VARS_FILE": "clusters/big.vars"},
                                 first_line=("error: VARS_FILE=clusters/big.vars: larger than the 1 MiB limit for "
                                             "a vars file: it has 2097152 bytes")),
    "manifest is a FIFO": Case(setup=fifo("manifests/app/b.yaml"),
                               first_line="error: manifests/app/b.yaml: not a regular file (a FIFO)"),
    "manifest over 8 MiB": Case(setup=sparse("manifests/app/b.yaml", (8 << 20) + 1), first_line=(
        "error: manifests/app/b.yaml: larger than the 8 MiB limit for a manifest: it has 8388609 bytes")),
    "manifest is a dangling symlink": Case(setup=symlink("manifests/app/b.yaml", "moved.yaml"),
                                           first_line="error: manifests/app/b.yaml: is a dangling symlink"),
    "component.yaml is /dev/zero": Case(setup=lambda world: (os.remove(_at(world, "manifests/app/component.yaml")),
                                                             symlink("manifests/app/component.yaml", "/dev/zero")(world)),
                                        first_line="error: manifests/app/component.yaml: not a regular file"),
    "name with an underscore": Case(app("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n"),
                                    first_line=("error: manifests/app/a.yaml:4: ConfigMap/Bad_Name: metadata.name "
                                                f"'Bad_Name' is not a valid ConfigMap name: {SUBDOMAIN}")),
    "name not ascii": Case(app("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: café\n"),
                           first_line=("error: manifests/app/a.yaml:4: ConfigMap/café: metadata.name 'café' is not "
                                       f"a valid ConfigMap name: {SUBDOMAIN}")),
    "name of 300 characters": Case(app(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {LONG_NAME}\n"),
                                   first_line=(f"error: manifests/app/a.yaml:4: ConfigMap/{'n' * 60}…: metadata.name "
                                               f"'{'n' * 56}... (300 characters) is not a valid ConfigMap name: "
                                               f"{SUBDOMAIN}")),
    "service name starting with a digit": Case(app("apiVersion: v1\nkind: Service\nmetadata:\n  name: 1web\n"
                                                   "spec:\n  ports:\n  - port: 80\n"), first_line=(
        "error: manifests/app/a.yaml:4: Service/1web: metadata.name '1web' is not a valid Service name: must be a "
        "DNS-1035 label: lower case letters, digits and '-', starting with a letter and ending with a letter or "
        "digit, at most 63 characters")),
    "cronjob name over 52": Case(app("apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: " + "c" * 53 + "\n"
                                     "spec:\n  schedule: '@daily'\n  jobTemplate:\n    spec:\n      template:\n"
                                     "        spec:\n          restartPolicy: Never\n          containers:\n"
                                     "          - {name: c, image: busybox}\n"), first_line=(
        f"error: manifests/app/a.yaml:4: CronJob/{'c' * 53}: metadata.name '{'c' * 53}' is not a valid CronJob "
        "name: must be a DNS-1123 subdomain: lower case letters, digits, '-' and '.', starting and ending with a "
        "letter or digit, at most 52 characters (its Jobs get an 11-character suffix)")),
    "rbac name with a slash": Case(app("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n"
                                       "  name: team/reader\n"), first_line=(
        "error: manifests/app/a.yaml:4: ClusterRole/team/reader: metadata.name 'team/reader' is not a valid "
        "ClusterRole name: must be usable in a URL path: anything but '/', '%', '.' and '..'")),
    "label value with a space": Case(app(CONFIGMAP.replace("name: settings\n", "name: settings\n  labels:\n"
                                                           "    app: web server\n")), first_line=(
        "error: manifests/app/a.yaml:6: ConfigMap/settings: metadata.labels[\"app\"]: value 'web server' is "
        f"invalid: {LABEL_VALUE}")),
    "label key with two slashes": Case(app(CONFIGMAP.replace("name: settings\n", "name: settings\n  labels:\n"
                                                             "    a/b/c: x\n")), first_line=(
        "error: manifests/app/a.yaml:6: ConfigMap/settings: metadata.labels: key 'a/b/c' is invalid: the prefix "
        f"before '/' {SUBDOMAIN}")),
    "pod template label": Case(app("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n"
                                   "  selector: {matchLabels: {app: web}}\n  template:\n    metadata:\n"
                                   "      labels: {app: web, tier: -front}\n    spec:\n"
                                   "      containers: [{name: web, image: nginx}]\n"), first_line=(
        "error: manifests/app/a.yaml:8: Deployment/web: spec.template.metadata.labels[\"tier\"]: value '-front' is "
        f"invalid: {LABEL_VALUE}")),
    "annotations over 256 KiB": Case(app(CONFIGMAP.replace("name: settings\n", "name: settings\n  annotations:\n"
                                                           "    note: " + "x" * (256 << 10) + "\n")), first_line=(
        "error: manifests/app/a.yaml:5: ConfigMap/settings: metadata.annotations: 262148 bytes in all, over the "
        "API server's limit of 262144 bytes (256 KiB)")),
    "configmap key with spaces": Case(app(CONFIGMAP.replace("a: '1'", "'no spaces': '1'")), first_line=(
        "error: manifests/app/a.yaml:6: ConfigMap/settings: data: key 'no spaces' must consist of letters, "
        "digits, '-', '_' or '.' (at most 253 characters)")),
    "secret data not base64": Case(app("apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata:\n"
                                       "  password: corpus-marker\n"), first_line=(
        "error: manifests/app/a.yaml:5: Secret/db: data.password: the value is not base64 (put plain text "
        "under stringData)")),
    "secret value never in a validation error": Case(app("apiVersion: v1\nkind: Secret\nmetadata: {name: db}\n"
                                                         "data: corpus-marker\n"), first_line=(
        "error: manifests/app/a.yaml:4: Secret/db: data: invalid type: got string, expected object (value not "
        "shown)")),
    "component folder name": Case({"manifests/My_App/a.yaml": CONFIGMAP}, args=("apply", "My_App"), first_line=(
        "error: manifests/My_App: component folder name 'My_App' is not usable: it becomes the label value "
        "k8s-toolkit/component and the ApplySet name applyset-NAME, so it must be lower case letters, digits, "
        "'-' and '.', starting and ending with a letter or digit, at most 63 characters; rename the folder")),
    "dangling secret file": Case(secret=True, setup=symlink("secrets/gone.yml", "moved-away.yml"),
                                 args=("secrets", "apply"),
                                 first_line="error: secrets/gone.yml: is a dangling symlink"),
    "looping secret file": Case(secret=True, setup=symlink("secrets/loop.yml", "loop.yml"), args=("secrets", "check"),
                                first_line="error: secrets/loop.yml: is a symlink loop"),
    "directory named like a secret file": Case(secret=True, setup=folder("secrets/old.yml"), args=("secrets", "apply"),
                                               first_line="error: secrets/old.yml: not a regular file (a directory)"),
    "secret value from /dev/zero": Case(secret=True, args=("secrets", "create", "token", "--from-file", "t=/dev/zero"),
                                        first_line="error: --from-file /dev/zero: not a regular file"),
    "custom resource the cluster does not serve": Case(
        app("apiVersion: widgets.example.com/v1\nkind: Widget\nmetadata:\n  name: w\n"),
        first_line=("error: manifests/app/a.yaml:1: Widget/w: the cluster does not serve widgets.example.com/v1 "
                    "Widget and no CustomResourceDefinition in the rendered set defines it: install its CRD first")),
}
CASES.update(READS_AND_NAMES)


def kubeconfig_with(cluster=None, user=None):
    """A kubeconfig whose cluster `c` and user `u` have these fields (a server that never
    answers: each case fails before any request)."""
    def make(world):
        world.project.write("kubeconfig", f"""\
apiVersion: v1
kind: Config
current-context: kubernetes-admin@kubernetes
contexts:
- name: kubernetes-admin@kubernetes
  context: {{cluster: c, user: u}}
clusters:
- name: c
  cluster: {{server: "https://127.0.0.1:9", {cluster or 'insecure-skip-tls-verify: true'}}}
users:
- name: u
  user: {{{user or 'token: unused'}}}
""")
    return make


def vars_overlay(text):
    return {"files": {"clusters/prod.vars": text}, "env": {"VARS_FILE": "clusters/prod.vars"}}


ANYWHERE = "only --vars, --vars-file, --manifests, --kube-version, --debug go before it"

EVERY_COMMAND = {
    # --- the command line, each family --------------------------------------------------
    "a command's option before the command": Case(args=("--retry-for", "5", "apply", "app"), code=2, first_line=(
        f"error: render.py: --retry-for is an option of apply: give it after the command (render.py apply "
        f"--retry-for ...); {ANYWHERE}")),
    "an output option before the command": Case(args=("-o", "json", "components"), code=2, first_line=(
        f"error: render.py: -o is an option of components: give it after the command (render.py components "
        f"-o ...); {ANYWHERE}")),
    "a manifests folder that is a file": Case(args=("--manifests", "Makefile.vars", "validate"),
                                              first_line="error: manifests folder Makefile.vars is not a folder"),
    "vendor of an unknown component": Case(args=("vendor", "nope"), code=2,
                                           first_line="error: unknown component nope (known: app)"),
    "delete of an unknown component": Case(args=("delete", "nope", "--yes"), code=2,
                                           first_line="error: unknown component nope (known: app)"),
    "an encryption step that does not exist": Case(args=("encryption", "rotate", "9"), code=2, first_line=(
        "error: render.py encryption rotate: argument STEP: invalid choice: '9' (choose from 'add', 'promote', "
        "'rewrite', 'drop')")),
    "audit install without its node": Case(args=("audit", "install"), code=2, first_line=(
        "error: name the control-plane node: NODE=kube1.example.com make audit_install (render.py takes "
        "several)")),
    "persistent-dirs of a node not in K8S_NODES": Case(args=("persistent-dirs", "db1"), code=2, first_line=(
        "error: node db1 is not in K8S_NODES (kube1.example.com)")),
    "admission-config into a device": Case(args=("admission-config", "--out", "/dev/null"), first_line=(
        "error: /dev/null: not a folder: the output goes into a folder (give a new or existing folder)")),
    # --- variables ----------------------------------------------------------------------
    "a make conditional in the overlay": Case(**vars_overlay("ifeq ($(X),1)\nexport A = 1\nendif\n"), first_line=(
        "error: clusters/prod.vars:1: make directive 'ifeq' is not supported; only variable assignments are "
        "supported")),
    "a NUL byte in Makefile.vars": Case({"Makefile.vars": BASE_VARS + "export X ?= a\x00b\n"}, first_line=(
        "error: Makefile.vars:5: a NUL byte: make would cut this line there and read the next one as its rest; "
        "remove it")),
    "a variable defined by itself": Case(**vars_overlay("export A = $(A) x\n"), args=("vars", "A"), first_line=(
        "error: clusters/prod.vars:1: Recursive variable 'A' references itself (eventually)")),
    "a node listed twice": Case(args=("persistent", "--dry-run=client"), env={"K8S_NODES": "a b a"},
                                first_line="error: K8S_NODES: node a is listed twice"),
    "a pod CIDR with a /33": Case(args=("template",), env={"POD_CIDR": "10.244.0.0/33"}, first_line=(
        "error: POD_CIDR='10.244.0.0/33' (environment): not an IPv4 CIDR like 10.244.0.0/16")),
    # --- secrets set / create: values never on the command line ------------------------------
    "secrets set with the value on the command line": Case(
        secret=True, args=("secrets", "set", "db", "password=corpus-marker"), code=2, first_line=(
            "error: key 'password': give the value as password=@FILE or password=- (stdin), never on the "
            "command line, where process listings and shell history keep it")),
    "secrets set without '='": Case(secret=True, args=("secrets", "set", "db", "password"), code=2, first_line=(
        "error: 'password': expected KEY=@FILE or KEY=- (key: letters, digits, '-', '_' or '.')")),
    "secrets set of a file that is not there": Case(args=("secrets", "set", "nope", "a=@value"), code=2,
                                                    first_line="error: no such secret file: secrets/nope.yml"),
    "secrets set from a FIFO": Case(secret=True, setup=fifo("value.fifo"),
                                    args=("secrets", "set", "db", "password=@value.fifo"),
                                    first_line="error: value.fifo: not a regular file (a FIFO)"),
    "secrets set with nothing to set": Case(args=("secrets", "set"), code=2, first_line=(
        "error: render.py secrets set: the following arguments are required: NAME, KEY=@FILE|KEY=- (through "
        "make: NAME=... SET=\"KEY=@FILE ...\" make secret_set)")),
    "secrets create with a literal and no key": Case(
        args=("secrets", "create", "api", "--from-literal", "corpus-marker", "--no-edit"), code=2,
        first_line="error: --from-literal expects KEY=VALUE"),
    "secrets create over an existing file": Case(
        secret=True, args=("secrets", "create", "db", "--from-literal", "a=b", "--no-edit"), first_line=(
            "error: secrets/db.yml: exists and is never overwritten; change it with `render.py secrets edit db` "
            "or set keys with `make secret_set NAME=db SET=KEY=@FILE`")),
    # --- kubeconfig: named, before the client trips over it --------------------------------
    "kubeconfig is /dev/zero": Case(args=("check",), env={"KUBECONFIG": "/dev/zero"},
                                    first_line="error: kubeconfig /dev/zero: not a regular file"),
    "kubeconfig is a folder": Case(args=("diff",), env={"KUBECONFIG": "manifests"},
                                   first_line="error: kubeconfig manifests: not a regular file (a directory)"),
    "kubeconfig's CA file is gone": Case(setup=kubeconfig_with(cluster="certificate-authority: /gone/ca.crt"),
                                         args=("persistent",), first_line=(
        "error: kubeconfig {kubeconfig}: certificate-authority of cluster 'c': /gone/ca.crt: no such file")),
    "kubeconfig's CA data not base64": Case(setup=kubeconfig_with(cluster="certificate-authority-data: '!!x'"),
                                            args=("secrets", "apply"), secret=True, first_line=(
        "error: kubeconfig {kubeconfig}: certificate-authority-data of cluster 'c' is not base64")),
    "kubeconfig's client key is gone": Case(
        setup=kubeconfig_with(user="client-certificate: c.crt, client-key: c.key"), args=("install",), first_line=(
            "error: kubeconfig {kubeconfig}: client-certificate of user 'u': c.crt: no such file")),
    "kubeconfig's credential plugin is not installed": Case(
        setup=kubeconfig_with(user="exec: {command: /opt/nope/plugin, apiVersion: client.authentication.k8s.io/v1}"),
        args=("kubelet-certs", "approve"), first_line=(
            "error: kubeconfig {kubeconfig}: the credential plugin of user 'u' (/opt/nope/plugin) failed: "
            "[Errno 2] No such file or directory: '/opt/nope/plugin'")),
}
CASES.update(EVERY_COMMAND)


@pytest.mark.parametrize("name", sorted({**READS_AND_NAMES, **EVERY_COMMAND}))
def test_bad_read_name_or_command(name, tmp_path, request, control_plane, fault_proxy):
    """The cases above (added after test_bad_input's parameters were taken), run the same way."""
    test_bad_input(name, tmp_path, request, control_plane, fault_proxy)

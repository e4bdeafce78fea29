"""etcd encryption at rest: real gpg and sops, a real sshd as the control-plane node, real
control planes for the rotation and the rewrite: the session's, through the fault proxy (whose
log counts the rewrite's requests and which makes the faults), and one of the rotation test's
own whose kube-apiserver reads the configuration the rotation steps make.

Commands run in-process through `k8s.cli.main` (render.py's main, with the encryption
commands registered), in a scratch repository, output captured at the file-descriptor level.
"""

import base64
import json
import os
import re
import shlex
import stat
import subprocess
import uuid

import pytest
import yaml

from k8s import cli
from k8s.nodes import encryption, encryption_config, encryption_keys, node_files
from k8s.commands import encryption as encryption_cli
from k8s.secrets import files as secrets
from k8s.secrets.masking import Scrubber
from k8s.secrets.objects import decode
from k8s.errors import UserError
from k8s.secrets.sops import Sops

from ..conftest import in_process, needs_root
from ..gpg import KEY_EMAIL, KEY_NAME, gnupghome, gpg_session_key  # noqa: F401
from ..sshd import sshd, sshd_factory  # noqa: F401

VARS = f"""\
export CLUSTER ?= kubernetes
export K8S_NAMESPACE ?= demo
export ADMIN_CTX ?= kubernetes-admin@kubernetes
export KUBE_VERSION ?= 1.31
export SOPS_KEY_NAME ?= {KEY_NAME}
export SOPS_KEY_EMAIL ?= {KEY_EMAIL}
export SOPS_KEY_TYPE ?= ed25519
"""
ENV_OUT = ("VARS_FILE", "K8S_NAMESPACE", "KUBE_VERSION", "GPG_FINGERPRINT", "SOPS_AGE_RECIPIENT",
           "SOPS_AGE_KEY_FILE", "KUBECONFIG", "ENCRYPTION_PROVIDER", "ENCRYPTION_RESOURCES",
           "ENCRYPTION_CONFIG_PATH", "SSH_CONFIG", "SSH_OPTIONS", "REMOTE_SUDO", "ADMIN_CTX",
           "SOPS_PGP_FP", "SOPS_CONFIG", "EDITOR")
NODE = "cp1.example.com"
KEY_PATH = "secrets/etcd-encryption.yml"


class Repo:
    def __init__(self, root, capfd, monkeypatch):
        self.root, self.capfd, self.monkeypatch = str(root), capfd, monkeypatch
        self.outputs = []

    def run(self, *argv, main=cli.main):
        result = in_process(argv, self.capfd, main)
        self.outputs.append(result.out + result.err)
        return result

    def ok(self, *argv, **kwargs):
        result = self.run(*argv, **kwargs)
        assert result.code == 0, (result.out, result.err)
        return result

    def path(self, rel):
        return os.path.join(self.root, rel)

    def read(self, rel, mode="r"):
        with open(self.path(rel), mode) as f:
            return f.read()

    def plaintext(self):
        return Sops(self.path("secrets/.sops.yaml")).decrypt(self.path(KEY_PATH)).decode()

    def keys(self):
        """(keys, rewritten) of the key file, decrypted here as sops would for the toolkit."""
        return encryption.keys_of(yaml.safe_load(self.plaintext()), KEY_PATH)


@pytest.fixture
def repo(tmp_path, capfd, monkeypatch, gnupghome):
    root = tmp_path / "repo"
    (root / "secrets").mkdir(parents=True)
    (root / "Makefile.vars").write_text(VARS)
    for name in ENV_OUT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.chdir(root)
    repo = Repo(root, capfd, monkeypatch)
    assert repo.run("secrets", "sops-config", main=cli.main).code == 0
    return repo


def one_error_line(result):
    lines = result.err.strip().splitlines()
    assert result.code == 1 and len(lines) == 1, (result.code, result.out, result.err)
    return lines[0]


def key_bytes(key):
    return base64.b64decode(key.secret, validate=True)


# --- the key file ----------------------------------------------------------------------------------

def test_key_is_made_encrypted_and_reused_never_replaced(repo):
    first = repo.ok("encryption", "key")
    assert first.out.startswith(f"created {KEY_PATH}: key secretbox:key-")
    assert sorted(os.listdir(repo.path("secrets"))) == [".sops.yaml", "etcd-encryption.yml"]
    stored = repo.read(KEY_PATH)
    assert secrets.unencrypted([repo.path(KEY_PATH)]) == []  # `make secrets/...` checks accept it
    (key,), rewritten = repo.keys()
    assert rewritten is None and key.provider == "secretbox"
    assert len(key_bytes(key)) == 32
    assert key.secret not in stored and key.secret not in first.out
    assert f"{encryption.KEYS_ANNOTATION}: secretbox:{key.name}" in stored  # readable in a diff
    assert encryption_keys._KEY_NAME.match(key.name)

    # a Secret-shaped document that `secrets list/edit` can decode (validated as a v1 Secret)
    objects = decode(repo.plaintext(), KEY_PATH, {"K8S_NAMESPACE": "demo"}, Scrubber())
    assert [(o.kind, o.namespace, o.name) for o in objects] == [("Secret", "kube-system", "etcd-encryption")]

    again = repo.ok("encryption", "key")
    assert again.out.startswith(f"reusing {KEY_PATH} (none created): keys secretbox:{key.name}")
    assert repo.read(KEY_PATH) == stored

    repo.monkeypatch.setenv("ENCRYPTION_PROVIDER", "aescbc")
    note = repo.ok("encryption", "key")
    assert "the next `render.py encryption rotate add` makes a key for aescbc" in note.out
    assert repo.read(KEY_PATH) == stored


def test_unsupported_providers_are_refused_with_the_reason(repo):
    repo.monkeypatch.setenv("ENCRYPTION_PROVIDER", "aesgcm")
    line = one_error_line(repo.run("encryption", "key"))
    assert "aesgcm must be rotated every 200,000 writes" in line and "use secretbox or aescbc" in line
    repo.monkeypatch.setenv("ENCRYPTION_PROVIDER", "identity")
    assert "identity does not encrypt" in one_error_line(repo.run("encryption", "key"))
    assert not os.path.exists(repo.path(KEY_PATH))


def test_key_needs_the_sops_rules_first(tmp_path, capfd, monkeypatch, gnupghome):
    root = tmp_path / "bare"
    root.mkdir()
    (root / "Makefile.vars").write_text(VARS)
    for name in ENV_OUT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(root)
    result = Repo(root, capfd, monkeypatch).run("encryption", "key")
    assert "no secrets/.sops.yaml: run `make secrets/.sops.yaml` first" in one_error_line(result)
    assert not (root / "secrets" / "etcd-encryption.yml").exists()


# --- the configuration --------------------------------------------------------------------------------

def test_configuration_for_both_providers_and_more_resources():
    for provider in encryption_keys.PROVIDERS:
        key = encryption_keys.generate(provider)
        config = encryption_config.configuration([key], encryption_config.resources("secrets configmaps"))
        assert config["apiVersion"] == "apiserver.config.k8s.io/v1"
        assert config["kind"] == "EncryptionConfiguration"
        (entry,) = config["resources"]
        assert entry["resources"] == ["secrets", "configmaps"]
        assert entry["providers"] == [{provider: {"keys": [{"name": key.name, "secret": key.secret}]}},
                                      {"identity": {}}]
        assert len(base64.b64decode(entry["providers"][0][provider]["keys"][0]["secret"])) == 32

    # a rotation that changes the provider: one entry per provider, in key order, identity last
    old = encryption_keys.generate("aescbc")
    keys = encryption_keys.add([old], "secretbox")
    providers = encryption_config.configuration(keys, ["secrets"])["resources"][0]["providers"]
    assert [list(p) for p in providers] == [["aescbc"], ["secretbox"], ["identity"]]
    providers = encryption_config.configuration(encryption_keys.promote(keys), ["secrets"])["resources"][0]["providers"]
    assert [list(p) for p in providers] == [["secretbox"], ["aescbc"], ["identity"]]
    same = encryption_keys.add([old], "aescbc")
    providers = encryption_config.configuration(same, ["secrets"])["resources"][0]["providers"]
    assert [k["name"] for k in providers[0]["aescbc"]["keys"]] == [old.name, same[1].name]
    assert providers[-1] == {"identity": {}}

    assert encryption_config.resources("secrets  widgets.example.com secrets") == ["secrets", "widgets.example.com"]
    with pytest.raises(UserError, match="'Secrets' is not a resource name"):
        encryption_config.resources("Secrets")
    with pytest.raises(UserError, match="ENCRYPTION_RESOURCES is empty"):
        encryption_config.resources(" ")
    assert "secret=" not in repr(old) and old.secret not in repr(keys)


def test_key_names_sort_by_time_and_never_collide():
    import datetime

    moment = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert encryption_keys.new_name([], moment) == "key-20260102T030405Z"
    assert encryption_keys.new_name(["key-20260102T030405Z"], moment) == "key-20260102T030405Z-1"
    assert encryption_keys.new_name(["key-20260102T030405Z-1"], moment) == "key-20260102T030405Z-2"
    later = encryption_keys.new_name(["key-20270101T000000Z"], moment)  # the clock went back
    assert later == "key-20270101T000000Z-1"
    assert ":" not in later  # key names appear in etcd as k8s:enc:<provider>:v1:<name>:


def test_fragment_forms_for_130_and_131():
    path = "/etc/kubernetes/encryption/config.yaml"
    volume = {"name": "encryption-config", "hostPath": "/etc/kubernetes/encryption",
              "mountPath": "/etc/kubernetes/encryption", "readOnly": True, "pathType": "DirectoryOrCreate"}
    old = encryption_config.fragment(path, "1.30")
    assert old == {"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "ClusterConfiguration",
                   "apiServer": {"extraArgs": {"encryption-provider-config": path}, "extraVolumes": [volume]}}
    new = encryption_config.fragment(path, "1.31")
    assert new["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    assert new["apiServer"] == {"extraArgs": [{"name": "encryption-provider-config", "value": path}],
                                "extraVolumes": [volume]}
    assert encryption_config.fragment(path)["apiVersion"] == "kubeadm.k8s.io/v1beta4"


def test_encryption_config_masks_the_key_and_writes_only_the_fragment(repo):
    repo.ok("encryption", "key")
    (key,), _ = repo.keys()
    shown = repo.ok("--kube-version", "1.30", "encryption-config", "--out", "build")
    docs = list(yaml.safe_load_all(shown.out))
    config, fragment = docs
    provider = config["resources"][0]["providers"][0]["secretbox"]
    assert provider == {"keys": [{"name": key.name, "secret": "***"}]}
    assert config["resources"][0]["providers"][-1] == {"identity": {}}
    assert fragment["apiVersion"] == "kubeadm.k8s.io/v1beta3"
    assert fragment["apiServer"]["extraArgs"]["encryption-provider-config"] == "/etc/kubernetes/encryption/config.yaml"
    assert "# wrote build/kubeadm/cluster-configuration.yaml, " in shown.out
    assert sorted(os.listdir(repo.path("build"))) == [".written", "kubeadm"]
    assert sorted(os.listdir(repo.path("build/kubeadm"))) == [
        "NOTES.txt", "admission-config.yaml", "audit-policy.yaml", "cluster-configuration.yaml"]
    assert yaml.safe_load(repo.read("build/kubeadm/cluster-configuration.yaml")) == fragment
    assert key.secret not in "".join(repo.read(f"build/kubeadm/{n}") for n in os.listdir(repo.path("build/kubeadm")))

    repo.ok("encryption-config", "--out", "build")  # KUBE_VERSION 1.31 from Makefile.vars
    assert yaml.safe_load(repo.read("build/kubeadm/cluster-configuration.yaml"))["apiVersion"] == \
        "kubeadm.k8s.io/v1beta4"

    clear = repo.ok("encryption-config", "--show-key")
    assert yaml.safe_load(clear.out)["resources"][0]["providers"][0]["secretbox"]["keys"] == [
        {"name": key.name, "secret": key.secret}]
    assert "in clear" in clear.err


# --- install over ssh ------------------------------------------------------------------------------------

@needs_root
def test_install_copies_the_config_root_only_through_ssh_stdin(repo, sshd, tmp_path):
    node_path = tmp_path / "node" / "etc-kubernetes" / "encryption" / "config.yaml"
    for name, value in sshd.variables().items():
        repo.monkeypatch.setenv(name, value)
    repo.monkeypatch.setenv("REMOTE_SUDO", "")
    repo.monkeypatch.setenv("ENCRYPTION_CONFIG_PATH", str(node_path))
    with pytest.raises(UserError, match="without spaces"):
        encryption_config.config_path({"ENCRYPTION_CONFIG_PATH": "/etc/kube rnetes/x.yaml"})
    repo.ok("encryption", "key")
    (key,), _ = repo.keys()

    dry = repo.ok("encryption", "install", NODE, "--dry-run")
    argv = shlex.split(dry.out)
    assert argv[:3] == ["ssh", "-F", sshd.config] and argv[-2] == NODE
    remote = argv[-1]
    assert remote.startswith("umask 077 && ") and f"/dev/stdin {node_path.parent}/.config.yaml.new" in remote
    assert "install -T -m 0600 -o root -g root" in remote
    assert key.secret not in dry.out + dry.err
    assert sshd.accepted() == 0 and not node_path.exists()

    done = repo.ok("encryption", "install", NODE)
    assert done.out.splitlines()[0] == (f"{NODE}: {node_path} (root, mode 0600): keys secretbox:{key.name}; "
                                        f"secretbox:{key.name} encrypts secrets")
    assert sshd.accepted(1) == 1
    info = node_path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and (info.st_uid, info.st_gid) == (0, 0)
    assert stat.S_IMODE(node_path.parent.stat().st_mode) == 0o700
    expected = encryption_config.config_text([key], ["secrets"], str(node_path))
    assert node_path.read_text() == expected
    assert key.secret not in done.out + done.err
    assert [p.name for p in node_path.parent.iterdir()] == ["config.yaml"]  # no temporary file left

    # a second install replaces the file in place, still 0600
    repo.monkeypatch.setenv("ENCRYPTION_RESOURCES", "secrets configmaps")
    repo.ok("encryption", "install", NODE)
    assert yaml.safe_load(node_path.read_text())["resources"][0]["resources"] == ["secrets", "configmaps"]
    assert stat.S_IMODE(node_path.stat().st_mode) == 0o600


def test_install_failures_are_one_line_naming_host_and_status(repo, sshd_factory):
    server = sshd_factory()
    repo.ok("encryption", "key")
    (key,), _ = repo.keys()
    for name, value in server.variables().items():
        repo.monkeypatch.setenv(name, value)
    repo.monkeypatch.setenv("REMOTE_SUDO", "false")
    missing = repo.run("encryption", "install")
    assert (missing.code, missing.err) == (2, "error: name the control-plane node: NODE=kube1.example.com "
                                              "make encryption_install (render.py takes several)\n")
    line = one_error_line(repo.run("encryption", "install", NODE))
    assert line == f"error: ssh {NODE}: remote command failed (exit status 1)"
    port = server.port
    server.stop()
    repo.monkeypatch.setenv("SSH_CONFIG", "")
    repo.monkeypatch.setenv("SSH_OPTIONS", f"-F /dev/null -o HostName=127.0.0.1 -p {port}")
    line = one_error_line(repo.run("encryption", "install", NODE))
    assert line == (f"error: ssh {NODE}: ssh failed (exit status 255): ssh: connect to host 127.0.0.1 "
                    f"port {port}: Connection refused")
    assert all(key.secret not in text for text in repo.outputs)


# --- rotation ----------------------------------------------------------------------------------------------

KUBECTL = "/usr/bin/kubectl"


def kubectl(kubeconfig, *argv, stdin=None):
    result = subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), *argv], input=stdin,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def seed_secrets(kubeconfig, count=12, namespaces=("alpha", "beta", "gamma"), suffix=None):
    """Secrets s-00, s-01, … spread over new namespaces (NAME-SUFFIX: alphabetical as NAME is),
    made with kubectl; sorted [(namespace, name)]."""
    suffix = suffix or uuid.uuid4().hex[:8]
    namespaces = [f"{ns}-{suffix}" for ns in namespaces]
    items = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in namespaces]
    made = []
    for i in range(count):
        ns, name = namespaces[i % len(namespaces)], f"s-{i:02d}"
        items.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
                      "type": "Opaque", "data": {"v": base64.b64encode(f"value-{i}".encode()).decode()}})
        made.append((ns, name))
    kubectl(kubeconfig, "create", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    return sorted(made)


def stored_data(plane, names):
    """(namespace, name) -> data of each Secret as the real server returns it."""
    return {(ns, name): plane.get(f"/api/v1/namespaces/{ns}/secrets/{name}")["data"] for ns, name in names}


class Cluster:
    """The fault proxy (fail, clear, requests) in front of the session's control plane, and seed()."""

    def __init__(self, plane, proxy):
        self.plane, self.proxy, self.namespaces = plane, proxy, []

    def __getattr__(self, name):
        return getattr(self.proxy, name)

    def seed(self, **kwargs):
        names = seed_secrets(self.plane.kubeconfig, **kwargs)
        self.namespaces += sorted({ns for ns, _ in names})
        return names


@pytest.fixture
def cluster(repo, control_plane, fault_proxy, tmp_path):
    """The session's control plane through the fault proxy (KUBECONFIG); seed() makes namespaces
    of this test's own, deleted when it ends. The rewrite covers the whole cluster, other tests'
    objects too: a PUT of an unchanged object that is stored with the first key writes nothing."""
    repo.monkeypatch.setenv("KUBECONFIG", fault_proxy.kubeconfig(tmp_path / "kubeconfig"))
    cluster = Cluster(control_plane, fault_proxy)
    yield cluster
    for ns in cluster.namespaces:
        subprocess.run([KUBECTL, "--kubeconfig", control_plane.kubeconfig, "delete", "namespace", ns, "--wait=false"],
                       capture_output=True, timeout=60)


def config_order(repo):
    """provider:name of every key in the EncryptionConfiguration the nodes would get, in order."""
    config = yaml.safe_load(repo.ok("encryption-config", "--show-key").out)
    repo.outputs.pop()  # asked for in clear: not part of the leak checks
    providers = config["resources"][0]["providers"]
    assert providers[-1] == {"identity": {}}
    return [f"{name}:{k['name']}" for p in providers[:-1] for name, v in p.items() for k in v["keys"]]


def install_locally(repo, path):
    """What `encryption install` copies to a node, written to `path` (0600) for a local apiserver."""
    text = repo.ok("encryption-config", "--show-key").out
    repo.outputs.pop()  # asked for in clear: not part of the leak checks
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def etcd_key_name(plane, namespace, name):
    """The name of the key etcd's value of a Secret is encrypted with (k8s:enc:PROVIDER:v1:NAME:...)."""
    value = plane.etcd_get(f"/registry/secrets/{namespace}/{name}")
    assert value.startswith(b"k8s:enc:secretbox:v1:"), value[:40]
    return value.split(b":")[4].decode()


def put_log(proxy, resource="secrets"):
    """path -> statuses of every PUT of `resource` objects through the proxy, paths in first-PUT order."""
    tries = {}
    for seen in proxy.requests(method="PUT", path=rf"^/api/v1/namespaces/[^/]+/{resource}/[^/]+$"):
        tries.setdefault(seen.path, []).append(seen.status)
    return tries


def where(path):
    """(namespace, name) of /api/v1/namespaces/NS/RESOURCE/NAME."""
    parts = path.split("/")
    return parts[4], parts[6]


def status_body(code, reason, message):
    return json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                       "reason": reason, "code": code})


def test_rotation_steps_keep_the_documented_key_order(repo, tmp_path):
    """The rotation against a kube-apiserver that reads the configuration the steps make.

    It runs on a control plane of its own (not the session's): each step changes the
    EncryptionConfiguration, which kube-apiserver reads only when it starts, so the test
    restarts it (as an operator does) and reads what etcd then stores."""
    from tests.controlplane.harness import ControlPlane

    repo.ok("encryption", "key")
    (old,), _ = repo.keys()
    before = repo.read(KEY_PATH)
    node_config = tmp_path / "node" / "encryption-config.yaml"
    node_config.parent.mkdir(mode=0o700)
    install_locally(repo, node_config)
    plane = ControlPlane(tmp_path / "plane", nodes=("kube1",), encryption_config=str(node_config)).start()
    try:
        repo.monkeypatch.setenv("KUBECONFIG", plane.kubeconfig)
        names = seed_secrets(plane.kubeconfig, count=3)
        values = stored_data(plane, names)
        assert {etcd_key_name(plane, *n) for n in names} == {old.name}

        def restart():
            """`encryption install` then a restart of kube-apiserver; every Secret still reads the same."""
            install_locally(repo, node_config)
            plane.stop()
            plane.start()
            assert stored_data(plane, names) == values

        dry = repo.ok("encryption", "rotate", "add", "--dry-run")
        assert dry.out.startswith("would add key secretbox:key-") and "second, after secretbox:" in dry.out
        assert repo.read(KEY_PATH) == before
        assert "nothing to promote" in repo.ok("encryption", "rotate", "promote").out

        added = repo.ok("encryption", "rotate", "add")
        keys, _ = repo.keys()
        assert config_order(repo) == [f"secretbox:{k.name}" for k in keys]
        assert [k.name for k in keys][0] == old.name and len(keys) == 2
        new = keys[1]
        assert keys[0].secret == old.secret and new.secret != old.secret and len(key_bytes(new)) == 32
        assert "next step: `render.py encryption rotate promote`" in added.out
        assert "a rotation is under way" in one_error_line(repo.run("encryption", "rotate", "add"))
        assert "run `promote` first" in one_error_line(repo.run("encryption", "rotate", "drop"))
        assert "run `promote` first" in one_error_line(repo.run("encryption", "rotate", "rewrite"))
        restart()
        # the new key second: a server that has it reads with it, but still writes with the old one
        kubectl(plane.kubeconfig, "create", "secret", "generic", "after-add", "-n", names[0][0], "--from-file",
                f"v={repo.path('Makefile.vars')}")
        assert etcd_key_name(plane, names[0][0], "after-add") == old.name

        repo.ok("encryption", "rotate", "promote")
        keys, rewritten = repo.keys()
        assert [k.name for k in keys] == [new.name, old.name] and rewritten is None
        assert config_order(repo) == [f"secretbox:{new.name}", f"secretbox:{old.name}"]
        assert f"{encryption.KEYS_ANNOTATION}: secretbox:{new.name},secretbox:{old.name}" in repo.read(KEY_PATH)
        restart()
        kubectl(plane.kubeconfig, "create", "secret", "generic", "after-promote", "-n", names[0][0],
                "--from-file", f"v={repo.path('Makefile.vars')}")
        assert etcd_key_name(plane, names[0][0], "after-promote") == new.name  # new writes: the new key
        assert {etcd_key_name(plane, *n) for n in names} == {old.name}  # what is stored: not yet

        line = one_error_line(repo.run("encryption", "rotate", "drop"))
        assert "has not completed" in line and "would become unreadable" in line

        assert repo.ok("encryption", "rotate", "rewrite").out.splitlines()[0] == \
            "secrets: 5 rewritten in 3 namespaces"
        assert repo.keys()[1] == new.name
        everything = [(s["metadata"]["namespace"], s["metadata"]["name"])
                      for s in plane.get("/api/v1/secrets")["items"]]
        assert len(everything) == 5
        assert {etcd_key_name(plane, *n) for n in everything} == {new.name}  # every Secret, re-encrypted

        dropped = repo.ok("encryption", "rotate", "drop")
        keys, _ = repo.keys()
        assert [k.name for k in keys] == [new.name] and keys[0].secret == new.secret
        assert config_order(repo) == [f"secretbox:{new.name}"]
        assert "first back up etcd with the new key in use" in dropped.out and "git history" in dropped.out
        assert "nothing to drop" in repo.ok("encryption", "rotate", "drop").out
        restart()  # only the new key left: every Secret still reads
        assert len(plane.get("/api/v1/secrets")["items"]) == 5
        assert all(k.secret not in text for text in repo.outputs for k in (old, new))
    finally:
        plane.stop()


def test_a_rotation_to_another_provider_reads_the_old_and_writes_the_new(repo, tmp_path):
    """aescbc to secretbox on a kube-apiserver of its own: a configuration with one entry per
    provider, the new one first after `promote`, reads what the old one stored; the rewrite
    stores everything with the new one, and after `drop` nothing needs the old."""
    from tests.controlplane.harness import ControlPlane

    repo.monkeypatch.setenv("ENCRYPTION_PROVIDER", "aescbc")
    repo.ok("encryption", "key")
    (old,), _ = repo.keys()
    node_config = tmp_path / "node" / "encryption-config.yaml"
    node_config.parent.mkdir(mode=0o700)
    install_locally(repo, node_config)
    plane = ControlPlane(tmp_path / "plane", nodes=("kube1",), encryption_config=str(node_config)).start()
    try:
        repo.monkeypatch.setenv("KUBECONFIG", plane.kubeconfig)
        names = seed_secrets(plane.kubeconfig, count=2, namespaces=("alpha",))
        immutable = {"apiVersion": "v1", "kind": "Secret", "immutable": True,
                     "metadata": {"name": "s-fixed", "namespace": names[0][0]}, "data": {"v": "Zml4ZWQ="}}
        kubectl(plane.kubeconfig, "create", "-f", "-", stdin=json.dumps(immutable))  # rewritten all the same
        names.append((names[0][0], "s-fixed"))
        values = stored_data(plane, names)
        assert plane.etcd_get(f"/registry/secrets/{names[0][0]}/s-00").startswith(
            f"k8s:enc:aescbc:v1:{old.name}:".encode())

        repo.monkeypatch.setenv("ENCRYPTION_PROVIDER", "secretbox")
        repo.ok("encryption", "rotate", "add")
        repo.ok("encryption", "rotate", "promote")
        (new, _), _ = repo.keys()
        assert config_order(repo) == [f"secretbox:{new.name}", f"aescbc:{old.name}"]
        install_locally(repo, node_config)
        plane.stop()
        plane.start()
        assert stored_data(plane, names) == values  # the old provider still reads
        assert repo.ok("encryption", "rotate", "rewrite").out.splitlines()[0] == "secrets: 3 rewritten in 1 namespace"
        assert {etcd_key_name(plane, *n) for n in names} == {new.name}

        repo.ok("encryption", "rotate", "drop")
        assert config_order(repo) == [f"secretbox:{new.name}"]
        install_locally(repo, node_config)
        plane.stop()
        plane.start()
        assert stored_data(plane, names) == values  # nothing needed the dropped key
    finally:
        plane.stop()


def test_rewrite_puts_every_secret_once_in_order_and_loses_none(repo, cluster, control_plane):
    repo.ok("encryption", "key")
    names = cluster.seed()
    alpha, beta, gamma = sorted({ns for ns, _ in names})
    stored = stored_data(control_plane, names)
    cluster.clear()

    dry = repo.ok("encryption", "rotate", "rewrite", "--dry-run")
    found, spread = re.fullmatch(r"secrets: (\d+) to rewrite in (\d+) namespaces \(dry run: nothing written\)",
                                 dry.out.splitlines()[0]).groups()
    assert int(found) >= 12 and int(spread) >= 3  # these and what other tests left in the cluster
    assert [r for r in cluster.requests() if r.method not in ("GET",)] == []

    cluster.clear()
    cluster.fail(method="PUT", path=rf"/namespaces/{beta}/secrets/s-04$", status=500, times=1)
    cluster.fail(method="PUT", path=rf"/namespaces/{gamma}/secrets/s-05$", status=409, times=1,
                 body=status_body(409, "Conflict", "the object has been modified"))
    cluster.fail(method="PUT", path=rf"/namespaces/{alpha}/secrets/s-09$", status=404, times=1,
                 body=status_body(404, "NotFound", 'secrets "s-09" not found'))
    done = repo.ok("encryption", "rotate", "rewrite")
    tries = put_log(cluster)
    # the summary counts what the server answered, PUT by PUT
    rewritten = [p for p, statuses in tries.items() if statuses[-1] == 200]
    gone = [p for p, statuses in tries.items() if statuses[-1] == 404]
    assert len(rewritten) + len(gone) == len(tries)
    spread = len({where(p)[0] for p in tries})
    assert done.out.splitlines()[0] == f"secrets: {len(rewritten)} rewritten in {spread} namespaces, " \
                                       f"{len(gone)} gone meanwhile"
    lists = cluster.requests(method="GET", path=r"^/api/v1/secrets$")
    assert len(lists) == 1  # one LIST across namespaces
    assert [where(p) for p in tries] == sorted(where(p) for p in tries)  # sorted by namespace/name
    ours = [where(p) for p in rewritten if where(p)[0] in (alpha, beta, gamma)]
    assert ours == [n for n in names if n != (alpha, "s-09")]  # each once
    assert tries[f"/api/v1/namespaces/{alpha}/secrets/s-09"] == [404]  # gone: not retried
    assert tries[f"/api/v1/namespaces/{beta}/secrets/s-04"] == [500, 200]  # the transient error was retried
    assert tries[f"/api/v1/namespaces/{gamma}/secrets/s-05"] == [409, 200]  # re-read and written again, once
    assert cluster.requests(method="GET", path=rf"^/api/v1/namespaces/{gamma}/secrets/s-05$")
    assert all(statuses.count(200) == 1 for statuses in tries.values() if 200 in statuses)
    assert stored_data(control_plane, names) == stored  # none lost, data identical
    assert all(etcd_key_name(control_plane, *n) for n in names)  # still encrypted at rest
    assert repo.keys()[1] == repo.keys()[0][0].name  # recorded for `drop`

    cluster.clear()
    cluster.fail(method="PUT", path=rf"/namespaces/{beta}/secrets/s-01$", status=422,
                 body=status_body(422, "Invalid", "refused"))
    failed = repo.run("encryption", "rotate", "rewrite")
    assert failed.code == 1
    assert failed.err.strip().startswith(f"error: Secret {beta}/s-01: refused")
    assert "1 failed" in failed.out and "run the rewrite again before `drop`" in failed.out
    assert put_log(cluster)[f"/api/v1/namespaces/{beta}/secrets/s-01"] == [422]  # refused: not retried


def test_rewrite_covers_every_configured_resource(repo, cluster, control_plane):
    repo.ok("encryption", "key")
    names = cluster.seed(count=2, namespaces=("alpha",))
    alpha = names[0][0]
    kubectl(control_plane.kubeconfig, "create", "configmap", "c", "-n", alpha, "--from-literal", "k=v")
    cluster.clear()
    repo.monkeypatch.setenv("ENCRYPTION_RESOURCES", "secrets configmaps")
    lines = repo.ok("encryption", "rotate", "rewrite").out.splitlines()
    for line, resource in zip(lines[:2], ("secrets", "configmaps")):
        tries = put_log(cluster, resource)
        rewritten = sum(1 for statuses in tries.values() if statuses[-1] == 200)
        gone = sum(1 for statuses in tries.values() if statuses[-1] == 404)  # other tests' objects, going
        spread = len({where(p)[0] for p in tries})
        assert rewritten + gone == len(tries)
        assert line == f"{resource}: {rewritten} rewritten in {spread} namespace{'s' if spread != 1 else ''}" \
                       + (f", {gone} gone meanwhile" if gone else "")
    assert put_log(cluster, "configmaps")[f"/api/v1/namespaces/{alpha}/configmaps/c"] == [200]
    assert [where(p) for p in put_log(cluster) if where(p)[0] == alpha] == names
    assert cluster.requests(method="GET", path=r"^/api/v1/configmaps$")
    assert control_plane.get(f"/api/v1/namespaces/{alpha}/configmaps/c")["data"] == {"k": "v"}
    repo.monkeypatch.setenv("ENCRYPTION_RESOURCES", "secrets widgets.example.com")
    cluster.clear()
    assert one_error_line(repo.run("encryption", "rotate", "rewrite")) == (
        "error: the cluster does not serve widgets.example.com (ENCRYPTION_RESOURCES)")
    assert cluster.requests(method="PUT") == []  # refused before anything is written
    repo.monkeypatch.setenv("ENCRYPTION_RESOURCES", "*.apps")
    assert "cannot expand '*.apps'" in one_error_line(repo.run("encryption", "rotate", "rewrite"))


# --- no leaks -------------------------------------------------------------------------------------------------

@needs_root
def test_the_key_appears_nowhere_but_in_the_encrypted_file_and_on_the_node(repo, cluster, control_plane, sshd,
                                                                            tmp_path):
    """Every output and file is searched for the keys: this test's and the control plane's
    (audit log, logs, etcd's data): the rewrite never sends a key to the cluster."""
    node_path = tmp_path / "node" / "config.yaml"
    for name, value in sshd.variables().items():
        repo.monkeypatch.setenv(name, value)
    repo.monkeypatch.setenv("REMOTE_SUDO", "")
    repo.monkeypatch.setenv("ENCRYPTION_CONFIG_PATH", str(node_path))
    names = cluster.seed(count=2)
    seen = {}

    def collect():
        for key in repo.keys()[0]:
            seen[key.name] = key.secret

    repo.ok("encryption", "key")
    collect()
    repo.ok("encryption", "key")
    repo.ok("encryption-config", "--out", "build")
    repo.ok("encryption", "install", NODE, "--dry-run")
    repo.ok("encryption", "install", NODE)
    repo.ok("encryption", "rotate", "add", "--dry-run")
    repo.ok("encryption", "rotate", "add", "--node", NODE)
    collect()
    repo.ok("encryption", "rotate", "promote", "--node", NODE)
    repo.ok("encryption", "rotate", "rewrite", "--dry-run")
    repo.ok("encryption", "rotate", "rewrite")
    repo.ok("encryption", "rotate", "drop", "--node", NODE)
    assert repo.run("encryption", "rotate", "add", "--node", "bad host").code == 1  # a failing install
    collect()
    repo.ok("secrets", "list", "--no-cluster", main=cli.main)
    repo.ok("secrets", "check", main=cli.main)
    assert len(seen) == 3
    installed = node_path.read_text()
    assert list(seen.values())[1] in installed  # the flow really ran: the promoted key, alone
    assert list(seen.values())[0] not in installed and list(seen.values())[2] not in installed
    assert all(put_log(cluster)[f"/api/v1/namespaces/{ns}/secrets/{name}"] == [200] for ns, name in names)

    forms = {name: [secret.encode(), base64.b64decode(secret)] for name, secret in seen.items()}
    for text in repo.outputs + sshd.log:
        for name, (b64, _) in forms.items():
            assert b64.decode() not in text, f"key {name} printed"
    scanned = 0
    for folder, _, files in [*os.walk(tmp_path), *os.walk(control_plane.workdir)]:
        for file_name in files:
            path = os.path.join(folder, file_name)
            if path == str(node_path):
                continue
            try:
                with open(path, "rb") as f:
                    content = f.read()
            except OSError:
                continue
            scanned += 1
            for name, (b64, raw) in forms.items():
                assert b64 not in content and raw not in content, f"key {name} found in {path}"
    assert scanned >= 5
    stored = repo.read(KEY_PATH)
    assert "ENC[AES256_GCM," in stored and all(s not in stored for s in seen.values())


def test_secrets_apply_never_sends_the_encryption_key_to_the_cluster(repo, cluster, control_plane):
    repo.ok("encryption", "key")
    applied = repo.ok("secrets", "apply", main=cli.main)
    assert "etcd-encryption kept local (k8s-toolkit/local-only)" in applied.out, applied.out
    assert cluster.requests(path="etcd-encryption") == []
    assert [r for r in cluster.requests() if r.method != "GET"] == []
    assert control_plane.get("/api/v1/namespaces/kube-system/secrets/etcd-encryption", check=False) is None


def test_module_imports_only_the_standard_library():
    import subprocess
    import sys

    from ..conftest import ROOT

    code = ("import sys; before = set(sys.modules); import k8s.nodes.encryption, k8s.commands.encryption, k8s.cluster.rewrite, k8s.nodes.audit; "
            "print('\\n'.join(sorted(set(sys.modules) - before)))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.split()
    assert [m for m in loaded if m.split(".")[0] not in sys.stdlib_module_names and
            m.split(".")[0] != "k8s"] == []


def test_register_adds_the_commands():
    import argparse

    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command")
    encryption_cli.register(commands)
    args = parser.parse_args(["encryption", "rotate", "rewrite", "--dry-run", "--context", "c"])
    assert (args.run, args.step, args.dry_run, args.context) == (encryption_cli.cmd_rotate, "rewrite", True, "c")
    args = parser.parse_args(["encryption", "install", "a", "b"])
    assert (args.run, args.nodes) == (encryption_cli.cmd_install, ["a", "b"])
    args = parser.parse_args(["encryption-config", "--show-key"])
    assert (args.run, args.show_key, args.out) == (encryption_cli.cmd_config, True, "build")


@pytest.mark.parametrize("value, covered, wildcard", [
    ("*.* secrets", "secrets", "*.*"),
    ("*.apps deployments.apps", "deployments.apps", "*.apps"),
])
def test_a_resource_behind_a_wildcard_is_refused(value, covered, wildcard):
    with pytest.raises(UserError, match=rf"'{covered}' is covered by '\{wildcard[0]}{wildcard[1:]}' before it"):
        encryption_config.resources(value)
    assert encryption_config.resources("secrets deployments.apps *.apps *.*") == [
        "secrets", "deployments.apps", "*.apps", "*.*"]


@pytest.mark.parametrize("path, ok", [("/etc/kubernetes/enc/config.yaml", True), ("/config.yaml", False),
                                      ("/etc/a\nb/c.yaml", False), ("relative/c.yaml", False)])
def test_node_files_need_a_folder_of_their_own(path, ok):
    assert (node_files.node_file_problem(path) is None) == ok


@pytest.mark.parametrize("doc, message", [
    ({"kind": "Secret", "metadata": "hello"}, "metadata must be a mapping"),
    ({"kind": "Secret", "metadata": {"annotations": ["a"]}}, "metadata.annotations must be a mapping"),
    ({"kind": "Secret", "data": "x",
      "metadata": {"annotations": {encryption.KEYS_ANNOTATION: "aescbc:key-20260101T000000Z"}}},
     "data must be a mapping"),
])
def test_a_mistyped_key_document_is_named(doc, message):
    with pytest.raises(UserError, match=rf"^secrets/etcd-encryption.yml: {message}$"):
        encryption.keys_of(doc, "secrets/etcd-encryption.yml")

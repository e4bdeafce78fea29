"""etcd encryption at rest: real gpg and sops, a real sshd as the control-plane node, the API
server stand-in for the rewrite.

Commands run in-process through `k8s.cli.main` (render.py's main, with the encryption
commands registered), in a scratch repository, output captured at the file-descriptor level.
"""

import base64
import os
import shlex
import stat

import pytest
import yaml

from k8s import cli, encryption, encryption_cli, secrets
from k8s.errors import UserError
from k8s.sops import Sops

from .apiserver import ApiServer
from .conftest import in_process, needs_root
from .gpg import KEY_EMAIL, KEY_NAME, gnupghome, gpg_session_key  # noqa: F401
from .sshd import sshd, sshd_factory  # noqa: F401

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
    assert encryption._KEY_NAME.match(key.name)

    # a Secret-shaped document that `secrets list/edit` can decode (validated as a v1 Secret)
    objects = secrets.decode(repo.plaintext(), KEY_PATH, {"K8S_NAMESPACE": "demo"}, secrets.Scrubber())
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
    for provider in encryption.PROVIDERS:
        key = encryption.generate(provider)
        config = encryption.configuration([key], encryption.resources("secrets configmaps"))
        assert config["apiVersion"] == "apiserver.config.k8s.io/v1"
        assert config["kind"] == "EncryptionConfiguration"
        (entry,) = config["resources"]
        assert entry["resources"] == ["secrets", "configmaps"]
        assert entry["providers"] == [{provider: {"keys": [{"name": key.name, "secret": key.secret}]}},
                                      {"identity": {}}]
        assert len(base64.b64decode(entry["providers"][0][provider]["keys"][0]["secret"])) == 32

    # a rotation that changes the provider: one entry per provider, in key order, identity last
    old = encryption.generate("aescbc")
    keys = encryption.add([old], "secretbox")
    providers = encryption.configuration(keys, ["secrets"])["resources"][0]["providers"]
    assert [list(p) for p in providers] == [["aescbc"], ["secretbox"], ["identity"]]
    providers = encryption.configuration(encryption.promote(keys), ["secrets"])["resources"][0]["providers"]
    assert [list(p) for p in providers] == [["secretbox"], ["aescbc"], ["identity"]]
    same = encryption.add([old], "aescbc")
    providers = encryption.configuration(same, ["secrets"])["resources"][0]["providers"]
    assert [k["name"] for k in providers[0]["aescbc"]["keys"]] == [old.name, same[1].name]
    assert providers[-1] == {"identity": {}}

    assert encryption.resources("secrets  widgets.example.com secrets") == ["secrets", "widgets.example.com"]
    with pytest.raises(UserError, match="'Secrets' is not a resource name"):
        encryption.resources("Secrets")
    with pytest.raises(UserError, match="ENCRYPTION_RESOURCES is empty"):
        encryption.resources(" ")
    assert "secret=" not in repr(old) and old.secret not in repr(keys)


def test_key_names_sort_by_time_and_never_collide():
    import datetime

    moment = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert encryption.new_name([], moment) == "key-20260102T030405Z"
    assert encryption.new_name(["key-20260102T030405Z"], moment) == "key-20260102T030405Z-1"
    assert encryption.new_name(["key-20260102T030405Z-1"], moment) == "key-20260102T030405Z-2"
    later = encryption.new_name(["key-20270101T000000Z"], moment)  # the clock went back
    assert later == "key-20270101T000000Z-1"
    assert ":" not in later  # key names appear in etcd as k8s:enc:<provider>:v1:<name>:


def test_fragment_forms_for_130_and_131():
    path = "/etc/kubernetes/encryption/config.yaml"
    volume = {"name": "encryption-config", "hostPath": "/etc/kubernetes/encryption",
              "mountPath": "/etc/kubernetes/encryption", "readOnly": True, "pathType": "DirectoryOrCreate"}
    old = encryption.fragment(path, "1.30")
    assert old == {"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "ClusterConfiguration",
                   "apiServer": {"extraArgs": {"encryption-provider-config": path}, "extraVolumes": [volume]}}
    new = encryption.fragment(path, "1.31")
    assert new["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    assert new["apiServer"] == {"extraArgs": [{"name": "encryption-provider-config", "value": path}],
                                "extraVolumes": [volume]}
    assert encryption.fragment(path)["apiVersion"] == "kubeadm.k8s.io/v1beta4"


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
    assert os.listdir(repo.path("build")) == ["kubeadm-encryption.yaml"]
    assert yaml.safe_load(repo.read("build/kubeadm-encryption.yaml")) == fragment

    repo.ok("encryption-config", "--out", "build")  # KUBE_VERSION 1.31 from Makefile.vars
    assert yaml.safe_load(repo.read("build/kubeadm-encryption.yaml"))["apiVersion"] == "kubeadm.k8s.io/v1beta4"

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
        encryption.config_path({"ENCRYPTION_CONFIG_PATH": "/etc/kube rnetes/x.yaml"})
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
    expected = encryption.config_text([key], ["secrets"], str(node_path))
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

def seed_secrets(server, count=12, namespaces=("alpha", "beta", "gamma")):
    for ns in namespaces:
        server.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    made = []
    for i in range(count):
        ns = namespaces[i % len(namespaces)]
        name = f"s-{i:02d}"
        server.seed({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
                     "type": "Opaque", "data": {"v": base64.b64encode(f"value-{i}".encode()).decode()}})
        made.append((ns, name))
    return sorted(made)


@pytest.fixture
def cluster(repo, tmp_path):
    with ApiServer(version="1.31.2") as server:
        repo.monkeypatch.setenv("KUBECONFIG", server.kubeconfig(tmp_path / "kubeconfig"))
        yield server


def config_order(repo):
    """provider:name of every key in the EncryptionConfiguration the nodes would get, in order."""
    config = yaml.safe_load(repo.ok("encryption-config", "--show-key").out)
    repo.outputs.pop()  # asked for in clear: not part of the leak checks
    providers = config["resources"][0]["providers"]
    assert providers[-1] == {"identity": {}}
    return [f"{name}:{k['name']}" for p in providers[:-1] for name, v in p.items() for k in v["keys"]]


def secret_puts(server):
    return [r for r in server.requests if r.method == "PUT" and "/secrets/" in r.path]


def test_rotation_steps_keep_the_documented_key_order(repo, cluster):
    repo.ok("encryption", "key")
    (old,), _ = repo.keys()
    before = repo.read(KEY_PATH)

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

    repo.ok("encryption", "rotate", "promote")
    keys, rewritten = repo.keys()
    assert [k.name for k in keys] == [new.name, old.name] and rewritten is None
    assert config_order(repo) == [f"secretbox:{new.name}", f"secretbox:{old.name}"]
    assert f"{encryption.KEYS_ANNOTATION}: secretbox:{new.name},secretbox:{old.name}" in repo.read(KEY_PATH)

    line = one_error_line(repo.run("encryption", "rotate", "drop"))
    assert "has not completed" in line and "would become unreadable" in line

    seed_secrets(cluster, count=3)
    assert repo.ok("encryption", "rotate", "rewrite").out.splitlines()[0] == \
        "secrets: 3 rewritten in 3 namespaces"
    assert repo.keys()[1] == new.name

    dropped = repo.ok("encryption", "rotate", "drop")
    keys, _ = repo.keys()
    assert [k.name for k in keys] == [new.name] and keys[0].secret == new.secret
    assert config_order(repo) == [f"secretbox:{new.name}"]
    assert "first back up etcd with the new key in use" in dropped.out and "git history" in dropped.out
    assert "nothing to drop" in repo.ok("encryption", "rotate", "drop").out
    assert all(k.secret not in text for text in repo.outputs for k in (old, new))


def test_rewrite_puts_every_secret_once_in_order_and_loses_none(repo, cluster):
    repo.ok("encryption", "key")
    names = seed_secrets(cluster)
    stored = {(o["metadata"]["namespace"], o["metadata"]["name"]): o["data"]
              for o in cluster.objects("Secret")}
    cluster.clear_requests()

    dry = repo.ok("encryption", "rotate", "rewrite", "--dry-run")
    assert dry.out.splitlines()[0] == "secrets: 12 to rewrite in 3 namespaces (dry run: nothing written)"
    assert cluster.writes() == []

    cluster.clear_requests()
    cluster.faults.error(500, times=1, method="PUT", path=r"/namespaces/beta/secrets/s-04$")
    cluster.faults.error(409, times=1, method="PUT", path=r"/namespaces/gamma/secrets/s-05$",
                         reason="Conflict", message="the object has been modified")
    cluster.faults.error(404, times=1, method="PUT", path=r"/namespaces/alpha/secrets/s-09$",
                         reason="NotFound")
    done = repo.ok("encryption", "rotate", "rewrite")
    assert done.out.splitlines()[0] == "secrets: 11 rewritten in 3 namespaces, 1 gone meanwhile"
    lists = [r for r in cluster.requests if r.method == "GET" and r.path == "/api/v1/secrets"]
    assert len(lists) == 1  # one LIST across namespaces
    ok = [r for r in secret_puts(cluster) if r.status == 200]
    order = [tuple(r.path.split("/")[4:7:2]) for r in ok]
    assert order == [n for n in names if n != ("alpha", "s-09")]  # each once, sorted by namespace/name
    assert len(set(order)) == len(order)
    tries = [r.status for r in secret_puts(cluster) if r.path.endswith("/beta/secrets/s-04")]
    assert tries == [500, 200]  # the transient error was retried
    tries = [r.status for r in secret_puts(cluster) if r.path.endswith("/gamma/secrets/s-05")]
    assert tries == [409, 200]  # re-read and written again, once
    assert cluster.find_requests(method="GET", path=r"/namespaces/gamma/secrets/s-05$")
    assert all(r.body["metadata"]["name"] == r.path.rsplit("/", 1)[1] and r.body["kind"] == "Secret"
               for r in ok)
    after = {(o["metadata"]["namespace"], o["metadata"]["name"]): o["data"] for o in cluster.objects("Secret")}
    assert after == stored  # none lost, data identical
    assert repo.keys()[1] == repo.keys()[0][0].name  # recorded for `drop`

    cluster.clear_requests()
    cluster.faults.error(422, times=None, method="PUT", path=r"/namespaces/beta/secrets/s-01$",
                         reason="Invalid", message="refused")
    failed = repo.run("encryption", "rotate", "rewrite")
    assert failed.code == 1
    assert failed.err.strip().startswith("error: Secret beta/s-01: refused")
    assert "1 failed" in failed.out and "run the rewrite again before `drop`" in failed.out


def test_rewrite_covers_every_configured_resource(repo, cluster):
    repo.ok("encryption", "key")
    seed_secrets(cluster, count=2, namespaces=("alpha",))
    cluster.seed({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "alpha"},
                  "data": {"k": "v"}})
    repo.monkeypatch.setenv("ENCRYPTION_RESOURCES", "secrets configmaps")
    lines = repo.ok("encryption", "rotate", "rewrite").out.splitlines()
    assert lines[:2] == ["secrets: 2 rewritten in 1 namespace", "configmaps: 1 rewritten in 1 namespace"]
    assert len(cluster.find_requests(method="PUT", path=r"/configmaps/c$", status=200)) == 1
    repo.monkeypatch.setenv("ENCRYPTION_RESOURCES", "secrets widgets.example.com")
    assert one_error_line(repo.run("encryption", "rotate", "rewrite")) == (
        "error: the cluster does not serve widgets.example.com (ENCRYPTION_RESOURCES)")
    repo.monkeypatch.setenv("ENCRYPTION_RESOURCES", "*.apps")
    assert "cannot expand '*.apps'" in one_error_line(repo.run("encryption", "rotate", "rewrite"))


# --- no leaks -------------------------------------------------------------------------------------------------

@needs_root
def test_the_key_appears_nowhere_but_in_the_encrypted_file_and_on_the_node(repo, cluster, sshd, tmp_path):
    node_path = tmp_path / "node" / "config.yaml"
    for name, value in sshd.variables().items():
        repo.monkeypatch.setenv(name, value)
    repo.monkeypatch.setenv("REMOTE_SUDO", "")
    repo.monkeypatch.setenv("ENCRYPTION_CONFIG_PATH", str(node_path))
    seed_secrets(cluster, count=2)
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

    forms = {name: [secret.encode(), base64.b64decode(secret)] for name, secret in seen.items()}
    for text in repo.outputs + sshd.log:
        for name, (b64, _) in forms.items():
            assert b64.decode() not in text, f"key {name} printed"
    scanned = 0
    for folder, _, files in os.walk(tmp_path):
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


def test_secrets_apply_never_sends_the_encryption_key_to_the_cluster(repo, cluster):
    repo.ok("encryption", "key")
    repo.run("secrets", "apply", main=cli.main)
    assert cluster.get("Secret", "etcd-encryption", "kube-system") is None


def test_module_imports_only_the_standard_library():
    import subprocess
    import sys

    from .conftest import ROOT

    code = ("import sys; before = set(sys.modules); import k8s.encryption, k8s.encryption_cli, k8s.rewrite, k8s.audit; "
            "print('\\n'.join(sorted(set(sys.modules) - before)))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.split()
    assert [m for m in loaded if m.split(".")[0] not in sys.stdlib_module_names and
            m.split(".")[0] != "k8s"] == []


def test_register_adds_the_commands_once():
    import argparse

    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command")
    encryption_cli.register(commands)
    assert encryption_cli.register(commands) is commands.choices["encryption"]
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
        encryption.resources(value)
    assert encryption.resources("secrets deployments.apps *.apps *.*") == [
        "secrets", "deployments.apps", "*.apps", "*.*"]


@pytest.mark.parametrize("path, ok", [("/etc/kubernetes/enc/config.yaml", True), ("/config.yaml", False),
                                      ("/etc/a\nb/c.yaml", False), ("relative/c.yaml", False)])
def test_node_files_need_a_folder_of_their_own(path, ok):
    assert (encryption.node_file_problem(path) is None) == ok


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

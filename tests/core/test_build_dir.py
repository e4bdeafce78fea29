"""build/ is exactly the last render (k8s.core.build_dir), and build/kubeadm/ is one kubeadm
patch with the files it names (k8s.nodes.kubeadm_patch).

Renders of the shipped components run render.py as `make render` does, in a subprocess from the
repository root; the kubeadm patch is decoded and checked against kubeadm's v1beta3 and v1beta4
types.
"""

import os
import subprocess
import sys

import pytest
import yaml

from k8s.core import build_dir, podsecurity
from k8s.errors import UserError
from k8s.nodes import audit, kubeadm_patch

from ..conftest import ROOT

KUBEADM = ["NOTES.txt", "admission-config.yaml", "audit-policy.yaml", "cluster-configuration.yaml"]
FLAGS = {  # the shipped defaults (Makefile.vars)
    "encryption-provider-config": "/etc/kubernetes/encryption/config.yaml",
    "audit-policy-file": "/etc/kubernetes/audit/policy.yaml",
    "audit-log-path": "/var/log/kubernetes/audit/audit.log",
    "audit-log-maxage": "30",
    "audit-log-maxbackup": "10",
    "audit-log-maxsize": "100",
    "admission-control-config-file": "/etc/kubernetes/admission/admission.yaml",
}
VOLUMES = {  # hostPath: (mountPath, readOnly, pathType)
    "/etc/kubernetes/encryption": ("/etc/kubernetes/encryption", True, "DirectoryOrCreate"),
    "/etc/kubernetes/audit": ("/etc/kubernetes/audit", True, "DirectoryOrCreate"),
    "/var/log/kubernetes/audit": ("/var/log/kubernetes/audit", False, "DirectoryOrCreate"),
    "/etc/kubernetes/admission": ("/etc/kubernetes/admission", True, "DirectoryOrCreate"),
}
# Field names of kubeadm's types (cmd/kubeadm/app/apis/kubeadm/<version>/types.go, json tags).
CLUSTER_CONFIGURATION = {
    "v1beta3": {"apiVersion", "kind", "etcd", "networking", "kubernetesVersion", "controlPlaneEndpoint",
                "apiServer", "controllerManager", "scheduler", "dns", "certificatesDir", "imageRepository",
                "featureGates", "clusterName"},
    "v1beta4": {"apiVersion", "kind", "etcd", "networking", "kubernetesVersion", "controlPlaneEndpoint",
                "apiServer", "controllerManager", "scheduler", "dns", "proxy", "certificatesDir",
                "imageRepository", "featureGates", "clusterName", "encryptionAlgorithm",
                "certificateValidityPeriod", "caCertificateValidityPeriod"},
}
API_SERVER = {"v1beta3": {"extraArgs", "extraVolumes", "certSANs", "timeoutForControlPlane"},
              "v1beta4": {"extraArgs", "extraVolumes", "extraEnvs", "certSANs"}}
HOST_PATH_MOUNT = {"name", "hostPath", "mountPath", "readOnly", "pathType"}
NETWORKING = {"serviceSubnet", "podSubnet", "dnsDomain"}


def render(*args, out, cwd=ROOT, env=None):
    """render.py ARGS --out OUT, as `make render` runs it."""
    full_env = {k: v for k, v in os.environ.items() if k != "VARS_FILE"}
    full_env.update(env or {})
    result = subprocess.run([sys.executable, os.path.join(ROOT, "render.py"), *args, "--out", str(out)],
                            cwd=cwd, env=full_env, capture_output=True, text=True)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def listing(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)


def components_of(result):
    """The component files a render's summary says it wrote."""
    return sorted(os.path.basename(line.rpartition(" -> ")[2]) for line in result.stdout.splitlines()
                  if " -> " in line)


# --- build/ is the last render ---------------------------------------------------------------------

def test_a_137_render_leaves_nothing_of_a_124_render_and_nothing_of_the_users_is_touched(tmp_path):
    out = tmp_path / "build"
    out.mkdir()
    (out / "my-notes.yaml").write_text("mine\n")  # the user's own files, in the same folder
    (out / "sub").mkdir()
    (out / "sub" / "flannel.yaml").write_text("mine too\n")

    old = render("--kube-version", "1.24", "template", out=out)
    assert old.returncode == 0, old.stderr
    assert "pod-security.yaml" in components_of(old)
    assert (out / "pod-security.yaml").exists()

    new = render("--kube-version", "1.37", "template", out=out)
    assert new.returncode == 0, new.stderr
    assert "pod-security.yaml" not in components_of(new)
    assert not (out / "pod-security.yaml").exists()
    assert f"removed what an earlier render wrote and this one did not: {out / 'pod-security.yaml'}" \
        in new.stderr
    assert listing(out) == sorted([".written", "my-notes.yaml", "sub/flannel.yaml", *components_of(new),
                                   *(f"kubeadm/{name}" for name in KUBEADM)])
    assert (out / "my-notes.yaml").read_text() == "mine\n"
    assert (out / "sub" / "flannel.yaml").read_text() == "mine too\n"


def test_without_a_list_only_names_the_toolkit_writes_go(tmp_path):
    out = tmp_path / "build"
    out.mkdir()
    toolkit = ["pod-security.yaml", "gateway-api.json", *build_dir.RETIRED]  # an older version's render
    for name in toolkit + ["mine.yaml", "kubeadm.txt"]:
        (out / name).write_text("old\n")
    result = render("--kube-version", "1.37", "template", out=out)
    assert result.returncode == 0, result.stderr
    for name in toolkit:
        assert not (out / name).exists(), name
    assert (out / "mine.yaml").read_text() == (out / "kubeadm.txt").read_text() == "old\n"
    assert not (out / "gateway-api.yaml").exists()  # never vendored here: left out, so not written


def test_one_component_leaves_the_others_and_a_full_render_in_json_replaces_the_yaml(tmp_path):
    out = tmp_path / "build"
    full = render("--kube-version", "1.37", "template", out=out)
    assert full.returncode == 0, full.stderr
    before = listing(out)
    (out / "flannel.yaml").write_text("stale\n")

    one = render("--kube-version", "1.37", "template", "flannel", out=out)
    assert one.returncode == 0, one.stderr
    assert listing(out) == before  # the others stay, nothing added but what was named
    assert (out / "flannel.yaml").read_text() != "stale\n"
    assert "removed" not in one.stderr and "kubeadm" not in one.stderr

    as_json = render("--kube-version", "1.37", "template", "-o", "json", out=out)
    assert as_json.returncode == 0, as_json.stderr
    assert not [name for name in listing(out) if name.endswith(".yaml") and "/" not in name]
    assert components_of(as_json) == sorted(n.replace(".yaml", ".json") for n in components_of(full))


def test_the_list_names_nothing_outside_the_folder_and_no_link(tmp_path):
    folder = tmp_path / "build"
    folder.mkdir()
    outside = tmp_path / "precious.yaml"
    outside.write_text("keep\n")
    (tmp_path / "target.yaml").write_text("keep\n")
    (folder / "link.yaml").symlink_to(tmp_path / "target.yaml")
    (folder / "web.yaml").write_text("placed by the user after the last render\n")
    (folder / "old.yaml").write_text("the toolkit's\n")
    (folder / build_dir.LIST_FILE).write_text(f"# comment\n../precious.yaml\n{outside}\nlink.yaml\nold.yaml\n"
                                              f"./old.yaml\nkubeadm/../../precious.yaml\n{build_dir.LIST_FILE}\n")
    written, removed = build_dir.write(str(folder), {"new.yaml": "x\n"}, known={"web.yaml"}, prune=True)
    assert (written, removed) == ([str(folder / "new.yaml")], [str(folder / "old.yaml")])
    assert outside.read_text() == "keep\n" and (tmp_path / "target.yaml").read_text() == "keep\n"
    assert (folder / "link.yaml").is_symlink() and (folder / "web.yaml").exists()  # not listed: not ours
    assert [line for line in (folder / build_dir.LIST_FILE).read_text().splitlines()
            if not line.startswith("#")] == ["new.yaml"]


def test_errors_are_one_line_and_a_bad_variable_writes_nothing(tmp_path):
    out = tmp_path / "build"
    out.mkdir()
    (out / "kubeadm").write_text("a file where the folder goes\n")
    result = render("--kube-version", "1.37", "template", out=out)
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"error: {out / 'kubeadm'}") and "cannot write" in result.stderr

    (out / "kubeadm").unlink()
    os.mkfifo(out / ".written")  # the toolkit's own list of what it wrote: a read would block
    result = render("--kube-version", "1.37", "template", out=out)
    assert (result.returncode, result.stderr.splitlines()) == (1, [
        f"error: {out / '.written'}: not a regular file (a FIFO)"])

    fresh = tmp_path / "fresh"
    result = render("--kube-version", "1.37", "template", out=fresh, env={"POD_CIDR": "10.244.0.0/33"})
    assert (result.returncode, result.stderr.splitlines()) == (1, [
        "error: POD_CIDR='10.244.0.0/33' (environment): not an IPv4 CIDR like 10.244.0.0/16"])
    assert not fresh.exists()


# --- build/kubeadm/ ------------------------------------------------------------------------------

def decode_patch(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert len(docs) == 1
    return docs[0]


def check_against_kubeadm_types(config):
    """The patch uses only field names kubeadm's types have; returns (flags, volumes by hostPath)."""
    version = config["apiVersion"].rpartition("/")[2]
    assert config["kind"] == "ClusterConfiguration"
    assert set(config) <= CLUSTER_CONFIGURATION[version]
    assert set(config["apiServer"]) <= API_SERVER[version]
    assert set(config.get("networking", {})) <= NETWORKING
    args = config["apiServer"]["extraArgs"]
    if version == "v1beta4":  # []Arg{name, value}
        assert all(set(a) == {"name", "value"} and isinstance(a["value"], str) for a in args)
        names = [a["name"] for a in args]
        flags = {a["name"]: a["value"] for a in args}
    else:  # map[string]string
        assert isinstance(args, dict) and all(isinstance(v, str) for v in args.values())
        names, flags = list(args), dict(args)
    assert len(names) == len(set(names)), names  # every flag once
    volumes = config["apiServer"]["extraVolumes"]
    assert all(set(v) <= HOST_PATH_MOUNT for v in volumes)
    by_host = {v["hostPath"]: (v["mountPath"], v["readOnly"], v["pathType"]) for v in volumes}
    assert len(by_host) == len(volumes) and len({v["name"] for v in volumes}) == len(volumes)
    return flags, by_host


@pytest.mark.parametrize("version, api", [("1.30", "kubeadm.k8s.io/v1beta3"), ("1.37", "kubeadm.k8s.io/v1beta4")])
def test_the_render_writes_the_kubeadm_folder_with_one_merged_patch(tmp_path, version, api):
    out = tmp_path / "build"
    result = render("--kube-version", version, "template", out=out)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out / "kubeadm")) == KUBEADM
    config = decode_patch(out / "kubeadm" / "cluster-configuration.yaml")
    assert config["apiVersion"] == api
    flags, volumes = check_against_kubeadm_types(config)
    assert flags == FLAGS
    assert volumes == VOLUMES
    assert config["networking"] == {"podSubnet": "10.244.0.0/16"}  # POD_CIDR: --config refuses the flag

    assert (out / "kubeadm" / "audit-policy.yaml").read_text() == audit.policy_text()
    admission = yaml.safe_load((out / "kubeadm" / "admission-config.yaml").read_text())
    assert admission == podsecurity.admission_configuration(
        {**{k: v.value for k, v in _shipped().items()}, "KUBE_VERSION": version})
    notes = (out / "kubeadm" / "NOTES.txt").read_text()
    for part in ("every control-plane node", "/etc/kubernetes/encryption/config.yaml", "make encryption_install",
                 "/etc/kubernetes/audit/policy.yaml", "make audit_install", "admission-config.yaml",
                 "/etc/kubernetes/admission/admission.yaml", "by hand",
                 f"kubeadm init --config {out}/kubeadm/cluster-configuration.yaml", "kubeadm-config",
                 "kubeadm upgrade apply --config"):
        assert part.lower() in notes.lower(), part
    texts = "".join(p.read_text() for p in (out / "kubeadm").iterdir())
    assert "kind: EncryptionConfiguration" not in texts and "secretbox" not in texts  # the key never here


def _shipped():
    from k8s.core import variables

    return variables.load_variables(os.path.join(ROOT, "Makefile.vars"), environ={})


def test_two_files_in_one_folder_are_one_volume_and_a_conflict_is_an_error():
    shared = {"ENCRYPTION_CONFIG_PATH": "/etc/kubernetes/secure/encryption.yaml",
              "AUDIT_POLICY_PATH": "/etc/kubernetes/secure/audit.yaml",
              "AUDIT_LOG_PATH": "/var/log/apiserver/audit.log"}
    for version in ("1.30", "1.37"):
        flags, volumes = check_against_kubeadm_types(kubeadm_patch.patch(shared, version))
        assert flags["encryption-provider-config"] == "/etc/kubernetes/secure/encryption.yaml"
        assert flags["audit-policy-file"] == "/etc/kubernetes/secure/audit.yaml"
        assert volumes == {"/etc/kubernetes/secure": ("/etc/kubernetes/secure", True, "DirectoryOrCreate"),
                           "/var/log/apiserver": ("/var/log/apiserver", False, "DirectoryOrCreate"),
                           "/etc/kubernetes/admission": ("/etc/kubernetes/admission", True,
                                                         "DirectoryOrCreate")}
    ro = {"name": "a", "hostPath": "/x", "mountPath": "/x", "readOnly": True, "pathType": "DirectoryOrCreate"}
    rw = dict(ro, name="b", readOnly=False)
    merged = kubeadm_patch.merge([
        {"apiServer": {"extraArgs": {"f": "1"}, "extraVolumes": [ro]}},
        {"apiServer": {"extraArgs": [{"name": "f", "value": "1"}], "extraVolumes": [rw]}}], "1.37")
    assert merged["apiServer"] == {"extraArgs": [{"name": "f", "value": "1"}],
                                   "extraVolumes": [dict(ro, readOnly=False)]}  # writable wins
    with pytest.raises(UserError, match=r"^kube-apiserver flag --f set twice: '1' and '2'$"):
        kubeadm_patch.merge([{"apiServer": {"extraArgs": {"f": "1"}}}, {"apiServer": {"extraArgs": {"f": "2"}}}])
    with pytest.raises(UserError, match="host folder /x mounted at /x and /y"):
        kubeadm_patch.merge([{"apiServer": {"extraVolumes": [ro]}},
                             {"apiServer": {"extraVolumes": [dict(ro, mountPath="/y")]}}])


def test_the_make_targets_write_the_same_kubeadm_folder_and_retire_the_old_fragments(tmp_path):
    out = tmp_path / "build"
    assert render("--kube-version", "1.37", "template", out=out).returncode == 0
    rendered = {name: (out / "kubeadm" / name).read_text() for name in KUBEADM}
    for name in build_dir.RETIRED:
        (out / name).write_text("from an older version\n")
    for command in ("audit-policy", "admission-config"):
        result = render("--kube-version", "1.37", command, out=out)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"wrote {out}/kubeadm/cluster-configuration.yaml, "), result.stdout
        assert f"{out}/kubeadm/NOTES.txt" in result.stdout.splitlines()[0]
        assert {name: (out / "kubeadm" / name).read_text() for name in KUBEADM} == rendered
        assert not [name for name in build_dir.RETIRED if (out / name).exists()]
        assert "kubeadm/NOTES.txt" in (out / build_dir.LIST_FILE).read_text()
    result = render("--kube-version", "1.22", "admission-config", out=tmp_path / "old")
    assert (result.returncode, result.stderr) == (
        1, "error: Pod Security Admission needs Kubernetes 1.23 or newer, not 1.22\n")

"""Kubelet serving certificates (k8s.cluster.serving_certs, `render.py kubelet-certs`), on real
control planes: the session's, whose kubelets serve self-signed certificates as stock
kubeadm's do, and one of this module's own whose simulated kubelets read a config.yaml each
(tests.controlplane.nodes), which `kubelet-certs enable` edits over a real sshd.

CSRs are created as a kubelet creates them: with a client certificate CN=system:node:NAME,
O=system:nodes, so the API server itself fills in spec.username and spec.groups; the
controller-manager signs the approved ones with the cluster CA.
"""

import base64
import ipaddress
import os
import stat

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from k8s.cluster import serving_certs
from k8s.cluster.connection import Cluster

from ..conftest import ROOT, in_process
from ..realcluster import api_client, unique, wait_for
from ..sshd import sshd, sshd_factory  # noqa: F401

ADMIN_CONTEXT = "kubernetes-admin@kubernetes"
SIGNER = "kubernetes.io/kubelet-serving"
BOOTSTRAPPERS = "system:bootstrappers:kubeadm:default-node-token"  # kubeadm's bootstrap-token group
ENV_OUT = ("VARS_FILE", "K8S_NODES", "SSH_CONFIG", "SSH_OPTIONS", "REMOTE_SUDO", "KUBELET_CONFIG_PATH",
           "METRICS_SERVER_INSECURE_TLS", "DASHBOARD", "POD_CIDR")


# --- helpers ----------------------------------------------------------------------------------

def request_pem(common_name, orgs=("system:nodes",), dns=(), ips=(), emails=()):
    """A PEM certificate request as a kubelet makes it (its own EC key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs),
                         x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    sans = ([x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
            + [x509.RFC822Name(e) for e in emails])
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


class Csrs:
    """CSRs of one test, created as a given user and deleted at its end."""

    def __init__(self, plane, folder):
        self.plane, self.folder = plane, folder
        self.admin = client.CertificatesV1Api(api_client(plane))
        self.names = []

    def create(self, pem, as_user=None, groups=("system:nodes",), signer=SIGNER,
               usages=("digital signature", "server auth")):
        """A CSR sent by client-certificate user `as_user` (None: the cluster admin); its name."""
        if as_user:
            path = self.plane.user_kubeconfig(str(self.folder / f"{unique('user')}.conf"), as_user, list(groups))
            api = client.CertificatesV1Api(config.new_client_from_config(config_file=path))
        else:
            api = self.admin
        csr = api.create_certificate_signing_request({
            "metadata": {"generateName": "test-csr-"},
            "spec": {"request": base64.b64encode(pem).decode(), "signerName": signer, "usages": list(usages)}})
        self.names.append(csr.metadata.name)
        return csr.metadata.name

    def get(self, name):
        return self.plane.get(f"/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}")

    def conditions(self, name):
        return {c["type"]: c for c in (self.get(name).get("status") or {}).get("conditions") or ()}

    def delete_all(self):
        for name in self.names:
            try:
                self.admin.delete_certificate_signing_request(name)
            except ApiException as err:
                if err.status != 404:
                    raise


@pytest.fixture
def csrs(control_plane, tmp_path):
    made = Csrs(control_plane, tmp_path)
    yield made
    made.delete_all()


def repo_env(monkeypatch, plane):
    """The repository as a user runs it, on `plane`'s admin context."""
    monkeypatch.chdir(ROOT)
    for name in ENV_OUT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KUBECONFIG", plane.kubeconfig)
    monkeypatch.setenv("ADMIN_CTX", ADMIN_CONTEXT)
    return monkeypatch


@pytest.fixture
def env(control_plane, monkeypatch):
    return repo_env(monkeypatch, control_plane)


def run(capfd, *argv):
    return in_process(argv, capfd)


def address(plane, node):
    found = plane.get(f"/api/v1/nodes/{node}")["status"]["addresses"]
    return next(a["address"] for a in found if a["type"] == "InternalIP")


def mode(plane):
    with Cluster(plane.kubeconfig, ADMIN_CONTEXT) as cluster:
        return serving_certs.serving_mode(cluster)


def line_of(result, name):
    (line,) = [line for line in result.out.splitlines() if line.startswith(f"{name}: ")]
    return line


# --- the mode ---------------------------------------------------------------------------------

def test_stock_kubeadm_kubelets_serve_self_signed_certificates(control_plane):
    assert mode(control_plane) == ("self-signed", "kube-system/kubelet-config has no serverTLSBootstrap: true "
                                                  "(kubeadm's default)")


def test_serving_mode_says_why_it_cannot_tell():
    assert serving_certs.kubelet_configuration({"data": {"kubelet": "- a list"}}) == (
        None, "key 'kubelet' is not a KubeletConfiguration mapping")
    assert serving_certs.kubelet_configuration({"data": {}})[1] == "no data key 'kubelet'"
    text = "# kubeadm's\napiVersion: kubelet.config.k8s.io/v1beta1\nserverTLSBootstrap: false\nkind: X\n"
    assert serving_certs.with_bootstrap(text, yaml.safe_load(text)) == text.replace("false", "true")
    assert serving_certs.with_bootstrap("kind: X", {"kind": "X"}) == "kind: X\nserverTLSBootstrap: true\n"
    flow = "{kind: X, serverTLSBootstrap: false}"
    assert yaml.safe_load(serving_certs.with_bootstrap(flow, yaml.safe_load(flow))) == {
        "kind": "X", "serverTLSBootstrap": True}


# --- approval ---------------------------------------------------------------------------------

def test_a_nodes_csr_for_its_own_names_is_approved_and_then_signed(env, csrs, capfd, control_plane):
    ip = address(control_plane, "kube2")
    name = csrs.create(request_pem("system:node:kube2", dns=["kube2"], ips=[ip]), as_user="system:node:kube2")
    result = run(capfd, "kubelet-certs", "approve")
    assert result.code == 0, result.err
    assert line_of(result, name) == f"{name}: approved for node kube2 (kube2, {ip})"
    approved = csrs.conditions(name)["Approved"]
    assert (approved["status"], approved["reason"]) == ("True", "KubeletServingApprovedByToolkit")
    # the controller-manager's kubelet-serving signer takes it from there
    pem = base64.b64decode(wait_for(lambda: (csrs.get(name).get("status") or {}).get("certificate"),
                                    what="the signed certificate"))
    cert = x509.load_pem_x509_certificate(pem)
    assert cert.subject.rfc4514_string() == "CN=system:node:kube2,O=system:nodes"

    again = run(capfd, "kubelet-certs", "approve")  # approved: no longer pending
    assert name not in again.out


@pytest.fixture
def bootstrap_tokens(control_plane):
    """What `kubeadm init` grants bootstrap tokens (ClusterRoleBinding kubeadm:kubelet-bootstrap): the
    group BOOTSTRAPPERS may create CSRs; removed after the test."""
    rbac = client.RbacAuthorizationV1Api(api_client(control_plane))
    name = unique("kubelet-bootstrap")
    rbac.create_cluster_role_binding({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:node-bootstrapper"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": BOOTSTRAPPERS}]})
    yield
    rbac.delete_cluster_role_binding(name)


def test_csrs_for_more_than_the_requesting_nodes_own_names_stay_pending_with_the_reason(env, csrs, capfd,
                                                                                         control_plane,
                                                                                         bootstrap_tokens):
    ip2, ip3 = address(control_plane, "kube2"), address(control_plane, "kube3")
    other_ip = csrs.create(request_pem("system:node:kube2", dns=["kube2"], ips=[ip2, ip3]),
                           as_user="system:node:kube2")
    ghost = csrs.create(request_pem("system:node:ghost", dns=["ghost"]), as_user="system:node:ghost")
    by_admin = csrs.create(request_pem("system:node:kube2", dns=["kube2"], ips=[ip2]))
    by_user = csrs.create(request_pem("system:node:kube2", dns=["kube2"], ips=[ip2]),
                          as_user="system:bootstrap:abcdef", groups=(BOOTSTRAPPERS,))
    # a node asking for another node's CN: NodeRestriction refuses it already (review checks it too)
    with pytest.raises(ApiException, match="can only create a node CSR with CN=system:node:kube3"):
        csrs.create(request_pem("system:node:kube2", dns=["kube2"], ips=[ip2]), as_user="system:node:kube3")
    no_group = csrs.create(request_pem("system:node:kube2", dns=["kube2"]), as_user="system:node:kube2",
                           groups=(BOOTSTRAPPERS,))
    other_signer = csrs.create(request_pem("system:node:kube2", dns=["kube2"], ips=[ip2]),
                               as_user="system:node:kube2", signer="example.com/serving")
    good = csrs.create(request_pem("system:node:kube3", dns=["kube3"], ips=[ip3]), as_user="system:node:kube3")

    result = run(capfd, "kubelet-certs", "approve")
    assert result.code == 0, result.err
    assert line_of(result, other_ip) == (
        f"{other_ip}: left pending: requested by system:node:kube2: SAN IP address {ip3} is not one of "
        f"node kube2's names or addresses ({', '.join(sorted(['kube2', ip2]))})")
    assert line_of(result, ghost) == f"{ghost}: left pending: requested by system:node:ghost: node ghost does not exist"
    assert line_of(result, by_admin) == (
        f"{by_admin}: left pending: requested by kubernetes-admin: the requester is not a node "
        "(kubelets request as system:node:NAME)")
    assert line_of(result, by_user) == (
        f"{by_user}: left pending: requested by system:bootstrap:abcdef: the requester is not a node "
        "(kubelets request as system:node:NAME)")
    assert line_of(result, no_group) == (
        f"{no_group}: left pending: requested by system:node:kube2: the requester is not in the group system:nodes")
    assert line_of(result, good).startswith(f"{good}: approved for node kube3")
    assert other_signer not in result.out + result.err  # another signer's CSRs are not ours to judge
    assert result.out.splitlines()[-1] == "1 approved, 5 left pending"
    for name in (other_ip, ghost, by_admin, by_user, no_group, other_signer):
        assert csrs.conditions(name) == {}, name
    assert "Approved" in csrs.conditions(good)


def test_dry_run_approves_nothing(env, csrs, capfd, control_plane):
    ip = address(control_plane, "kube1")
    name = csrs.create(request_pem("system:node:kube1", dns=["kube1"], ips=[ip]), as_user="system:node:kube1")
    result = run(capfd, "kubelet-certs", "approve", "--dry-run")
    assert result.code == 0, result.err
    assert line_of(result, name) == f"{name}: approved for node kube1 (kube1, {ip}) (server dry run)"
    assert result.out.splitlines()[-1].startswith("1 approved (server dry run), ")
    assert csrs.conditions(name) == {}
    assert "certificate" not in (csrs.get(name).get("status") or {})


def test_review_refuses_subjects_sans_and_usages_a_kubelet_does_not_ask_for():
    nodes = {"kube2": {"kube2", "127.0.1.2"}}

    def verdict(pem, usages=("digital signature", "server auth"), user="system:node:kube2"):
        csr = {"metadata": {"name": "c"}, "spec": {
            "request": base64.b64encode(pem).decode(), "signerName": SIGNER, "usages": list(usages),
            "username": user, "groups": ["system:nodes", "system:authenticated"]}}
        return serving_certs.review(csr, nodes)

    assert verdict(request_pem("system:node:kube2", dns=["kube2"], ips=["127.0.1.2"])).approve
    assert verdict(request_pem("system:node:kube2", ips=["127.0.1.2"]),
                   ("digital signature", "key encipherment", "server auth")).approve
    assert verdict(request_pem("system:node:kube2", dns=["kube2"]), ("server auth", "client auth")).why.endswith(
        "usage client auth is not one of digital signature, key encipherment, server auth")
    assert verdict(request_pem("system:node:kube3", dns=["kube2"])).why.endswith(
        "subject CN system:node:kube3 is not system:node:kube2")
    assert verdict(request_pem("system:node:kube2", orgs=("system:masters",), dns=["kube2"])).why.endswith(
        "subject O system:masters is not system:nodes")
    assert verdict(request_pem("system:node:kube2", dns=["kube2"], emails=["a@b.c"])).why.endswith(
        "SAN <RFC822Name(value='a@b.c')> is neither a DNS name nor an IP address")
    assert verdict(request_pem("system:node:kube2")).why.endswith("no DNS name or IP address (no subjectAltName)")
    assert verdict(request_pem("system:node:kube2", dns=["kube2.evil.example"])).why.endswith(
        "SAN DNS name kube2.evil.example is not one of node kube2's names or addresses (127.0.1.2, kube2)")
    assert verdict(b"not a request").why.startswith("requested by system:node:kube2: its request is not a PEM")


def test_failures_are_one_line(env, capfd):
    result = run(capfd, "kubelet-certs", "enable", "ghost")
    assert result.code == 1 and result.out == ""
    assert result.err.startswith("error: node ghost is not in the cluster (context kubernetes-admin@kubernetes; "
                                 "it has ") and result.err.count("\n") == 1
    env.setenv("K8S_NODES", "")
    result = run(capfd, "kubelet-certs", "enable")
    assert (result.code, result.err) == (2, "error: no nodes: set K8S_NODES or name them "
                                            "(render.py kubelet-certs enable NODE…)\n")
    env.setenv("ADMIN_CTX", "nowhere")
    result = run(capfd, "kubelet-certs", "approve")
    assert result.code == 1 and result.err.count("\n") == 1 and "no context 'nowhere'" in result.err


# --- metrics-server -------------------------------------------------------------------------

def metrics_server_pod(plane):
    pods = plane.get("/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dmetrics-server")["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    return live[-1] if live else None


def ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (pod or {}).get("status", {}).get(
        "conditions") or ())


def test_metrics_server_on_self_signed_kubelets_becomes_ready_with_insecure_tls(env, capfd, control_plane):
    """auto on stock kubeadm: --kubelet-insecure-tls, and metrics-server turns ready (the session's
    metrics-server, if an earlier test installed it, is left as it was found)."""
    existed = control_plane.get("/apis/apps/v1/namespaces/kube-system/deployments/metrics-server", check=False)
    env.setenv("METRICS_SERVER_INSECURE_TLS", "auto")
    try:
        result = run(capfd, "apply", "metrics-server", "--wait", "--timeout", "60")
        assert result.code == 0, result.out + result.err
        pod = metrics_server_pod(control_plane)
        assert "--kubelet-insecure-tls" in pod["spec"]["containers"][0]["args"] and ready(pod)
    finally:
        if existed is None:
            run(capfd, "delete", "metrics-server", "--yes")


@pytest.fixture(scope="module")
def stock_plane(tmp_path_factory):
    """A control plane of this module's own: kube1 and kube2 serve self-signed certificates, each
    kubelet reads its config.yaml (plane.kubelet_config(node)) at start and on SIGHUP."""
    from tests.controlplane.harness import ControlPlane

    work = tmp_path_factory.mktemp("serving-certs")
    plane = ControlPlane(work / "plane", nodes=("kube1", "kube2"), kubelet_dir=work / "kubelet")
    plane.start()
    yield plane
    plane.stop()


def fake_systemctl(folder, plane):
    """A systemctl that logs its arguments and, for `restart kubelet`, restarts the simulated kubelets."""
    folder.mkdir()
    log = folder / "systemctl.log"
    script = folder / "systemctl"
    script.write_text(f"#!/bin/sh\necho \"$*\" >> {log}\n"
                      f"[ \"$*\" = \"restart kubelet\" ] && kill -HUP {plane.processes['nodes'].pid}\nexit 0\n")
    script.chmod(0o755)
    return log


def test_enable_the_kubeadm_way_then_metrics_server_verifies_the_kubelets(stock_plane, sshd, tmp_path, capfd,
                                                                            monkeypatch):
    plane = stock_plane
    env = repo_env(monkeypatch, plane)
    log = fake_systemctl(tmp_path / "bin", plane)
    for name, value in sshd.variables().items():
        env.setenv(name, value)
    env.setenv("REMOTE_SUDO", f"env PATH={tmp_path / 'bin'}:/usr/bin:/bin")
    config1, config2 = plane.kubelet_config("kube1"), plane.kubelet_config("kube2")
    env.setenv("KUBELET_CONFIG_PATH", config1)
    written = open(config1).read()
    assert "serverTLSBootstrap" not in written and mode(plane)[0] == "self-signed"

    dry = run(capfd, "kubelet-certs", "enable", "kube1", "--dry-run")
    assert dry.code == 0, dry.err
    assert dry.out.splitlines()[0].startswith("configmap/kubelet-config configured (server dry run)")
    assert dry.out.splitlines()[1].startswith(f"ssh -F {sshd.config} ")
    assert mode(plane)[0] == "self-signed" and open(config1).read() == written
    assert not log.exists() and sshd.accepted() == 0

    done = run(capfd, "kubelet-certs", "enable", "kube1", "--timeout", "60")
    assert done.code == 0, done.out + done.err
    lines = done.out.splitlines()
    assert lines[0] == "configmap/kubelet-config configured: new and upgraded nodes get serverTLSBootstrap: true"
    assert lines[1] == f"kube1: {config1}: serverTLSBootstrap: true, kubelet restarted"
    assert any(line.endswith(f"approved for node kube1 (kube1, {address(plane, 'kube1')})") for line in lines)
    assert lines[-1] == "every restarted kubelet (kube1) has its serving certificate approved"
    assert open(config1).read() == written + "serverTLSBootstrap: true\n"  # one line added, the rest kept
    assert stat.S_IMODE(os.stat(config1).st_mode) == 0o644
    assert log.read_text() == "restart kubelet\n"
    assert mode(plane) == ("bootstrap", "kube-system/kubelet-config has serverTLSBootstrap: true")

    again = run(capfd, "kubelet-certs", "enable", "kube1", "--timeout", "5")
    assert again.code == 0, again.err
    assert again.out.splitlines()[:2] == [
        "configmap/kubelet-config unchanged: new and upgraded nodes get serverTLSBootstrap: true",
        f"kube1: {config1} already has serverTLSBootstrap: true (kubelet not restarted)"]
    assert log.read_text() == "restart kubelet\n"

    # kube2 still serves its self-signed certificate: metrics-server verifying kubelets (auto,
    # now that kubelet-config says serverTLSBootstrap) never becomes ready, and the apply fails its wait
    env.setenv("METRICS_SERVER_INSECURE_TLS", "auto")
    failed = run(capfd, "apply", "metrics-server", "--wait", "--timeout", "15")
    assert failed.code != 0, failed.out
    assert "metrics-server: failed (timed out after 15s waiting for deployment.apps/metrics-server" in failed.out
    assert "Running, not ready" in failed.out
    pod = metrics_server_pod(plane)
    assert "--kubelet-insecure-tls" not in pod["spec"]["containers"][0]["args"] and not ready(pod)
    events = plane.get(f"/api/v1/namespaces/kube-system/events?fieldSelector=involvedObject.name%3D"
                       f"{pod['metadata']['name']}")["items"]
    assert any("failed to scrape node kube2: x509: certificate signed by unknown authority" in e["message"]
               for e in events)

    env.setenv("KUBELET_CONFIG_PATH", config2)
    done = run(capfd, "kubelet-certs", "enable", "kube2", "--timeout", "60")
    assert done.code == 0, done.out + done.err
    assert "serverTLSBootstrap: true" in open(config2).read()
    wait_for(lambda: ready(metrics_server_pod(plane)), timeout=30, what="metrics-server to turn ready")
    applied = run(capfd, "apply", "metrics-server", "--wait", "--timeout", "60")
    assert applied.code == 0, applied.out + applied.err

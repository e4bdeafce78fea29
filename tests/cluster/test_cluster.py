"""Cluster: what a broken kubeconfig, a silent server or the real apiserver refusing a
client gives, one line each."""

import time

import pytest

from k8s.cluster import connection as cluster
from k8s.errors import UserError

from ..controlplane.harness import kubeconfig_text
from ..controlplane.pki import Authority


def write_kubeconfig(path, url, ca_pem=b"", cert_pem=None, key_pem=None):
    """A kubeconfig whose one context, kubernetes-admin@kubernetes, names `url`; its user
    has the client certificate given, or else a token no server knows."""
    token = None if cert_pem else "not-a-token"
    path.write_text(kubeconfig_text(url, ca_pem, "kubernetes-admin", cert_pem, key_pem, token=token))
    return str(path)


def test_a_server_that_never_answers_times_out(fault_proxy, tmp_path, monkeypatch):
    """The fault proxy takes the connection, completes TLS and sits on every request for
    longer than the client's timeout: the client must give up, not wait."""
    monkeypatch.setattr(cluster, "REQUEST_TIMEOUT", (1, 1))
    fault_proxy.slow(delay=4)  # the answer would come, too late (the test fails if the client waits)
    start = time.monotonic()
    with cluster.Cluster(fault_proxy.kubeconfig(tmp_path / "kubeconfig")) as c:
        with pytest.raises(UserError, match=rf"^cannot reach the API server {fault_proxy.url} .*timed out"):
            c.version()
    assert time.monotonic() - start < 4


@pytest.mark.parametrize("text, message", [
    ("clusters: [\n", r"kubeconfig .*kubeconfig:2: invalid YAML: "),
    ("just text\n", r"kubeconfig .*kubeconfig: not a kubeconfig \(expected a mapping"),
])
def test_a_kubeconfig_that_is_not_one_is_named(tmp_path, text, message):
    path = tmp_path / "kubeconfig"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        cluster.Cluster(str(path))


def test_a_server_that_is_not_a_url_is_named(tmp_path):
    path = write_kubeconfig(tmp_path / "kubeconfig", "not a url")
    with pytest.raises(UserError, match=r"kubeconfig .*: the server of context .* is not a URL: 'not a url'$"):
        cluster.Cluster(path)


def test_a_server_whose_certificate_is_not_trusted_is_named(control_plane, tmp_path):
    """The real apiserver, with a kubeconfig trusting another cluster's CA."""
    other = Authority("another-cluster")
    cert, key = other.issue("kubernetes-admin", "system:masters")
    path = write_kubeconfig(tmp_path / "kubeconfig", control_plane.url, other.pem, cert, key)
    with cluster.Cluster(path) as c:
        with pytest.raises(UserError, match=rf"^cannot reach the API server {control_plane.url} \(context [^)]+\): "
                                            r"SSLError .*CERTIFICATE_VERIFY_FAILED.*\)$"):
            c.version()


def test_credentials_the_server_rejects_are_named(control_plane, tmp_path):
    """A bearer token the real apiserver never issued: 401, said in one line."""
    with open(control_plane.pki + "/ca.crt", "rb") as f:
        path = write_kubeconfig(tmp_path / "kubeconfig", control_plane.url, f.read())
    with cluster.Cluster(path) as c:
        with pytest.raises(UserError, match=rf"^the API server {control_plane.url} rejected the credentials of "
                                            r"context kubernetes-admin@kubernetes \(401 Unauthorized\): "):
            c.version()

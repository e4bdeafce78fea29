"""Cluster: what a broken kubeconfig or a silent server gives, one line each."""

import signal
import socket
import time

import pytest

from k8s import cluster
from k8s.errors import UserError

from .apiserver import write_kubeconfig


def test_a_server_that_never_answers_times_out(tmp_path, monkeypatch):
    monkeypatch.setattr(cluster, "REQUEST_TIMEOUT", (1, 1))

    def hung(signum, frame):  # without the timeout the request waits forever: fail, do not hang
        raise AssertionError("the request did not time out")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(30)
    try:
        with socket.socket() as silent:  # accepts connections (the kernel's backlog), never answers
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)
            url = f"http://127.0.0.1:{silent.getsockname()[1]}"
            start = time.monotonic()
            with cluster.Cluster(write_kubeconfig(tmp_path / "kubeconfig", url)) as c:
                with pytest.raises(UserError, match=rf"^cannot reach the API server {url} .*timed out"):
                    c.version()
        assert time.monotonic() - start < 10
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


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


def test_a_server_whose_certificate_is_not_trusted_is_named(tmp_path):
    import ssl
    import subprocess
    import threading

    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=x",
                    "-keyout", str(tmp_path / "key"), "-out", str(tmp_path / "cert")], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert", tmp_path / "key")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)

        def handshake_then_close():
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return  # closed: the test is over
                try:
                    context.wrap_socket(conn, server_side=True).close()
                except (ssl.SSLError, OSError):
                    pass

        threading.Thread(target=handshake_then_close, daemon=True).start()
        url = f"https://127.0.0.1:{listener.getsockname()[1]}"
        with cluster.Cluster(write_kubeconfig(tmp_path / "kubeconfig", url)) as c:
            with pytest.raises(UserError, match=rf"^cannot reach the API server {url} \(context [^)]+\): "
                                                r"SSLError .*CERTIFICATE_VERIFY_FAILED.*\)$"):
                c.version()

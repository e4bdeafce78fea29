"""The certificates a kubeadm control plane has, made fresh for one test control plane.

kubeadm's layout in small: one cluster CA signs the apiserver's serving certificate and
every client certificate (admin, controller-manager, scheduler), a front-proxy CA signs
the aggregator's client certificate, and an RSA pair signs service-account tokens.
"""

import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_FOR = datetime.timedelta(days=2)


def _name(common_name, groups=()):
    """CN is the user Kubernetes sees, each O one of its groups."""
    groups = [groups] if isinstance(groups, str) else list(groups)
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      *(x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups)])


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class Authority:
    """A CA that issues short-lived certificates, kept in memory until written."""

    @classmethod
    def load(cls, cert_path, key_path):
        """The CA write_pki wrote, read back by another process (the node agent)."""
        authority = cls.__new__(cls)
        with open(cert_path, "rb") as f:
            authority.cert = x509.load_pem_x509_certificate(f.read())
        with open(key_path, "rb") as f:
            authority.key = serialization.load_pem_private_key(f.read(), password=None)
        return authority

    def __init__(self, common_name):
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder()
                     .subject_name(_name(common_name)).issuer_name(_name(common_name))
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALID_FOR)
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                  content_commitment=False, key_encipherment=True,
                                                  data_encipherment=False, key_agreement=False,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .sign(self.key, hashes.SHA256()))

    @property
    def pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, common_name, groups=(), *, server_names=(), server_ips=()):
        """(certificate PEM, key PEM): a client certificate, or a serving one when names are given."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        usage = [ExtendedKeyUsageOID.SERVER_AUTH] if (server_names or server_ips) else [ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = (x509.CertificateBuilder()
                   .subject_name(_name(common_name, groups)).issuer_name(self.cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALID_FOR)
                   .add_extension(x509.ExtendedKeyUsage(usage), critical=False))
        if server_names or server_ips:
            sans = [x509.DNSName(n) for n in server_names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in server_ips]
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def write_private(path, data):
    """A file only its owner reads: keys and kubeconfigs."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    return path


def write_pki(directory, service_ip):
    """Every certificate and key of one control plane under `directory`; returns the CA."""
    ca = Authority("kubernetes")
    front_proxy = Authority("front-proxy-ca")
    files = {"ca.crt": ca.pem, "ca.key": _key_pem(ca.key), "front-proxy-ca.crt": front_proxy.pem}
    names = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
             "kubernetes.default.svc.cluster.local"]
    issued = {
        "apiserver": ca.issue("kube-apiserver", server_names=names, server_ips=["127.0.0.1", service_ip]),
        "admin": ca.issue("kubernetes-admin", "system:masters"),
        "controller-manager": ca.issue("system:kube-controller-manager"),
        "scheduler": ca.issue("system:kube-scheduler"),
        "apiserver-kubelet-client": ca.issue("kube-apiserver-kubelet-client", "kubeadm:cluster-admins"),
        "front-proxy-client": front_proxy.issue("front-proxy-client"),
    }
    for stem, (cert, key) in issued.items():
        files[f"{stem}.crt"], files[f"{stem}.key"] = cert, key
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    files["sa.key"] = _key_pem(sa_key)
    files["sa.pub"] = sa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    os.makedirs(directory, exist_ok=True)
    for name, data in files.items():
        write_private(os.path.join(directory, name), data)
    return ca

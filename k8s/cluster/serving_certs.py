"""Kubelet serving certificates: which mode the kubelets run in, and approving their CSRs.

kubeadm's kubelets serve a self-signed certificate unless their KubeletConfiguration
has `serverTLSBootstrap: true` (kubeadm keeps the cluster-wide one in the ConfigMap
kube-system/kubelet-config, key `kubelet`; each node has its own copy in
/var/lib/kubelet/config.yaml). With it a kubelet asks for a certificate the cluster
CA signs: a CertificateSigningRequest with signerName kubernetes.io/kubelet-serving,
which the controller-manager signs once it is approved, and which nothing approves
on its own. Only such certificates can be verified (metrics-server without
--kubelet-insecure-tls).

    serving_mode(cluster)       ("bootstrap" | "self-signed" | "unknown", why)
    pending(cluster)            the kubelet-serving CSRs neither approved nor denied
    review(csr, nodes)          a Verdict: approve it, or why not (no request made)
    approve(cluster, dry_run)   review every pending CSR, approve the good ones
    enable(cluster, dry_run)    serverTLSBootstrap: true in kube-system/kubelet-config

A CSR is approved only when all of these hold (RULES, in the order checked):
its requester is `system:node:NAME` in the group `system:nodes`; node NAME exists;
its PEM request is signed by its own key and names CN=system:node:NAME,
O=system:nodes; every SAN is a DNS name or an IP address among the node's own
names (its name and every status.addresses entry); its usages are among digital
signature, key encipherment and server auth. Any other CSR is left pending, with
one line saying why. A node can only ask for a certificate for itself, so a
compromised node cannot obtain one for another node's address.

Requests (approve): one LIST of CSRs (field selector spec.signerName), one LIST of
nodes when any is pending, one PUT of the /approval subresource per approved CSR.
"""

import base64
import ipaddress
import json
from dataclasses import dataclass

SIGNER = "kubernetes.io/kubelet-serving"
CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
NODES_PATH = "/api/v1/nodes"
KUBELET_CONFIG_PATH = "/api/v1/namespaces/kube-system/configmaps/kubelet-config"
KUBELET_CONFIG_KEY = "kubelet"
NODE_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
USAGES = ("digital signature", "key encipherment", "server auth")
REASON = "KubeletServingApprovedByToolkit"
MESSAGE = "the requesting node's own names and addresses only (k8s toolkit: render.py kubelet-certs approve)"


@dataclass
class Verdict:
    """What `review` decided about one CSR: `approve`, and `why` (one line either way)."""

    name: str
    node: str | None
    approve: bool
    why: str

    def line(self, dry_run=False):
        if self.approve:
            return f"{self.name}: approved for node {self.node} ({self.why})" + (
                " (server dry run)" if dry_run else "")
        return f"{self.name}: left pending: {self.why}"


# --- the mode -------------------------------------------------------------------------------

def serving_mode(cluster):
    """How the kubelets serve: ("bootstrap" | "self-signed" | "unknown", one-line reason).

    Read from kubeadm's ConfigMap kube-system/kubelet-config (one GET): "bootstrap"
    with `serverTLSBootstrap: true`, "self-signed" without (stock kubeadm),
    "unknown" when there is no such ConfigMap (not kubeadm), it may not be read,
    or its `kubelet` key is not a YAML mapping.

    Parameters:
        cluster: a k8s.cluster.Cluster.
    """
    from .kubeadm_config import get

    where = "kube-system/kubelet-config"
    answer = get(cluster, KUBELET_CONFIG_PATH)
    if answer.data is None:
        if answer.missing == "not found":
            return "unknown", f"no ConfigMap {where}: not a kubeadm cluster?"
        return "unknown", f"cannot read {where}: {answer.missing}"
    config, problem = kubelet_configuration(answer.data)
    if problem:
        return "unknown", f"{where}: {problem}"
    if config.get("serverTLSBootstrap") is True:
        return "bootstrap", f"{where} has serverTLSBootstrap: true"
    return "self-signed", f"{where} has no serverTLSBootstrap: true (kubeadm's default)"


def kubelet_configuration(config_map):
    """(KubeletConfiguration dict, None) of kubelet-config's data, or (None, what is wrong)."""
    import yaml

    text = (config_map.get("data") or {}).get(KUBELET_CONFIG_KEY)
    if text is None:
        return None, f"no data key {KUBELET_CONFIG_KEY!r}"
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError:
        return None, f"key {KUBELET_CONFIG_KEY!r} is not valid YAML"
    if not isinstance(config, dict):
        return None, f"key {KUBELET_CONFIG_KEY!r} is not a KubeletConfiguration mapping"
    return config, None


# --- the CSRs -------------------------------------------------------------------------------

def _decided(csr):
    types = {c.get("type") for c in (csr.get("status") or {}).get("conditions") or ()}
    return bool(types & {"Approved", "Denied"})


def pending(cluster):
    """The kubelet-serving CSRs (dicts) that are neither approved nor denied, by name."""
    response = cluster.call(lambda: cluster.dynamic.request(
        "get", CSR_PATH, serialize=False, field_selector=f"spec.signerName={SIGNER}"))
    items = json.loads(response.data).get("items") or []
    found = [c for c in items if (c.get("spec") or {}).get("signerName") == SIGNER and not _decided(c)]
    return sorted(found, key=lambda c: c["metadata"]["name"])


def node_names(cluster):
    """{node name: set of its own names and addresses} of every Node (one LIST)."""
    response = cluster.call(lambda: cluster.dynamic.request("get", NODES_PATH, serialize=False))
    found = {}
    for node in json.loads(response.data).get("items") or []:
        name = node["metadata"]["name"]
        addresses = {a.get("address") for a in (node.get("status") or {}).get("addresses") or ()}
        found[name] = {name, *(_normal(a) for a in addresses if a)}
    return found


def _normal(address):
    """An IP address in one spelling (::1 and 0:0::1 alike); other names unchanged."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address


def _request(csr):
    """The parsed PEM request of a CSR object, or (None, why)."""
    from cryptography import x509

    try:
        pem = base64.b64decode((csr.get("spec") or {}).get("request") or "", validate=True)
        return x509.load_pem_x509_csr(pem), None
    except ValueError as err:
        return None, f"its request is not a PEM certificate request ({str(err).splitlines()[0] if str(err) else 'unreadable'})"


def review(csr, nodes):
    """A Verdict on one kubelet-serving CSR (a dict) against `nodes` (node_names' answer)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    name = csr["metadata"]["name"]
    spec = csr.get("spec") or {}
    username = spec.get("username") or "?"

    def refuse(why, node=None):
        return Verdict(name, node, False, f"requested by {username}: {why}")

    if spec.get("signerName") != SIGNER:
        return refuse(f"signer {spec.get('signerName')!r} is not {SIGNER}")
    if not username.startswith(NODE_PREFIX) or username == NODE_PREFIX:
        return refuse(f"the requester is not a node (kubelets request as {NODE_PREFIX}NAME)")
    node = username[len(NODE_PREFIX):]
    if NODES_GROUP not in (spec.get("groups") or ()):
        return refuse(f"the requester is not in the group {NODES_GROUP}", node)
    if node not in nodes:
        return refuse(f"node {node} does not exist", node)
    request, problem = _request(csr)
    if problem:
        return refuse(problem, node)
    if not request.is_signature_valid:
        return refuse("its request is not signed by its own key", node)
    common = [a.value for a in request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = [a.value for a in request.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    if common != [username]:
        return refuse(f"subject CN {', '.join(common) or '(none)'} is not {username}", node)
    if orgs != [NODES_GROUP]:
        return refuse(f"subject O {', '.join(orgs) or '(none)'} is not {NODES_GROUP}", node)
    others = [a for a in request.subject if a.oid not in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME)]
    if others:
        return refuse(f"the subject has more than CN and O ({others[0].rfc4514_string()})", node)
    try:
        sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return refuse("the request names no DNS name or IP address (no subjectAltName)", node)
    shown, own = [], nodes[node]
    for san in sans:
        if isinstance(san, x509.DNSName):
            what, value = "DNS name", san.value
        elif isinstance(san, x509.IPAddress):
            what, value = "IP address", str(san.value)
        else:
            return refuse(f"SAN {san} is neither a DNS name nor an IP address", node)
        if _normal(value) not in own:
            return refuse(f"SAN {what} {value} is not one of node {node}'s names or addresses "
                          f"({', '.join(sorted(own))})", node)
        shown.append(value)
    if not shown:
        return refuse("the request names no DNS name or IP address", node)
    usages = spec.get("usages") or []
    extra = [u for u in usages if u not in USAGES]
    if extra:
        return refuse(f"usage {', '.join(extra)} is not one of {', '.join(USAGES)}", node)
    return Verdict(name, node, True, ", ".join(shown))


def enable(cluster, dry_run=False):
    """Set `serverTLSBootstrap: true` in kube-system/kubelet-config: "configured" or "unchanged".

    The ConfigMap is what `kubeadm join` and `kubeadm upgrade node` write to a node's
    /var/lib/kubelet/config.yaml: new and upgraded nodes get the setting, existing
    kubelets do not read it (k8s.nodes.kubelet_config edits theirs). One line of the
    YAML text changes, so comments and order stay; a merge patch carrying the
    resourceVersion read, so a concurrent change is a conflict, not lost.
    """
    from .connection import ApiError
    from ..errors import UserError

    try:
        config_map = json.loads(cluster.call(lambda: cluster.dynamic.request(
            "get", KUBELET_CONFIG_PATH, serialize=False)).data)
    except ApiError as err:
        if err.status == 404:
            raise UserError("no ConfigMap kube-system/kubelet-config: not a kubeadm cluster; set "
                            "serverTLSBootstrap: true in each kubelet's configuration yourself") from None
        raise
    config, problem = kubelet_configuration(config_map)
    if problem:
        raise UserError(f"kube-system/kubelet-config: {problem}")
    if config.get("serverTLSBootstrap") is True:
        return "unchanged"
    text = with_bootstrap(config_map["data"][KUBELET_CONFIG_KEY], config)
    patch = {"metadata": {"resourceVersion": config_map["metadata"]["resourceVersion"]},
             "data": {KUBELET_CONFIG_KEY: text}}
    params = {"dry_run": "All"} if dry_run else {}
    cluster.call(lambda: cluster.dynamic.request("patch", KUBELET_CONFIG_PATH, body=patch, serialize=False,
                                                 content_type="application/merge-patch+json", **params),
                 obj="ConfigMap/kubelet-config")
    return "configured"


def with_bootstrap(text, config):
    """The KubeletConfiguration YAML `text` with `serverTLSBootstrap: true`: its top-level line
    replaced or appended; YAML that is not one key a line (flow style) is dumped again."""
    import re

    import yaml

    line = "serverTLSBootstrap: true"
    pattern = re.compile(r"^serverTLSBootstrap[ \t]*:.*$", re.MULTILINE)
    if pattern.search(text):
        edited = pattern.sub(line, text, count=1)
    else:
        edited = text + ("" if text.endswith("\n") or not text else "\n") + line + "\n"
    try:
        ok = (yaml.safe_load(edited) or {}).get("serverTLSBootstrap") is True
    except (yaml.YAMLError, AttributeError):
        ok = False
    return edited if ok else yaml.safe_dump({**config, "serverTLSBootstrap": True}, sort_keys=False)


def approve(cluster, dry_run=False, say=None):
    """Review every pending kubelet-serving CSR and approve the good ones; returns the Verdicts.

    Parameters:
        cluster: a k8s.cluster.Cluster allowed to list CSRs and nodes and to update
            certificatesigningrequests/approval for signer kubernetes.io/kubelet-serving.
        dry_run: the server's dry run: each approval is sent with dryRun=All, nothing changes.
        say: called with each Verdict's line as it is decided (None: silent).
    """
    csrs = pending(cluster)
    nodes = node_names(cluster) if csrs else {}
    verdicts = []
    for csr in csrs:
        verdict = review(csr, nodes)
        if verdict.approve:
            _approve(cluster, csr, dry_run)
        verdicts.append(verdict)
        if say:
            say(verdict.line(dry_run))
    return verdicts


def _approve(cluster, csr, dry_run):
    """PUT the CSR to its /approval subresource with an Approved condition added."""
    name = csr["metadata"]["name"]
    csr = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", **csr}
    status = csr.setdefault("status", {})
    status["conditions"] = [*(status.get("conditions") or ()), {
        "type": "Approved", "status": "True", "reason": REASON, "message": MESSAGE}]
    params = {"dry_run": "All"} if dry_run else {}
    cluster.call(lambda: cluster.dynamic.request("put", f"{CSR_PATH}/{name}/approval", body=csr,
                                                 serialize=False, **params),
                 obj=f"CertificateSigningRequest/{name}")

"""What the simulated kubelet plays for images whose work other objects wait on.

No container runs on a simulated node, but a few shipped images do something the
rest of an install depends on, so the node agent does it in their place:
- kube-webhook-certgen `create` stores a serving certificate in a Secret (keys `ca`,
  `cert`, `key`), signed here by the control plane's CA; `patch` waits for the
  webhook configuration it names and sets that CA as its caBundle (the Job would
  restart until then), and its failurePolicy.
- metrics-server and the ingress-nginx controller serve, on their pod's IP, the
  aggregated API and the admission webhook their Service fronts (`serves`).
- metrics-server verifies the kubelets' serving certificates unless it runs with
  --kubelet-insecure-tls: its /readyz fails, and the pod stays not Ready, while a
  node serves kubeadm's self-signed certificate or has none yet
  (`kubelet_tls_problem`).
"""

import base64
import time

from kubernetes import client
from kubernetes.client.rest import ApiException

from .pki import Authority

CERTGEN_IMAGE = "/kube-webhook-certgen:"
PATCH_WAITS = 60  # seconds the patch step looks for its webhook configuration
# image fragment -> (Service the pod's backend answers for, its container port's name or None: the first)
SERVING_IMAGES = {
    "/metrics-server/metrics-server:": ("metrics-server", None),
    "/ingress-nginx/controller:": ("ingress-nginx-controller-admission", "webhook"),
}


METRICS_SERVER_IMAGE = "/metrics-server/metrics-server:"
INSECURE_TLS = "--kubelet-insecure-tls"


def kubelet_tls_problem(pod, serving):
    """Why a metrics-server pod's scrapes fail TLS verification (its x509 error), or None.

    Parameters:
        pod: the V1Pod.
        serving: {node: "self-signed" | "waiting for …" | "signed"} of every node (nodes.Nodes.serving).
    """
    for container in pod.spec.containers:
        if METRICS_SERVER_IMAGE not in container.image:
            continue
        args = [*(container.command or ()), *(container.args or ())]
        if any(a == INSECURE_TLS or a == f"{INSECURE_TLS}=true" for a in args):
            return None
        for node, state in sorted(serving.items()):
            if state == "self-signed":
                return (f"failed to scrape node {node}: x509: certificate signed by unknown authority "
                        f"(kubelet's self-signed serving certificate)")
            if state != "signed":
                return f"failed to scrape node {node}: remote error: tls: internal error (kubelet {state})"
    return None


def serves(pod):
    """(service DNS name, port) a pod of a serving image answers on, or None."""
    for container in pod.spec.containers:
        for fragment, (service, port_name) in SERVING_IMAGES.items():
            if fragment in container.image:
                ports = [p for c in pod.spec.containers for p in c.ports or () if port_name in (None, p.name)]
                if ports:
                    return f"{service}.{pod.metadata.namespace}.svc", ports[0].container_port
    return None


def run_job_image(api, authority, pod):
    """Do what a Job pod's image would; an error message if it failed, else None."""
    for container in pod.spec.containers:
        if CERTGEN_IMAGE in container.image:
            return _certgen(api, authority, pod.metadata.namespace, container.args or [])
    return None


def _flags(args, namespace):
    flags = {}
    for arg in args[1:]:
        name, _, value = arg.lstrip("-").partition("=")
        flags[name] = value.replace("$(POD_NAMESPACE)", namespace)
    return flags


def _certgen(api, authority, namespace, args):
    core = client.CoreV1Api(api)
    flags = _flags(args, namespace)
    secret_namespace = flags.get("namespace") or namespace
    if args and args[0] == "create":
        authority = authority or Authority("kube-webhook-certgen")
        hosts = [h for h in flags.get("host", "").split(",") if h]
        cert, key = authority.issue(hosts[0] if hosts else "webhook", server_names=hosts)
        data = {"ca": authority.pem, "cert": cert, "key": key}
        try:
            core.create_namespaced_secret(secret_namespace, {"metadata": {"name": flags["secret-name"]},
                                                             "data": {k: _b64(v) for k, v in data.items()}})
        except ApiException as err:
            if err.status != 409:  # an earlier run's certificate is kept, as certgen keeps it
                return f"create secret: {err.status}"
        return None
    if args and args[0] == "patch":
        admission = client.AdmissionregistrationV1Api(api)
        deadline = time.monotonic() + PATCH_WAITS
        while True:
            try:
                secret = core.read_namespaced_secret(flags["secret-name"], secret_namespace)
                webhook = admission.read_validating_webhook_configuration(flags["webhook-name"])
                break
            except ApiException as err:
                if err.status != 404 or time.monotonic() > deadline:
                    return f"patch: {err.status} {err.reason}"
                time.sleep(0.5)
        for hook in webhook.webhooks:
            hook.client_config.ca_bundle = secret.data["ca"]
            hook.failure_policy = flags.get("patch-failure-policy") or hook.failure_policy
        try:
            admission.replace_validating_webhook_configuration(flags["webhook-name"], webhook)
        except ApiException as err:
            return f"patch: {err.status} {err.reason}"
        return None
    return f"kube-webhook-certgen: unknown command {args[:1]}"


def _b64(value):
    return base64.b64encode(value if isinstance(value, bytes) else value.encode()).decode()

"""Simulated nodes for the test control plane: what kubelets would tell the apiserver.

    python -m tests.controlplane.nodes --kubeconfig admin.conf --node kube1 --node kube2 \\
        [--control-plane kube1] [--taint-control-plane] [--pod-delay 0.2] [--ready-file PATH] \\
        [--server-tls-bootstrap kube2] [--kubelet-config kube2=PATH] [--pki DIR]

Registers each node Ready with capacity and kubeadm's labels, renews its Lease (so the
node lifecycle controller keeps it Ready), and plays its kubelet for pods: a pod
scheduled to it turns Running and Ready after --pod-delay seconds (a Job's pod
Succeeded instead), and a pod being deleted is removed, as a kubelet does once its
containers stopped. No container runs: nothing here pulls an image. The one exception:
given --netns (kube-apiserver's network namespace) and --pki, a pod annotated
`controlplane.test/serve: <service>.<namespace>.svc` gets an admission webhook backend
(backend.py) on its IP and first container port in that namespace while it is Ready; so
does a metrics-server pod (by its image), whose APIService then turns Available.

As a kubelet, a pod that mounts a Secret or ConfigMap that does not exist (and is not
optional) stays Pending in ContainerCreating until it does. Annotations a test sets on
a pod template play what the pod's containers would do:
- `controlplane.test/delay: SECONDS`: start after this long instead of --pod-delay.
- `controlplane.test/fail: REASON`: the container exits 1 (a Job's pod Failed, any
  other pod Running but never Ready, its container waiting in CrashLoopBackOff).
- `controlplane.test/creates-secret: NAME`: a Job's pod creates the Secret NAME
  (key `ca`) in its namespace before it completes, as a certificate-generating Job does.
A few shipped images' work is played by their image instead (images.py).

Kubelet serving certificates, as kubeadm's kubelets have them: a node serves a
self-signed certificate (stock kubeadm), unless it is named with
--server-tls-bootstrap, or its --kubelet-config file (its /var/lib/kubelet/config.yaml,
written from kube-system/kubelet-config when missing, as `kubeadm join` does) says
`serverTLSBootstrap: true` when its kubelet starts: at the agent's start, and on
SIGHUP, which plays `systemctl restart kubelet` (every node's file is read again;
one that no longer says it serves self-signed again). Such a node,
authenticated as its kubelet is (a client certificate CN=system:node:NAME,
O=system:nodes from the --pki CA, what kubeadm join's TLS bootstrap leaves it),
sends a CertificateSigningRequest for signer kubernetes.io/kubelet-serving with
its name and InternalIP as SANs and waits for the certificate, which the
controller-manager signs once someone approves the CSR; a denied or failed one is
followed by a new CSR a few seconds later. A metrics-server pod verifies kubelets
unless it runs with --kubelet-insecure-tls: until every node serves a certificate
the cluster CA signed for its address, it runs but stays not Ready and serves
nothing (images.kubelet_tls_problem), as the real one does with x509 errors.
"""

import argparse
import base64
import datetime
import signal
import subprocess
import ipaddress
import itertools
import os
import sys
import threading
import time

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from . import images

KUBELET_VERSION = "v1.37.2"
LEASE_SECONDS = 40
RENEW_EVERY = 10
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
SERVE_ANNOTATION = "controlplane.test/serve"
DELAY_ANNOTATION = "controlplane.test/delay"
FAIL_ANNOTATION = "controlplane.test/fail"
CREATES_SECRET_ANNOTATION = "controlplane.test/creates-secret"
MOUNT_RETRY = 0.5  # how often a pod held by a missing Secret or ConfigMap looks again
READY_RETRY = 0.5  # how often a running pod that is not ready (images.kubelet_tls_problem) looks again
SERVING_SIGNER = "kubernetes.io/kubelet-serving"
CSR_POLL = 0.5  # how often a bootstrapping kubelet looks at its CSR
CSR_RETRY = 5  # seconds before a kubelet whose CSR was denied (or failed) sends a new one
CAPACITY = {"cpu": "8", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"}


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def stamp(moment=None):
    return (moment or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_ip(index):
    """Loopback addresses: whatever dials a node stays on this machine."""
    return f"127.0.1.{index + 1}"


class Nodes:
    def __init__(self, api, names, control_plane=(), taint=False, pod_delay=0.2, netns=None, pki=None,
                 bootstrap=(), kubelet_configs=None):
        self.core = client.CoreV1Api(api)
        self.leases = client.CoordinationV1Api(api)
        self.names = list(names)
        self.control_plane = set(control_plane)
        self.taint = taint
        self.pod_delay = pod_delay
        self.ips = {name: node_ip(i) for i, name in enumerate(self.names)}
        self.pod_ips = {}
        self.started = set()  # pod uids handled (started or finished)
        self.lock = threading.Lock()
        self.netns, self.pki = netns, pki
        self.backends = {}  # pod uid -> (process, pod IP)
        # node -> its serving certificate: "self-signed", "waiting for CSR <name>", "signed"
        self.serving = {name: "waiting for its first CSR" if name in bootstrap else "self-signed"
                        for name in self.names}
        self.bootstrap = list(bootstrap)
        self.kubelet_configs = dict(kubelet_configs or {})  # node -> its config.yaml
        self.bootstrapping = set()  # nodes whose kubelet is after a serving certificate

    # -- nodes ----------------------------------------------------------------------------------

    def register(self):
        for name in self.names:
            labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                      "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64"}
            taints = []
            if name in self.control_plane:
                labels[CONTROL_PLANE_LABEL] = ""
                labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
                if self.taint:
                    taints.append({"key": CONTROL_PLANE_LABEL, "effect": "NoSchedule"})
            body = {"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints},
                    "status": self.status(name)}  # Ready from the start, as a kubelet registers
            try:
                self.core.create_node(body)
            except ApiException as err:
                if err.status != 409:
                    raise
            self.core.patch_node_status(name, {"status": self.status(name)})
        self.renew_leases()

    def wait_schedulable(self, timeout=60):
        """Until the node lifecycle controller has lifted its not-ready taint from every node."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = [n for n in self.names
                       if any(t.key == "node.kubernetes.io/not-ready" for t in self.core.read_node(n).spec.taints or ())]
            if not pending:
                return
            time.sleep(0.2)
        raise SystemExit(f"nodes still tainted not-ready after {timeout}s: {', '.join(pending)}")

    def status(self, name):
        beat = stamp()
        conditions = [{"type": t, "status": "False", "reason": f"KubeletHas{r}", "lastHeartbeatTime": beat,
                       "lastTransitionTime": beat}
                      for t, r in (("MemoryPressure", "SufficientMemory"), ("DiskPressure", "NoDiskPressure"),
                                   ("PIDPressure", "SufficientPID"))]
        conditions.append({"type": "Ready", "status": "True", "reason": "KubeletReady",
                           "message": "kubelet is posting ready status (simulated)",
                           "lastHeartbeatTime": beat, "lastTransitionTime": beat})
        status = {"capacity": CAPACITY, "allocatable": CAPACITY, "conditions": conditions,
                  "addresses": [{"type": "InternalIP", "address": self.ips[name]},
                                {"type": "Hostname", "address": name}],
                  "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                  "nodeInfo": {"kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": "",
                               "operatingSystem": "linux", "architecture": "amd64",
                               "containerRuntimeVersion": "containerd://2.2.0", "osImage": "Debian GNU/Linux 13",
                               "kernelVersion": "6.12.0", "machineID": "", "systemUUID": "", "bootID": ""}}
        return status

    def renew_leases(self):
        renew = now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for name in self.names:
            body = {"metadata": {"name": name, "namespace": "kube-node-lease"},
                    "spec": {"holderIdentity": name, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": renew}}
            try:  # a patch: an update would need the Lease's resourceVersion
                self.leases.patch_namespaced_lease(name, "kube-node-lease", {"spec": body["spec"]})
            except ApiException as err:
                if err.status != 404:
                    raise
                self.leases.create_namespaced_lease("kube-node-lease", body)

    def heartbeat(self, stop):
        while not stop.wait(RENEW_EVERY):
            try:
                self.renew_leases()
            except Exception as err:  # the apiserver may be restarting; try again next beat
                print(f"lease renewal failed: {err}", file=sys.stderr, flush=True)

    # -- pods -----------------------------------------------------------------------------------

    def pod_ip(self, pod):
        node = pod.spec.node_name
        if pod.spec.host_network:
            return self.ips[node]
        with self.lock:
            if node not in self.pod_ips:
                cidr = self.core.read_node(node).spec.pod_cidr or "10.244.0.0/24"
                self.pod_ips[node] = (str(ip) for ip in itertools.islice(ipaddress.ip_network(cidr).hosts(), 1, None))
            return next(self.pod_ips[node])

    def handle(self, pod):
        meta, spec = pod.metadata, pod.spec
        if not spec.node_name or spec.node_name not in self.ips:
            return
        if meta.deletion_timestamp:
            self.remove(pod)
        elif meta.uid not in self.started and (pod.status.phase in (None, "Pending")):
            self.started.add(meta.uid)
            delay = float((meta.annotations or {}).get(DELAY_ANNOTATION, self.pod_delay))
            threading.Timer(delay, self.start_when_mounted, (pod,)).start()

    def missing_mount(self, pod):
        """The first Secret or ConfigMap a pod mounts that does not exist, as kubelet words it."""
        for volume in pod.spec.volumes or ():
            if volume.secret and not volume.secret.optional:
                kind, name, read = "secret", volume.secret.secret_name, self.core.read_namespaced_secret
            elif volume.config_map and not volume.config_map.optional:
                kind, name, read = "configmap", volume.config_map.name, self.core.read_namespaced_config_map
            else:
                continue
            try:
                read(name, pod.metadata.namespace)
            except ApiException as err:
                if err.status == 404:
                    return f'{kind} "{name}" not found'
        return None

    def start_when_mounted(self, pod):
        missing = self.missing_mount(pod)
        if missing is None:
            return self.start_pod(pod)
        meta = pod.metadata
        waiting = [{"name": c.name, "image": c.image, "imageID": "", "ready": False, "started": False,
                    "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}
                   for c in pod.spec.containers]
        try:
            self.core.patch_namespaced_pod_status(meta.name, meta.namespace, {"status": {
                "phase": "Pending", "containerStatuses": waiting,
                "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp()}]}})
            # what `kubectl describe` shows: kubelet's FailedMount event
            self.pod_event(pod, "FailedMount", f"MountVolume.SetUp failed: {missing}")
        except ApiException as err:
            if err.status == 404:
                return  # deleted meanwhile
        threading.Timer(MOUNT_RETRY, self.retry_mount, (meta.namespace, meta.name, meta.uid)).start()

    def retry_mount(self, namespace, name, uid):
        try:
            pod = self.core.read_namespaced_pod(name, namespace)
        except ApiException:
            return
        if pod.metadata.uid == uid and not pod.metadata.deletion_timestamp:
            self.start_when_mounted(pod)

    def remove(self, pod):
        self.stop_backend(pod.metadata.uid)
        try:
            self.core.delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace, grace_period_seconds=0,
                                            body=client.V1DeleteOptions(
                                                grace_period_seconds=0,
                                                preconditions=client.V1Preconditions(uid=pod.metadata.uid)))
        except ApiException as err:
            if err.status not in (404, 409):
                print(f"delete {pod.metadata.namespace}/{pod.metadata.name}: {err.status}", file=sys.stderr)

    def start_pod(self, pod, ip=None):
        """Play the pod's start; `ip`: the address it already has (when it turns ready later)."""
        meta, spec = pod.metadata, pod.spec
        annotations = meta.annotations or {}
        job = any(ref.kind == "Job" for ref in meta.owner_references or ())
        fail = annotations.get(FAIL_ANNOTATION)
        started = stamp()
        again, ip = ip is not None, ip or self.pod_ip(pod)
        if job and not fail:
            fail = images.run_job_image(self.core.api_client, self.authority(), pod)
        if job and fail:
            state = {"terminated": {"exitCode": 1, "reason": "Error", "message": fail,
                                    "startedAt": started, "finishedAt": stamp()}}
        elif job:
            if annotations.get(CREATES_SECRET_ANNOTATION):
                self.create_secret(meta.namespace, annotations[CREATES_SECRET_ANNOTATION])
            state = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": stamp()}}
        elif fail:
            state = {"waiting": {"reason": "CrashLoopBackOff", "message": fail}}
        else:
            state = {"running": {"startedAt": started}}
        live = not job and not fail
        unready = images.kubelet_tls_problem(pod, self.serving) if live else None
        ready = "True" if live and not unready else "False"
        statuses = [{"name": c.name, "image": c.image, "imageID": "", "containerID": f"containerd://{meta.uid}-{c.name}",
                     "ready": ready == "True", "started": live, "restartCount": 1 if fail and not job else 0, "state": state}
                    for c in spec.containers]
        init = [{"name": c.name, "image": c.image, "imageID": "", "containerID": f"containerd://{meta.uid}-{c.name}",
                 "ready": True, "started": False, "restartCount": 0,
                 "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started,
                                          "finishedAt": started}}}
                for c in spec.init_containers or ()]
        conditions = [{"type": t, "status": s, "lastTransitionTime": started}
                      for t, s in (("PodReadyToStartContainers", "True"), ("Initialized", "True"),
                                   ("ContainersReady", ready), ("Ready", ready), ("PodScheduled", "True"))]
        phase = ("Failed" if fail else "Succeeded") if job else "Running"
        status = {"phase": phase, "conditions": conditions,
                  "hostIP": self.ips[spec.node_name], "hostIPs": [{"ip": self.ips[spec.node_name]}],
                  "podIP": ip, "podIPs": [{"ip": ip}], "startTime": started,
                  "containerStatuses": statuses, "initContainerStatuses": init}
        serves = (annotations[SERVE_ANNOTATION], None) if annotations.get(SERVE_ANNOTATION) else images.serves(pod)
        if serves and ready == "True" and self.netns and not spec.host_network:
            self.start_backend(pod, ip, *serves)  # listening before the pod reads Ready
        try:
            self.core.patch_namespaced_pod_status(meta.name, meta.namespace, {"status": status})
            if unready and not again:  # what `kubectl describe pod` shows: kubelet's probe failing
                self.pod_event(pod, "Unhealthy", f"Readiness probe failed: HTTP probe failed with statuscode: 500 "
                                                 f"({unready})")
        except ApiException as err:
            if err.status != 404:
                print(f"status of {meta.namespace}/{meta.name}: {err.status} {err.body}", file=sys.stderr, flush=True)
            return
        if unready:
            threading.Timer(READY_RETRY, self.recheck_ready, (meta.namespace, meta.name, meta.uid, ip)).start()

    def recheck_ready(self, namespace, name, uid, ip):
        """A running pod that was not ready: ready (and serving) once its problem is gone."""
        try:
            pod = self.core.read_namespaced_pod(name, namespace)
        except ApiException:
            return
        if pod.metadata.uid != uid or pod.metadata.deletion_timestamp:
            return
        if images.kubelet_tls_problem(pod, self.serving):
            threading.Timer(READY_RETRY, self.recheck_ready, (namespace, name, uid, ip)).start()
        else:
            self.start_pod(pod, ip)

    def pod_event(self, pod, reason, message):
        meta = pod.metadata
        self.core.create_namespaced_event(meta.namespace, {
            "metadata": {"generateName": f"{meta.name}."},
            "involvedObject": {"kind": "Pod", "name": meta.name, "namespace": meta.namespace, "uid": meta.uid},
            "reason": reason, "type": "Warning", "source": {"component": "kubelet"}, "message": message})

    def create_secret(self, namespace, name):
        try:
            self.core.create_namespaced_secret(namespace, {"metadata": {"name": name},
                                                           "stringData": {"ca": "generated by the Job"}})
        except ApiException as err:
            if err.status != 409:
                print(f"secret {namespace}/{name}: {err.status}", file=sys.stderr, flush=True)

    # -- kubelet serving certificates -----------------------------------------------------------

    def start_kubelets(self, stop):
        """What each kubelet does as it (re)starts: read its config.yaml, and with serverTLSBootstrap
        ask for a serving certificate (one thread a node), without it serve self-signed."""
        import yaml

        wanted = set(self.bootstrap)
        for name, path in self.kubelet_configs.items():
            if not os.path.exists(path):
                self.write_kubelet_config(path)
            with open(path) as f:
                config = yaml.safe_load(f) or {}
            if config.get("serverTLSBootstrap") is True:
                wanted.add(name)
            elif name not in self.bootstrap:
                self.serving[name] = "self-signed"
        with self.lock:
            for name in sorted(wanted - self.bootstrapping):
                if self.serving[name] == "self-signed":
                    self.serving[name] = "waiting for its first CSR"
                self.bootstrapping.add(name)
                threading.Thread(target=self.bootstrap_serving, args=(name, stop), daemon=True).start()

    def write_kubelet_config(self, path):
        """The node's config.yaml as `kubeadm join` writes it: kube-system/kubelet-config's `kubelet`."""
        try:
            text = self.core.read_namespaced_config_map("kubelet-config", "kube-system").data["kubelet"]
        except (ApiException, KeyError, TypeError):
            text = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    def kubelet_client(self, name):
        """An API client authenticated as node `name`'s kubelet (CN=system:node:NAME, O=system:nodes)."""
        from .pki import write_private

        cert, key = self.authority().issue(f"system:node:{name}", ["system:nodes"])
        folder = os.path.join(self.pki, "kubelets")
        os.makedirs(folder, exist_ok=True)
        configuration = client.Configuration()
        configuration.host = self.core.api_client.configuration.host
        configuration.ssl_ca_cert = os.path.join(self.pki, "ca.crt")
        configuration.cert_file = write_private(os.path.join(folder, f"{name}-client.crt"), cert)
        configuration.key_file = write_private(os.path.join(folder, f"{name}-client.key"), key)
        return client.ApiClient(configuration)

    def serving_request(self, name):
        """The PEM request kubelet sends: its own key, CN=system:node:NAME, O=system:nodes, its
        hostname and InternalIP as SANs."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                             x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{name}")])
        sans = x509.SubjectAlternativeName([x509.DNSName(name),
                                            x509.IPAddress(ipaddress.ip_address(self.ips[name]))])
        request = (x509.CertificateSigningRequestBuilder().subject_name(subject)
                   .add_extension(sans, critical=False).sign(key, hashes.SHA256()))
        return request.public_bytes(serialization.Encoding.PEM)

    def bootstrap_serving(self, name, stop):
        """Node `name`'s kubelet with serverTLSBootstrap: a CSR, then wait for its certificate."""
        certificates = client.CertificatesV1Api(self.kubelet_client(name))
        while not stop.is_set():
            try:
                csr = certificates.create_certificate_signing_request({
                    "metadata": {"generateName": "csr-"},
                    "spec": {"request": base64.b64encode(self.serving_request(name)).decode(),
                             "signerName": SERVING_SIGNER, "usages": ["digital signature", "server auth"]}})
            except Exception as err:  # the apiserver may be restarting: try again
                print(f"{name}: kubelet-serving CSR: {err}", file=sys.stderr, flush=True)
                stop.wait(CSR_RETRY)
                continue
            self.serving[name] = f"waiting for CSR {csr.metadata.name}"
            outcome = self.await_certificate(certificates, name, csr.metadata.name, stop)
            if outcome == "signed":
                self.serving[name] = "signed"
                with self.lock:
                    self.bootstrapping.discard(name)
                return
            print(f"{name}: CSR {csr.metadata.name} {outcome}: a new one in {CSR_RETRY}s", file=sys.stderr, flush=True)
            stop.wait(CSR_RETRY)

    def await_certificate(self, certificates, name, csr_name, stop):
        """"signed" once the CSR carries a certificate of the cluster CA for the node's address, else
        what went wrong (denied, failed, a certificate not for it)."""
        while not stop.wait(CSR_POLL):
            try:
                csr = certificates.read_certificate_signing_request(csr_name)
            except ApiException as err:
                if err.status == 404:
                    return "was deleted"
                continue
            conditions = {c.type: c for c in (csr.status and csr.status.conditions) or ()}
            for kind in ("Denied", "Failed"):
                if kind in conditions:
                    return f"{kind.lower()} ({conditions[kind].reason})"
            if csr.status and csr.status.certificate:
                problem = self.certificate_problem(name, base64.b64decode(csr.status.certificate))
                return problem or "signed"
        return "abandoned"

    def certificate_problem(self, name, pem):
        """Why a client verifying against the cluster CA would refuse this serving certificate, or None."""
        from cryptography import x509

        cert = x509.load_pem_x509_certificate(pem)
        try:
            cert.verify_directly_issued_by(self.authority().cert)
        except Exception:
            return "got a certificate the cluster CA did not sign"
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        if ipaddress.ip_address(self.ips[name]) not in sans.get_values_for_type(x509.IPAddress):
            return f"got a certificate without its address {self.ips[name]}"
        return None

    # -- webhook backends -----------------------------------------------------------------------

    def authority(self):
        """The control plane's CA (it signs webhook backends' certificates), or None without --pki."""
        from .pki import Authority

        if not self.pki:
            return None
        return Authority.load(os.path.join(self.pki, "ca.crt"), os.path.join(self.pki, "ca.key"))

    def start_backend(self, pod, ip, service_name, port=None):
        from .pki import write_private

        ports = [port] if port else [p.container_port for c in pod.spec.containers for p in c.ports or ()]
        if not ports:
            print(f"{pod.metadata.name}: {SERVE_ANNOTATION} but no container port", file=sys.stderr, flush=True)
            return
        cert, key = self.authority().issue(
            service_name, server_names=[service_name, f"{service_name}.cluster.local"], server_ips=[ip])
        folder = os.path.join(self.pki, "backends")
        os.makedirs(folder, exist_ok=True)
        cert_path = write_private(os.path.join(folder, f"{pod.metadata.uid}.crt"), cert)
        key_path = write_private(os.path.join(folder, f"{pod.metadata.uid}.key"), key)
        script = 'ip addr add "$1/32" dev lo && shift && exec "$@"'
        process = subprocess.Popen(
            ["nsenter", f"--net={self.netns}", "sh", "-c", script, "sh", ip, sys.executable, "-m",
             "tests.controlplane.backend", "--listen", f"{ip}:{ports[0]}", "--cert", cert_path, "--key", key_path])
        self.backends[pod.metadata.uid] = (process, ip)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            probe = subprocess.run(["nsenter", f"--net={self.netns}", "sh", "-c",
                                    f"exec 3<>/dev/tcp/{ip}/{ports[0]}"], capture_output=True, executable="/bin/bash")
            if probe.returncode == 0:
                return
            time.sleep(0.1)

    def stop_backend(self, uid):
        process, ip = self.backends.pop(uid, (None, None))
        if process:
            process.terminate()
            process.wait()
            subprocess.run(["nsenter", f"--net={self.netns}", "ip", "addr", "del", f"{ip}/32", "dev", "lo"],
                           capture_output=True)

    def stop_backends(self):
        for uid in list(self.backends):
            self.stop_backend(uid)

    def run_pods(self, stop):
        resource_version = None
        while not stop.is_set():
            try:
                if resource_version is None:
                    listing = self.core.list_pod_for_all_namespaces()
                    for pod in listing.items:
                        self.handle(pod)
                    resource_version = listing.metadata.resource_version
                for event in watch.Watch().stream(self.core.list_pod_for_all_namespaces,
                                                  resource_version=resource_version, timeout_seconds=60):
                    pod = event["object"]
                    resource_version = pod.metadata.resource_version
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self.handle(pod)
            except ApiException as err:
                if err.status == 410:  # the watch fell too far behind: list again
                    resource_version = None
                else:
                    time.sleep(0.5)
            except Exception as err:  # a dropped connection: resume from the last version seen
                print(f"pod watch: {err}", file=sys.stderr, flush=True)
                time.sleep(0.5)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.controlplane.nodes", description=__doc__.split("\n")[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--node", action="append", default=[], required=True)
    parser.add_argument("--control-plane", action="append", default=[])
    parser.add_argument("--taint-control-plane", action="store_true")
    parser.add_argument("--pod-delay", type=float, default=0.2)
    parser.add_argument("--ready-file")
    parser.add_argument("--netns", help="kube-apiserver's network namespace, where webhook backends listen")
    parser.add_argument("--pki", help="the control plane's certificates (its CA signs the backends' and the "
                                      "kubelets' client certificates)")
    parser.add_argument("--server-tls-bootstrap", action="append", default=[], metavar="NODE",
                        help="this node's kubelet runs with serverTLSBootstrap: true (needs --pki)")
    parser.add_argument("--kubelet-config", action="append", default=[], metavar="NODE=PATH",
                        help="this node's config.yaml, read as its kubelet starts and on SIGHUP (needs --pki)")
    args = parser.parse_args(argv)
    configs = dict(item.split("=", 1) for item in args.kubelet_config)
    if (args.server_tls_bootstrap or configs) and not args.pki:
        parser.error("--server-tls-bootstrap and --kubelet-config need --pki (the CA that issues the kubelets' "
                     "client certificates)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so that the backends stop with us
    api = config.new_client_from_config(config_file=args.kubeconfig)
    nodes = Nodes(api, args.node, args.control_plane, args.taint_control_plane, args.pod_delay,
                  args.netns, args.pki, bootstrap=args.server_tls_bootstrap, kubelet_configs=configs)
    nodes.register()
    nodes.wait_schedulable()
    stop = threading.Event()
    threading.Thread(target=nodes.heartbeat, args=(stop,), daemon=True).start()
    nodes.start_kubelets(stop)
    # `systemctl restart kubelet`: the kubelets read their config.yaml again (not in the handler itself)
    signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=nodes.start_kubelets, args=(stop,),
                                                             daemon=True).start())
    if args.ready_file:
        with open(args.ready_file, "w") as f:
            f.write(f"{os.getpid()}\n")
    try:
        nodes.run_pods(stop)
    except KeyboardInterrupt:
        pass
    finally:
        nodes.stop_backends()


if __name__ == "__main__":
    main()

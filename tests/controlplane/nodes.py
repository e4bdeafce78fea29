"""Simulated nodes for the test control plane: what kubelets would tell the apiserver.

    python -m tests.controlplane.nodes --kubeconfig admin.conf --node kube1 --node kube2 \\
        [--control-plane kube1] [--taint-control-plane] [--pod-delay 0.2] [--ready-file PATH]

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
"""

import argparse
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
CAPACITY = {"cpu": "8", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"}


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def stamp(moment=None):
    return (moment or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_ip(index):
    """Loopback addresses: whatever dials a node stays on this machine."""
    return f"127.0.1.{index + 1}"


class Nodes:
    def __init__(self, api, names, control_plane=(), taint=False, pod_delay=0.2, netns=None, pki=None):
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
            self.core.create_namespaced_event(meta.namespace, {
                "metadata": {"generateName": f"{meta.name}."},
                "involvedObject": {"kind": "Pod", "name": meta.name, "namespace": meta.namespace, "uid": meta.uid},
                "reason": "FailedMount", "type": "Warning", "source": {"component": "kubelet"},
                "message": f"MountVolume.SetUp failed: {missing}"})
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

    def start_pod(self, pod):
        meta, spec = pod.metadata, pod.spec
        annotations = meta.annotations or {}
        job = any(ref.kind == "Job" for ref in meta.owner_references or ())
        fail = annotations.get(FAIL_ANNOTATION)
        started = stamp()
        ip = self.pod_ip(pod)
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
        ready = "True" if live else "False"
        statuses = [{"name": c.name, "image": c.image, "imageID": "", "containerID": f"containerd://{meta.uid}-{c.name}",
                     "ready": live, "started": live, "restartCount": 1 if fail and not job else 0, "state": state}
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
        if serves and live and self.netns and not spec.host_network:
            self.start_backend(pod, ip, *serves)  # listening before the pod reads Ready
        try:
            self.core.patch_namespaced_pod_status(meta.name, meta.namespace, {"status": status})
        except ApiException as err:
            if err.status != 404:
                print(f"status of {meta.namespace}/{meta.name}: {err.status} {err.body}", file=sys.stderr, flush=True)

    def create_secret(self, namespace, name):
        try:
            self.core.create_namespaced_secret(namespace, {"metadata": {"name": name},
                                                           "stringData": {"ca": "generated by the Job"}})
        except ApiException as err:
            if err.status != 409:
                print(f"secret {namespace}/{name}: {err.status}", file=sys.stderr, flush=True)

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
    parser.add_argument("--pki", help="the control plane's certificates (its CA signs the backends')")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so that the backends stop with us
    api = config.new_client_from_config(config_file=args.kubeconfig)
    nodes = Nodes(api, args.node, args.control_plane, args.taint_control_plane, args.pod_delay,
                  args.netns, args.pki)
    nodes.register()
    nodes.wait_schedulable()
    stop = threading.Event()
    threading.Thread(target=nodes.heartbeat, args=(stop,), daemon=True).start()
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

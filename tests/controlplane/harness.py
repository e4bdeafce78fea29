"""``ControlPlane``: etcd, kube-apiserver, kube-controller-manager and kube-scheduler, as
kubeadm runs them, on free loopback ports, plus simulated nodes (tests.controlplane.nodes).

    plane = ControlPlane(workdir, nodes=["kube1", "kube2"]).start()
    plane.kubeconfig            # kubeadm's admin.conf: context kubernetes-admin@kubernetes
    plane.etcd_get("/registry/secrets/demo/db")   # the bytes etcd stores
    plane.stop()

Once kube-apiserver is up, kube-system holds the ConfigMaps kubeadm init uploads:
kubeadm-config (podSubnet POD_CIDR, as with --pod-network-cidr) and kubelet-config (no
serverTLSBootstrap); the controller-manager allocates node pod CIDRs from POD_CIDR.

WORKDIR/endpoints.json names the apiserver's and etcd's URLs for other processes.
Every process logs to WORKDIR/<name>.log; a start that fails names that log's last line.

etcd and kube-apiserver run in a network namespace of their own with only loopback, when
this process may make one (root): kube-apiserver dials Service and pod addresses for
webhooks and aggregated APIs, and such traffic must stay on this machine. forward.py
makes their ports reachable here on the same numbers; everything else runs here.
"""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import yaml

from . import build, pki

CLUSTER = "kubernetes"
ADMIN_CONTEXT = "kubernetes-admin@kubernetes"
SERVICE_CIDR = "10.96.0.0/12"
SERVICE_IP = "10.96.0.1"  # the `kubernetes` Service, first address of the range
POD_CIDR = "10.244.0.0/16"  # flannel's default, what kubeadm init --pod-network-cidr gets
START_TIMEOUT = 120


def exit_with_parent():
    """In the child before exec: a test run killed outright leaves no control plane behind."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def can_isolate():
    """Whether a loopback-only network namespace can be made here (root, unshare and ip)."""
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("nsenter") and shutil.which("ip")):
        return False
    return subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode == 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kubeconfig_text(server, ca_pem, user, cert_pem=None, key_pem=None, token=None,
                    context=None, namespace=None):
    """A kubeconfig of one cluster, one user and one context named `user@kubernetes`."""
    credentials = {"token": token} if token else {
        "client-certificate-data": base64.b64encode(cert_pem).decode(),
        "client-key-data": base64.b64encode(key_pem).decode()}
    context = context or f"{user}@{CLUSTER}"
    ctx = {"cluster": CLUSTER, "user": user}
    if namespace:
        ctx["namespace"] = namespace
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": CLUSTER, "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": context, "context": ctx}],
        "current-context": context, "preferences": {}}, sort_keys=False)


def write_toolkit_configs(directory):
    """(encryption config, audit policy): the toolkit's own EncryptionConfiguration, with a fresh
    key of its default provider, and its audit policy, as kube-apiserver reads them on a node."""
    from k8s.nodes import audit
    from k8s.nodes.encryption_config import DEFAULTS, config_text, resources
    from k8s.nodes.encryption_keys import generate

    os.makedirs(directory, exist_ok=True)
    encryption_path = os.path.join(directory, "encryption-config.yaml")
    key = generate(DEFAULTS["ENCRYPTION_PROVIDER"])
    names = resources(DEFAULTS["ENCRYPTION_RESOURCES"])
    pki.write_private(encryption_path, config_text([key], names, encryption_path))
    audit_path = pki.write_private(os.path.join(directory, "audit-policy.yaml"), audit.policy_text())
    return encryption_path, audit_path


def etcd_get(etcd_url, key):
    """The raw value etcd stores under `key` (bytes), or None; read through etcd's gRPC gateway."""
    body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
    request = urllib.request.Request(f"{etcd_url}/v3/kv/range", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as reply:
        kvs = json.loads(reply.read()).get("kvs") or []
    return base64.b64decode(kvs[0]["value"]) if kvs else None


def kubeadm_config_maps(kubernetes_version, pod_subnet=POD_CIDR):
    """The two ConfigMaps `kubeadm init` uploads to kube-system, with kubeadm's data keys:
    kubeadm-config (key ClusterConfiguration, kubeadm.k8s.io/v1beta4) and kubelet-config (key
    kubelet: the KubeletConfiguration every node's kubelet starts from; stock kubeadm sets no
    serverTLSBootstrap, so kubelets serve self-signed certificates). pod_subnet: what
    --pod-network-cidr gave; empty as after an init without it."""
    networking = {"dnsDomain": "cluster.local", "serviceSubnet": SERVICE_CIDR}
    if pod_subnet:
        networking["podSubnet"] = pod_subnet
    cluster = {
        "apiServer": {}, "apiVersion": "kubeadm.k8s.io/v1beta4",
        "caCertificateValidityPeriod": "87600h0m0s", "certificateValidityPeriod": "8760h0m0s",
        "certificatesDir": "/etc/kubernetes/pki", "clusterName": CLUSTER, "controllerManager": {},
        "dns": {}, "encryptionAlgorithm": "RSA-2048", "etcd": {"local": {"dataDir": "/var/lib/etcd"}},
        "imageRepository": "registry.k8s.io", "kind": "ClusterConfiguration",
        "kubernetesVersion": kubernetes_version, "networking": networking, "proxy": {}, "scheduler": {}}
    kubelet = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"cacheTTL": "0s", "enabled": True},
                           "x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"}},
        "authorization": {"mode": "Webhook",
                          "webhook": {"cacheAuthorizedTTL": "0s", "cacheUnauthorizedTTL": "0s"}},
        "cgroupDriver": "systemd", "clusterDNS": ["10.96.0.10"], "clusterDomain": "cluster.local",
        "containerRuntimeEndpoint": "", "healthzBindAddress": "127.0.0.1", "healthzPort": 10248,
        "rotateCertificates": True, "staticPodPath": "/etc/kubernetes/manifests"}

    def config_map(name, key, data):
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "kube-system"},
                "data": {key: yaml.safe_dump(data, sort_keys=True)}}

    return [config_map("kubeadm-config", "ClusterConfiguration", cluster),
            config_map("kubelet-config", "kubelet", kubelet)]


class ControlPlane:
    """A real control plane in `workdir`; see the module docstring.

    encryption_config, audit_policy: paths handed to kube-apiserver as
        --encryption-provider-config and --audit-policy-file (the audit log is WORKDIR/audit.log).
    nodes: names of the simulated nodes; control_plane_nodes: those of them with kubeadm's
        control-plane label and, when `taint_control_plane`, its NoSchedule taint.
    pod_delay: seconds a simulated node takes to start a scheduled pod.
    serving_bootstrap: nodes whose kubelet runs with serverTLSBootstrap (a kubelet-serving CSR,
        waiting for its approval); the others serve self-signed certificates, as kubeadm's do.
    kubelet_dir: with it, each node has a config.yaml in kubelet_dir/NODE/ (`kubelet_config`),
        written from kube-system/kubelet-config, which its kubelet reads at start and on SIGHUP
        to the "nodes" process (`systemctl restart kubelet`), serverTLSBootstrap included.
    """

    def __init__(self, workdir, *, nodes=("kube1",), control_plane_nodes=(), taint_control_plane=False,
                 encryption_config=None, audit_policy=None, pod_delay=0.2, bin_dir=None, port=None,
                 isolate=None, die_with_parent=True, serving_bootstrap=(), kubelet_dir=None):
        self.workdir = os.path.abspath(workdir)
        self.nodes = list(nodes)
        self.control_plane_nodes = list(control_plane_nodes)
        self.taint_control_plane = taint_control_plane
        self.encryption_config = encryption_config
        self.audit_policy = audit_policy
        self.pod_delay = pod_delay
        self.serving_bootstrap = list(serving_bootstrap)
        self.kubelet_dir = kubelet_dir and os.path.abspath(kubelet_dir)
        self.bin_dir = bin_dir
        self.port = port or free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.pki = os.path.join(self.workdir, "pki")
        self.kubeconfig = os.path.join(self.workdir, "admin.conf")
        self.audit_log = os.path.join(self.workdir, "audit.log")
        self.processes = {}
        self.isolate = can_isolate() if isolate is None else isolate
        self.die_with_parent = die_with_parent  # False for `make sandbox`, whose processes outlive it

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self):
        os.makedirs(self.workdir, exist_ok=True)
        bins = self.bin_dir or build.ensure_built(quiet=True)
        self.ca = pki.write_pki(self.pki, SERVICE_IP)
        self._write_kubeconfigs()
        try:
            self._start_etcd(bins)
            self._start_apiserver(bins)
            self._write_kubeadm_config_maps()
            self._start_controllers(bins)
            self._start_nodes()
            with open(os.path.join(self.workdir, "endpoints.json"), "w") as f:
                json.dump({"apiserver": self.url, "etcd": self.etcd_url}, f)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        """Each process in the reverse order of its start, so kube-apiserver never waits for a
        gone etcd; what does not end within a few seconds is killed (nothing here must survive)."""
        for proc in reversed(list(self.processes.values())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.processes.clear()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _spawn(self, name, argv, env=None):
        log = open(os.path.join(self.workdir, f"{name}.log"), "ab")
        self.processes[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                env=env or os.environ.copy(), start_new_session=True,
                                                preexec_fn=exit_with_parent if self.die_with_parent else None)
        log.close()
        return self.processes[name]

    def _wait(self, name, check, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.processes[name]
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}: {self.last_log_line(name)}")
            try:
                if check():
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{name} not ready after {timeout}s: {self.last_log_line(name)}")

    def last_log_line(self, name):
        try:
            with open(os.path.join(self.workdir, f"{name}.log"), errors="replace") as f:
                lines = [line.strip() for line in f if line.strip()]
        except OSError:
            return "(no log)"
        return lines[-1] if lines else "(empty log)"

    # -- the processes --------------------------------------------------------------------------

    def _start_etcd(self, bins):
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        peer_url = f"http://127.0.0.1:{peer}"
        isolated = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"] if self.isolate else []
        etcd = self._spawn("etcd", [*isolated,
            os.path.join(bins, "etcd"), "--name", "default", "--data-dir", os.path.join(self.workdir, "etcd"),
            "--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url,
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"default={peer_url}", "--listen-metrics-urls", f"http://127.0.0.1:{free_port()}",
            "--unsafe-no-fsync",  # a test cluster: losing it on a power cut is fine
            "--log-level", "warn"])
        if self.isolate:
            self._namespace = f"/proc/{etcd.pid}/ns/net"
            self._forward([client, self.port])
        self._wait("etcd", lambda: urllib.request.urlopen(f"{self.etcd_url}/health", timeout=2).status == 200)

    def _start_apiserver(self, bins):
        p = lambda name: os.path.join(self.pki, name)  # noqa: E731
        argv = [
            os.path.join(bins, "kube-apiserver"),
            f"--etcd-servers={self.etcd_url}", "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}", f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--tls-cert-file={p('apiserver.crt')}", f"--tls-private-key-file={p('apiserver.key')}",
            f"--client-ca-file={p('ca.crt')}",
            f"--kubelet-client-certificate={p('apiserver-kubelet-client.crt')}",
            f"--kubelet-client-key={p('apiserver-kubelet-client.key')}",
            f"--proxy-client-cert-file={p('front-proxy-client.crt')}",
            f"--proxy-client-key-file={p('front-proxy-client.key')}",
            f"--requestheader-client-ca-file={p('front-proxy-ca.crt')}",
            "--requestheader-allowed-names=front-proxy-client", "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group", "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={p('sa.pub')}", f"--service-account-signing-key-file={p('sa.key')}",
            # kubeadm's defaults
            "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
            "--allow-privileged=true", "--enable-bootstrap-token-auth=true",
            "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
            # the advertised address is loopback, which the `kubernetes` Service's endpoint
            # reconciler refuses; no pod really runs, so the Service needs no endpoints
            "--endpoint-reconciler-type=none",
            # webhooks and aggregated APIs are dialed at a ready endpoint of their Service, as
            # kube-proxy would route the ClusterIP: a backend that is not ready is not reached
            "--enable-aggregator-routing=true",
            "--profiling=false", "--v=1"]
        if self.encryption_config:
            argv.append(f"--encryption-provider-config={self.encryption_config}")
        if self.audit_policy:
            argv += [f"--audit-policy-file={self.audit_policy}", f"--audit-log-path={self.audit_log}"]
        if self.isolate:
            argv = ["nsenter", f"--net={self._namespace}", *argv]
        self._spawn("kube-apiserver", argv)
        self._wait("kube-apiserver", lambda: self.get("/readyz") == "ok")

    def _write_kubeadm_config_maps(self):
        """kube-system/kubeadm-config and kube-system/kubelet-config, as `kubeadm init
        --pod-network-cidr=POD_CIDR` uploads them (kubeadm_config_maps); kept if they exist."""
        deadline = time.monotonic() + START_TIMEOUT
        version = self.get("/version")["gitVersion"]
        for config_map in kubeadm_config_maps(version):
            while True:  # kube-system appears shortly after /readyz says ok
                try:
                    self.post("/api/v1/namespaces/kube-system/configmaps", config_map)
                    break
                except urllib.error.HTTPError as err:
                    if err.code == 409:
                        break
                    if err.code != 404 or time.monotonic() > deadline:
                        raise
                time.sleep(0.2)

    def _start_controllers(self, bins):
        p = lambda name: os.path.join(self.pki, name)  # noqa: E731
        kcm = os.path.join(self.workdir, "controller-manager.conf")
        self._spawn("kube-controller-manager", [
            os.path.join(bins, "kube-controller-manager"),
            f"--kubeconfig={kcm}", f"--authentication-kubeconfig={kcm}", f"--authorization-kubeconfig={kcm}",
            "--bind-address=127.0.0.1", f"--secure-port={free_port()}", "--leader-elect=false",
            "--use-service-account-credentials=true", "--controllers=*,bootstrapsigner,tokencleaner",
            f"--root-ca-file={p('ca.crt')}", f"--service-account-private-key-file={p('sa.key')}",
            f"--cluster-signing-cert-file={p('ca.crt')}", f"--cluster-signing-key-file={p('ca.key')}",
            f"--requestheader-client-ca-file={p('front-proxy-ca.crt')}",
            "--allocate-node-cidrs=true", f"--cluster-cidr={POD_CIDR}", f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--v=1"])
        sched = os.path.join(self.workdir, "scheduler.conf")
        self._spawn("kube-scheduler", [
            os.path.join(bins, "kube-scheduler"),
            f"--kubeconfig={sched}", f"--authentication-kubeconfig={sched}", f"--authorization-kubeconfig={sched}",
            "--bind-address=127.0.0.1", f"--secure-port={free_port()}", "--leader-elect=false", "--v=1"])
        # ready once the token controller has given the default namespace its root CA ConfigMap
        self._wait("kube-controller-manager",
                   lambda: self.get("/api/v1/namespaces/default/configmaps/kube-root-ca.crt", check=False) is not None)

    def _forward(self, ports):
        """forward.py: these loopback ports here reach the same ports in etcd's namespace."""
        ready = os.path.join(self.workdir, "forward.ready")
        self._spawn("forward", [sys.executable, "-m", "tests.controlplane.forward", "--netns", self._namespace,
                                "--ready-file", ready, *(f"{p}:{p}" for p in ports)], env=self._python_env())
        self._wait("forward", lambda: os.path.exists(ready), timeout=30)

    def _python_env(self):
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        return {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}

    def _start_nodes(self):
        argv = [sys.executable, "-m", "tests.controlplane.nodes", "--kubeconfig", self.kubeconfig,
                "--pod-delay", str(self.pod_delay), "--ready-file", os.path.join(self.workdir, "nodes.ready")]
        for node in self.nodes:
            argv += ["--node", node]
        for node in self.control_plane_nodes:
            argv += ["--control-plane", node]
        if self.taint_control_plane:
            argv.append("--taint-control-plane")
        if self.isolate:
            argv += ["--netns", self._namespace]
        if self.isolate or self.serving_bootstrap or self.kubelet_dir:
            argv += ["--pki", self.pki]
        for node in self.serving_bootstrap:
            argv += ["--server-tls-bootstrap", node]
        for node in self.nodes if self.kubelet_dir else ():
            argv += ["--kubelet-config", f"{node}={self.kubelet_config(node)}"]
        self._spawn("nodes", argv, env=self._python_env())
        self._wait("nodes", lambda: os.path.exists(os.path.join(self.workdir, "nodes.ready")), timeout=60)

    def kubelet_config(self, node):
        """The config.yaml of `node`'s kubelet (with kubelet_dir)."""
        return os.path.join(self.kubelet_dir, node, "config.yaml")

    def _write_kubeconfigs(self):
        def read(name):
            with open(os.path.join(self.pki, name), "rb") as f:
                return f.read()

        ca = read("ca.crt")
        for file, user, stem in (("admin.conf", "kubernetes-admin", "admin"),
                                 ("controller-manager.conf", "system:kube-controller-manager", "controller-manager"),
                                 ("scheduler.conf", "system:kube-scheduler", "scheduler")):
            text = kubeconfig_text(self.url, ca, user, read(f"{stem}.crt"), read(f"{stem}.key"))
            pki.write_private(os.path.join(self.workdir, file), text)

    # -- reading the real thing -----------------------------------------------------------------

    def _ssl(self):
        import ssl

        context = ssl.create_default_context(cafile=os.path.join(self.pki, "ca.crt"))
        context.load_cert_chain(os.path.join(self.pki, "admin.crt"), os.path.join(self.pki, "admin.key"))
        return context

    def get(self, path, check=True):
        """The body of an admin GET on the apiserver (JSON decoded when it is JSON); None for a 404
        when not `check`."""
        try:
            with urllib.request.urlopen(self.url + path, context=self._ssl(), timeout=10) as reply:
                body = reply.read().decode()
        except urllib.error.HTTPError as err:
            if err.code == 404 and not check:
                return None
            raise
        return json.loads(body) if body.startswith("{") else body

    def post(self, path, body):
        """An admin POST of the JSON `body`; the decoded reply (HTTPError when refused)."""
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, context=self._ssl(), timeout=10) as reply:
            return json.loads(reply.read())

    def etcd_get(self, key):
        return etcd_get(self.etcd_url, key)

    def user_kubeconfig(self, path, user, groups=(), namespace=None):
        """A kubeconfig for a client-certificate user (CN=user, O=groups), as `kubeadm kubeconfig user` makes."""
        cert, key = self.ca.issue(user, groups)
        return pki.write_private(path, kubeconfig_text(self.url, self.ca.pem, user, cert, key, namespace=namespace))

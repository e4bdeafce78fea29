"""Pinned and bounded components: every container the toolkit writes has requests and a
memory limit from Makefile.vars, every pod runs under the runtime's default seccomp
profile, no container is privileged and only the listed ones add capabilities, images
whose upstream publishes a digest carry it (IMAGE_DIGESTS), a digest belongs to its
tag only, IMAGE_MIRROR keeps it, and Headlamp runs without any binding.

Rendering uses the repository's own Makefile.vars, untouched by the environment, so
the defaults users get are the ones tested; vendored upstream files are left out
(they follow upstream's choices).
"""

import os
import re

import pytest

from k8s.core import components, images, order, render, validate, variables, vendor
from k8s.errors import UserError

from ..conftest import ROOT

MANIFESTS = os.path.join(ROOT, "manifests")
VENDOR = os.path.join(ROOT, "vendor")
VERSION = "1.37"
WORKLOADS = {"Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob", "Pod"}
# Between them, every container the toolkit writes.
VARIANTS = {
    "defaults": {},
    "kubernetes-dashboard": {"DASHBOARD": "kubernetes-dashboard"},
    "ingress daemonset on host network": {"INGRESS_KIND": "DaemonSet", "INGRESS_SERVICE_TYPE": "hostNetwork"},
}

# (workload name, container) -> the prefix of its Makefile.vars resource variables
RESOURCES = {
    ("kube-flannel-ds", "install-cni-plugin"): "FLANNEL",
    ("kube-flannel-ds", "install-cni"): "FLANNEL",
    ("kube-flannel-ds", "kube-flannel"): "FLANNEL",
    ("kube-network-policies", "kube-network-policies"): "KUBE_NETWORK_POLICIES",
    ("metrics-server", "metrics-server"): "METRICS_SERVER",
    ("ingress-nginx-controller", "controller"): "INGRESS_NGINX",
    ("ingress-nginx-admission-create", "create"): "KUBE_WEBHOOK_CERTGEN",
    ("ingress-nginx-admission-patch", "patch"): "KUBE_WEBHOOK_CERTGEN",
    ("headlamp", "headlamp"): "HEADLAMP",
    ("kubernetes-dashboard", "kubernetes-dashboard"): "KUBERNETES_DASHBOARD",
    ("dashboard-metrics-scraper", "dashboard-metrics-scraper"): "METRICS_SCRAPER",
    ("data-sync", "data-sync"): "DATA_SYNC",
}
SUFFIXES = ("_CPU_REQUEST", "_MEMORY_REQUEST", "_MEMORY_LIMIT")

# Containers that may be privileged, with the reason. None: capabilities suffice everywhere.
PRIVILEGED = {}
# (workload, container) -> capabilities it adds, and why; every other container adds none.
CAPABILITIES = {
    # netlink, the VXLAN device, iptables (as upstream's kube-flannel.yml)
    ("kube-flannel-ds", "kube-flannel"): {"NET_ADMIN", "NET_RAW"},
    # root writing into /opt/cni/bin and /etc/cni/net.d, which may belong to another uid
    ("kube-flannel-ds", "install-cni-plugin"): {"DAC_OVERRIDE"},
    ("kube-flannel-ds", "install-cni"): {"DAC_OVERRIDE"},
    # nftables, nfqueue, conntrack; setns() into pod network namespaces (NRI, containerd < 2.1)
    ("kube-network-policies", "kube-network-policies"): {"NET_ADMIN", "SYS_ADMIN"},
    # NGINX binds 80 and 443 as a non-root user
    ("ingress-nginx-controller", "controller"): {"NET_BIND_SERVICE"},
    # unison keeping owners and modes, sshd's privilege separation and port 22
    ("data-sync", "data-sync"): {"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE",
                                 "SETGID", "SETUID", "SYS_CHROOT"},
}

# Digests read from upstream's release manifests (kubernetes/ingress-nginx,
# deploy/static/provider/baremetal/deploy.yaml at controller-v1.15.1): image -> (version
# variable, digest variable, the tag the digest belongs to, digest). flannel, metrics-server,
# kube-network-policies, Headlamp and the Kubernetes Dashboard publish tags only.
DIGESTS = {
    "registry.k8s.io/ingress-nginx/controller": (
        "VERSION_INGRESS_NGINX", "DIGEST_INGRESS_NGINX", "1.15.1",
        "sha256:594ceea76b01c592858f803f9ff4d2cb40542cae2060410b2c95f75907d659e1"),
    "registry.k8s.io/ingress-nginx/kube-webhook-certgen": (
        "VERSION_KUBE_WEBHOOK_CERTGEN", "DIGEST_KUBE_WEBHOOK_CERTGEN", "1.6.9",
        "sha256:01038e7de14b78d702d2849c3aad72fd25903c4765af63cf16aa3398f5d5f2dd"),
}
MIRROR = "registry.local:5000"


def repo_values(**overrides):
    found = variables.load_variables(os.path.join(ROOT, "Makefile.vars"), environ={})
    return {**{name: v.value for name, v in found.items()}, **overrides}


def build(**overrides):
    """Every component's objects (those of never-vendored imports left out), validated."""
    values = repo_values(KUBE_VERSION=VERSION, **overrides)
    found = order.component_order(components.discover(MANIFESTS, values))
    selected = [c for c in found if c.supports(VERSION) and not vendor.not_vendored(c, VENDOR)]
    objects = render.render_components(selected, values, vendor_root=VENDOR)
    report = validate.validate([(o.data, o.source) for o in objects], VERSION)
    assert [str(e) for e in report.errors] == []
    return objects


def pods(objects):
    """(workload, its pod spec) of the toolkit's own workloads."""
    for o in objects:
        if o.kind in WORKLOADS and not o.source.file.startswith(VENDOR + os.sep):
            spec = o.data["spec"]
            if o.kind == "CronJob":
                spec = spec["jobTemplate"]["spec"]
            yield o, spec["template"]["spec"] if o.kind != "Pod" else spec


def containers(objects):
    """(workload, container) of every container and init container the toolkit writes."""
    for o, spec in pods(objects):
        for c in spec.get("initContainers", []) + spec["containers"]:
            yield o, c


def quantity(value):
    """A memory or CPU quantity as a number (bytes, cores), for comparing."""
    number, unit = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value)).groups()
    scale = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}[unit]
    return float(number) * scale


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def rendered(request):
    return build(**VARIANTS[request.param])


@pytest.fixture(scope="module")
def every_variant():
    return [o for name in sorted(VARIANTS) for o in build(**VARIANTS[name])]


# --- requests and limits --------------------------------------------------------------

def test_every_container_has_requests_and_a_memory_limit_but_no_cpu_limit(rendered):
    for o, c in containers(rendered):
        resources = c.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        where = f"{o.ref} container {c['name']}"
        assert requests.get("cpu") and requests.get("memory"), where
        assert limits.get("memory"), where
        assert quantity(limits["memory"]) >= quantity(requests["memory"]), where
        # no CPU limits: throttling stalls network agents and NGINX on idle nodes (Makefile.vars)
        assert "cpu" not in limits, where


def test_every_container_takes_its_components_variables(every_variant):
    """Each resource variable reaches exactly the containers of RESOURCES: distinct values
    for all of them show up where they belong."""
    names = {f"{prefix}{suffix}" for prefix in RESOURCES.values() for suffix in SUFFIXES}
    values = repo_values()
    assert names == {n for n in values if n.endswith(SUFFIXES) and not n.startswith("LIMIT_")}
    distinct = {name: f"{i + 1}Mi" if "MEMORY" in name else f"{i + 1}m" for i, name in enumerate(sorted(names))}
    seen = set()
    for variant in sorted(VARIANTS):
        for o, c in containers(build(**VARIANTS[variant], **distinct)):
            prefix = RESOURCES[(o.name, c["name"])]
            assert c["resources"] == {
                "requests": {"cpu": distinct[f"{prefix}_CPU_REQUEST"], "memory": distinct[f"{prefix}_MEMORY_REQUEST"]},
                "limits": {"memory": distinct[f"{prefix}_MEMORY_LIMIT"]}}, (o.ref, c["name"])
            seen.add((o.name, c["name"]))
    assert seen == set(RESOURCES)


def test_the_defaults_keep_upstreams_published_requests():
    values = repo_values()
    upstream = {"FLANNEL": ("100m", "50Mi"), "KUBE_NETWORK_POLICIES": ("100m", "50Mi"),
                "METRICS_SERVER": ("100m", "200Mi"), "INGRESS_NGINX": ("100m", "90Mi")}
    for prefix, (cpu, memory) in upstream.items():
        assert (values[f"{prefix}_CPU_REQUEST"], values[f"{prefix}_MEMORY_REQUEST"]) == (cpu, memory), prefix


# --- seccomp and privilege ------------------------------------------------------------

def test_every_pod_runs_under_the_runtime_default_seccomp_profile(rendered):
    for o, spec in pods(rendered):
        pod_level = ((spec.get("securityContext") or {}).get("seccompProfile") or {}).get("type")
        every_container = all(((c.get("securityContext") or {}).get("seccompProfile") or {}).get("type")
                              == "RuntimeDefault" for c in spec.get("initContainers", []) + spec["containers"])
        assert pod_level == "RuntimeDefault" or every_container, o.ref
        for c in spec.get("initContainers", []) + spec["containers"]:  # and no container opts out
            own = ((c.get("securityContext") or {}).get("seccompProfile") or {}).get("type")
            assert own in (None, "RuntimeDefault"), (o.ref, c["name"])


def test_no_container_is_privileged_and_only_the_listed_ones_add_capabilities(every_variant):
    seen = set()
    for o, c in containers(every_variant):
        context = c.get("securityContext") or {}
        key = (o.name, c["name"])
        if context.get("privileged"):
            assert key in PRIVILEGED, f"{o.ref} container {c['name']} is privileged"
        added = set((context.get("capabilities") or {}).get("add") or [])
        assert added == CAPABILITIES.get(key, set()), key
        if added:
            assert (context.get("capabilities") or {}).get("drop") == ["ALL"], key
            seen.add(key)
    assert seen == set(CAPABILITIES)


def test_the_network_policy_agent_keeps_two_capabilities_instead_of_privileged():
    [agent] = [o for o in build() if o.kind == "DaemonSet" and o.name == "kube-network-policies"]
    spec = agent.data["spec"]["template"]["spec"]
    [container] = spec["containers"]
    assert container["securityContext"] == {"privileged": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN", "SYS_ADMIN"]}}
    # the API refuses allowPrivilegeEscalation false beside SYS_ADMIN
    assert "allowPrivilegeEscalation" not in container["securityContext"]
    assert spec["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert spec["hostNetwork"] is True


# --- image digests ----------------------------------------------------------------------

def images_of(objects):
    return [c["image"] for _, c in containers(objects)]


def test_the_digests_in_makefile_vars_are_upstreams():
    values = repo_values()
    assert values["IMAGE_DIGESTS"] == "true"
    for version_var, digest_var, tag, digest in DIGESTS.values():
        assert (values[version_var], values[digest_var]) == (tag, digest)


def test_images_with_a_published_digest_carry_it_and_no_other_does(every_variant):
    found = set()
    for image in images_of(every_variant):
        name, at, digest = image.partition("@")
        repo = name.rpartition(":")[0]
        if repo in DIGESTS:
            _, _, tag, published = DIGESTS[repo]
            assert image == f"{repo}:v{tag}@{published}"
            found.add(repo)
        else:
            assert not at, image  # a digest we never read from upstream
    assert found == set(DIGESTS)


def test_image_digests_false_gives_tags_only():
    objects = build(IMAGE_DIGESTS="false")
    assert not [image for image in images_of(objects) if "@" in image]
    assert {f"{repo}:v{tag}" for repo, (_, _, tag, _) in DIGESTS.items()} <= set(images_of(objects))


def test_an_empty_digest_pins_that_image_by_tag_only():
    got = images_of(build(DIGEST_INGRESS_NGINX=""))
    assert "registry.k8s.io/ingress-nginx/controller:v1.15.1" in got
    assert any(i.startswith("registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.6.9@sha256:") for i in got)


@pytest.mark.parametrize("repo", sorted(DIGESTS))
def test_a_digest_with_another_version_is_refused_in_one_line(repo):
    version_var, digest_var, _, _ = DIGESTS[repo]
    with pytest.raises(UserError) as err:
        build(**{version_var: "1.99.0"})
    message = str(err.value)
    assert "\n" not in message
    assert f"{digest_var}_is_not_the_digest_of_{version_var}" in message
    # the version changed together with its digest, or tags only: accepted
    new_digest = "sha256:" + "ab" * 32
    got = images_of(build(**{version_var: "1.99.0", digest_var: new_digest}))
    assert f"{repo}:v1.99.0@{new_digest}" in got
    assert f"{repo}:v1.99.0" in images_of(build(**{version_var: "1.99.0", "IMAGE_DIGESTS": "false"}))


def test_image_digests_takes_only_true_or_false():
    with pytest.raises(UserError, match="IMAGE_DIGESTS_must_be_true_or_false"):
        build(IMAGE_DIGESTS="yes")


def test_the_mirror_keeps_tag_and_digest():
    got = images_of(build(IMAGE_MIRROR=MIRROR))
    for repo, (_, _, tag, digest) in DIGESTS.items():
        path = repo.split("/", 1)[1]
        assert f"{MIRROR}/{path}:v{tag}@{digest}" in got
    assert all(image.startswith(MIRROR + "/") for image in got)
    image = "registry.k8s.io/ingress-nginx/controller:v1.15.1@" + DIGESTS["registry.k8s.io/ingress-nginx/controller"][3]
    mirrored = images.mirror_image(image, MIRROR)
    assert mirrored == f"{MIRROR}/ingress-nginx/controller:v1.15.1@{DIGESTS['registry.k8s.io/ingress-nginx/controller'][3]}"
    assert images.mirror_image(mirrored, MIRROR) == mirrored


# --- Headlamp ---------------------------------------------------------------------------

def test_headlamp_has_no_binding_and_no_usable_token():
    objects = [o for o in build(DASHBOARD="headlamp") if o.component == "dashboard"]
    kinds = {o.kind for o in objects}
    assert "ClusterRoleBinding" not in kinds
    for binding in (o for o in objects if o.kind == "RoleBinding"):  # only the namespace user's viewer
        assert all(s["name"] != "headlamp" for s in binding.data["subjects"]), binding.ref
    [account] = [o for o in objects if o.kind == "ServiceAccount" and o.name == "headlamp"]
    assert account.data["automountServiceAccountToken"] is False
    [deployment] = [o for o in objects if o.kind == "Deployment" and o.name == "headlamp"]
    spec = deployment.data["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False
    [container] = spec["containers"]
    assert container["args"][:2] == ["-in-cluster", "-in-cluster-context-name=kubernetes"]
    assert not [a for a in container["args"] if "unsafe-use-service-account-token" in a
                or "enable-cluster-inventory" in a]
    # client-go's in-cluster config needs a CA and a token file; the token's audience is not the API server's
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount"]
    [volume] = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    sources = volume["projected"]["sources"]
    assert {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}} in sources
    [token] = [s["serviceAccountToken"] for s in sources if "serviceAccountToken" in s]
    assert token["path"] == "token" and token["audience"] not in ("", "https://kubernetes.default.svc.cluster.local")
    assert container["image"] == f"ghcr.io/headlamp-k8s/headlamp:v{repo_values()['VERSION_HEADLAMP']}"

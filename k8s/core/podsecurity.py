"""Pod Security Admission's cluster-wide defaults, as a file for kube-apiserver.

Namespaces carry their own Pod Security levels as labels (the `namespace`,
`flannel`, `ingress-nginx` and `data-sync` components set them). A namespace
without labels gets the defaults of the PodSecurity admission plugin, which
only kube-apiserver's `--admission-control-config-file` can set: this module
writes that file (an AdmissionConfiguration) from the variables, and says
where kubeadm wants it.

Variables (defaults in DEFAULTS):
    PSA_DEFAULT_ENFORCE, PSA_DEFAULT_AUDIT, PSA_DEFAULT_WARN: privileged,
        baseline or restricted.
    PSA_VERSION: the policy version of all three, "latest" or "v1.NN".
    PSA_EXEMPT_NAMESPACES: namespaces never checked, space separated.
    KUBE_VERSION: the target version; 1.23 and 1.24 get the v1beta1
        PodSecurityConfiguration, 1.25 and newer v1.
"""

import posixpath
import re

from ..errors import UserError

DEFAULT_PATH = "/etc/kubernetes/admission/admission.yaml"
LEVELS = ("privileged", "baseline", "restricted")
MODES = ("enforce", "audit", "warn")
DEFAULTS = {
    "PSA_DEFAULT_ENFORCE": "baseline",
    "PSA_DEFAULT_AUDIT": "restricted",
    "PSA_DEFAULT_WARN": "restricted",
    "PSA_VERSION": "latest",
    "PSA_EXEMPT_NAMESPACES": "kube-system",
}

# PodSecurityConfiguration: v1beta1 in 1.23-1.24, v1 from 1.25 (GA). The
# AdmissionConfiguration around it is apiserver.config.k8s.io/v1 throughout.
ADMISSION_API = "apiserver.config.k8s.io/v1"
POD_SECURITY_API = {23: "pod-security.admission.config.k8s.io/v1beta1",
                    25: "pod-security.admission.config.k8s.io/v1"}
# kubeadm's config API: v1beta4 (extraArgs as a list of name/value) from 1.31,
# v1beta3 (extraArgs as a map) before.
KUBEADM_V1BETA4_MINOR = 31

_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_VERSION = re.compile(r"latest|v1\.(0|[1-9][0-9]*)")


def admission_configuration(variables):
    """The AdmissionConfiguration for kube-apiserver, as a dict ready to dump as YAML.

    Parameters:
        variables: name -> value (strings); see the module docstring. Missing
            names take DEFAULTS.

    A level, version or namespace that kube-apiserver would refuse is a
    UserError naming the variable.
    """
    value = {name: str(variables.get(name, default)).strip() for name, default in DEFAULTS.items()}
    errors = []
    defaults = {}
    for mode in MODES:
        name = f"PSA_DEFAULT_{mode.upper()}"
        if value[name] not in LEVELS:
            errors.append(f"{name} is {value[name]!r}; expected one of {', '.join(LEVELS)}")
        defaults[mode] = value[name]
        defaults[f"{mode}-version"] = value["PSA_VERSION"]
    if not _VERSION.fullmatch(value["PSA_VERSION"]):
        errors.append(f"PSA_VERSION is {value['PSA_VERSION']!r}; expected latest or v1.NN, like v1.25")
    namespaces = value["PSA_EXEMPT_NAMESPACES"].split()
    bad = [n for n in namespaces if not _NAMESPACE.fullmatch(n)]
    if bad:
        errors.append(f"PSA_EXEMPT_NAMESPACES: {', '.join(map(repr, bad))} is not a namespace name")
    if errors:
        raise UserError("; ".join(errors))
    return {
        "apiVersion": ADMISSION_API,
        "kind": "AdmissionConfiguration",
        "plugins": [{
            "name": "PodSecurity",
            "configuration": {
                "apiVersion": _pod_security_api(variables.get("KUBE_VERSION")),
                "kind": "PodSecurityConfiguration",
                "defaults": defaults,
                "exemptions": {
                    "usernames": [],
                    "runtimeClasses": [],
                    "namespaces": sorted(set(namespaces)),
                },
            },
        }],
    }


def kubeadm_api_server(path=DEFAULT_PATH, kube_version=None):
    """The `apiServer` part of a kubeadm ClusterConfiguration that loads the file at `path`.

    Returns (kubeadm apiVersion, dict): kubeadm.k8s.io/v1beta4 with extraArgs
    as a name/value list for Kubernetes 1.31 and newer (and when the version
    is not known), v1beta3 with extraArgs as a map before. The file's folder
    is mounted read-only into the kube-apiserver static pod, which otherwise
    only sees /etc/kubernetes/pki and the CA folders.
    """
    folder = posixpath.dirname(path) or "/"
    volume = {"name": "admission-config", "hostPath": folder, "mountPath": folder,
              "readOnly": True, "pathType": "DirectoryOrCreate"}
    minor = _minor(kube_version)
    if minor is None or minor >= KUBEADM_V1BETA4_MINOR:
        args = [{"name": "admission-control-config-file", "value": path}]
        return "kubeadm.k8s.io/v1beta4", {"extraArgs": args, "extraVolumes": [volume]}
    return "kubeadm.k8s.io/v1beta3", {"extraArgs": {"admission-control-config-file": path},
                                      "extraVolumes": [volume]}


def hint(path=DEFAULT_PATH):
    """One line saying where the file goes and how kubeadm's kube-apiserver loads it."""
    folder = posixpath.dirname(path) or "/"
    return (f"copy it to {path} on every control-plane node, then in kubeadm's ClusterConfiguration "
            f"set apiServer.extraArgs admission-control-config-file={path} (v1beta4, kubeadm 1.31+: "
            f"a list item {{name: admission-control-config-file, value: {path}}}; v1beta3: a map entry) "
            f"and add apiServer.extraVolumes {{name: admission-config, hostPath: {folder}, "
            f"mountPath: {folder}, readOnly: true, pathType: DirectoryOrCreate}}")


def _pod_security_api(kube_version):
    minor = _minor(kube_version)
    if minor is not None and minor < 23:
        raise UserError(f"Pod Security Admission needs Kubernetes 1.23 or newer, not {kube_version}")
    return POD_SECURITY_API[25 if minor is None or minor >= 25 else 23]


def _minor(kube_version):
    """23 for "1.23", "v1.23.4"; None when unset; a malformed version is a UserError."""
    if kube_version in (None, ""):
        return None
    match = re.fullmatch(r"v?1\.(\d+)(?:\.\d+)?", str(kube_version).strip())
    if not match:
        raise UserError(f"invalid Kubernetes version {kube_version!r}, expected MAJOR.MINOR like 1.31")
    return int(match[1])

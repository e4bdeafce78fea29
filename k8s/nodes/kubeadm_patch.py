"""build/kubeadm/: kube-apiserver's settings for kubeadm, one ClusterConfiguration patch and its files.

    FOLDER/cluster-configuration.yaml  encryption at rest, audit log and Pod Security admission
                                       for kube-apiserver, merged (PATCH_FILE), and the pod network
    FOLDER/audit-policy.yaml           the audit Policy, for AUDIT_POLICY_PATH on the nodes
    FOLDER/admission-config.yaml       the AdmissionConfiguration, for podsecurity.DEFAULT_PATH
    FOLDER/NOTES.txt                   which file goes where, and the kubeadm commands

The EncryptionConfiguration holds the key and is never written here: `render.py
encryption install` streams it to the nodes. Its part of the patch is only a
flag and a path, so no secret is needed to write this folder.

Merging (`merge`): the three fragments (k8s.nodes.encryption_config.fragment,
k8s.nodes.audit.fragment, k8s.core.podsecurity.kubeadm_api_server) become one
apiServer with each flag once (a flag set twice to different values is a
UserError) and one extraVolume per host folder (two files in one folder: one
volume, writable if either needs it), in the kubeadm API of the target
version: v1beta4 (extraArgs a list of name/value) from 1.31, v1beta3 (a map)
before (k8s.nodes.node_files.cluster_configuration). POD_CIDR becomes
networking.podSubnet, because `kubeadm init --config` refuses
`--pod-network-cidr` beside it.

Field names as kubeadm's types have them (cmd/kubeadm/app/apis/kubeadm/v1beta4
and v1beta3 types.go): ClusterConfiguration.apiServer (ControlPlaneComponent)
.extraArgs ([]Arg{name, value} / map[string]string) and .extraVolumes
([]HostPathMount{name, hostPath, mountPath, readOnly, pathType}),
.networking.podSubnet.
"""

import ipaddress

from ..errors import UserError

FOLDER = "kubeadm"
PATCH_FILE = "cluster-configuration.yaml"
NOTES_FILE = "NOTES.txt"
POLICY_FILE = "audit-policy.yaml"
ADMISSION_FILE = "admission-config.yaml"
PSA_MIN_MINOR = 23  # Pod Security admission: none before 1.23, so no admission part


def pairs(extra_args):
    """[(name, value)] of an extraArgs in either form (v1beta4 list, v1beta3 map)."""
    if isinstance(extra_args, dict):
        return list(extra_args.items())
    return [(a["name"], a["value"]) for a in extra_args or ()]


def merge(fragments, kube_version=None):
    """One ClusterConfiguration from kubeadm fragments: every flag once, one volume per host folder.

    Parameters:
        fragments: ClusterConfiguration dicts with apiServer.extraArgs and .extraVolumes.
        kube_version: the target version; decides the kubeadm API as node_files does.
    """
    from .node_files import cluster_configuration

    flags, volumes = {}, {}
    for fragment in fragments:
        api_server = fragment["apiServer"]
        for name, value in pairs(api_server.get("extraArgs")):
            if flags.setdefault(name, value) != value:
                raise UserError(f"kube-apiserver flag --{name} set twice: {flags[name]!r} and {value!r}")
        for volume in api_server.get("extraVolumes") or ():
            same = volumes.get(volume["hostPath"])
            if same is None:
                volumes[volume["hostPath"]] = dict(volume)
            elif same["mountPath"] != volume["mountPath"]:
                raise UserError(f"host folder {volume['hostPath']} mounted at {same['mountPath']} and "
                                f"{volume['mountPath']}")
            else:
                same["readOnly"] = same.get("readOnly", False) and volume.get("readOnly", False)
    return cluster_configuration(list(flags.items()), list(volumes.values()), kube_version)


def patch(variables, kube_version):
    """The merged ClusterConfiguration for `variables` (see the module docstring)."""
    from ..core import podsecurity
    from . import audit, encryption_config

    fragments = [encryption_config.fragment(encryption_config.config_path(variables), kube_version),
                 audit.fragment(variables, kube_version)]
    if _minor(kube_version) >= PSA_MIN_MINOR:
        api_version, api_server = podsecurity.kubeadm_api_server(kube_version=kube_version)
        fragments.append({"apiVersion": api_version, "kind": "ClusterConfiguration", "apiServer": api_server})
    config = merge(fragments, kube_version)
    pod_cidr = pod_subnet(variables)
    if pod_cidr:
        config["networking"] = {"podSubnet": pod_cidr}
    return config


def pod_subnet(variables):
    """POD_CIDR checked (one network, or an IPv4 and an IPv6 one comma-separated), or None when unset."""
    value = str(variables.get("POD_CIDR") or "").strip()
    if not value:
        return None
    try:
        for part in value.split(","):
            ipaddress.ip_network(part.strip())
    except ValueError as err:
        raise UserError(f"POD_CIDR={value}: {err}") from None
    return value


def files(variables, kube_version, out="build"):
    """{path relative to the output folder `out`: text} of the kubeadm folder; a bad variable is a
    UserError before anything is written."""
    from ..core import emit, podsecurity
    from . import audit

    problems = audit.check(audit.policy())
    if problems:  # a bug here, never the user's input
        raise UserError(f"the generated audit policy is invalid: {'; '.join(problems)}")
    config = patch(variables, kube_version)
    texts = {PATCH_FILE: _PATCH_HEADER.format(version=kube_version) + emit.to_yaml([config]),
             POLICY_FILE: audit.policy_text()}
    if _minor(kube_version) >= PSA_MIN_MINOR:
        texts[ADMISSION_FILE] = emit.to_yaml([podsecurity.admission_configuration(
            dict(variables, KUBE_VERSION=kube_version))])
    texts[NOTES_FILE] = notes(variables, kube_version, config, f"{out.rstrip('/')}/{FOLDER}")
    return {f"{FOLDER}/{name}": text for name, text in texts.items()}


def write(folder, variables, kube_version):
    """Write the kubeadm folder into `folder` (recorded in its list, k8s.core.build_dir) and remove the
    fragments older versions wrote at its top; returns the paths written."""
    from ..core import build_dir

    written, _ = build_dir.write(folder, files(variables, kube_version, folder), remove=build_dir.RETIRED)
    return written


def placements(variables, kube_version):
    """[(file, path on the nodes, how it gets there)] of the files the patch makes kube-apiserver read."""
    from ..core import podsecurity
    from . import audit, encryption_config

    found = [("the EncryptionConfiguration (it holds the key: never in build/)",
              encryption_config.config_path(variables), "`NODE=<node> make encryption_install`"),
             (POLICY_FILE, audit.settings(variables)["AUDIT_POLICY_PATH"], "`NODE=<node> make audit_install`")]
    if _minor(kube_version) >= PSA_MIN_MINOR:
        found.append((ADMISSION_FILE, podsecurity.DEFAULT_PATH,
                      f"by hand: scp it to the node, there `sudo install -D -m 0600 -o root -g root "
                      f"{ADMISSION_FILE} {podsecurity.DEFAULT_PATH}`"))
    return found


def notes(variables, kube_version, config, folder="build/kubeadm"):
    """NOTES.txt: which file goes where on which nodes, by which target, and the kubeadm commands."""
    from . import audit

    lines = [f"{folder}/: kube-apiserver's settings for kubeadm, Kubernetes {kube_version} "
             f"({config['apiVersion']}),",
             "written by render.py (make render, encryption_config, audit_policy, admission_config):",
             "change the variables and write it again rather than editing it.",
             "",
             "1. On EVERY control-plane node, before kube-apiserver runs with these settings (it does",
             "   not start while a file they name is missing) and before `kubeadm join --control-plane`:"]
    for what, path, how in placements(variables, kube_version):
        lines += [f"   - {what}", f"       to {path}", f"       {how}"]
    log_dir = audit.log_dir_of(audit.settings(variables))
    if log_dir:
        lines.append(f"   audit_install also makes the audit log folder {log_dir} (mounted writable).")
    patch_path = f"{folder}/{PATCH_FILE}"
    lines += [
        "",
        f"2. {PATCH_FILE}: one ClusterConfiguration, apiServer extraArgs and extraVolumes"
        + (" and networking.podSubnet (POD_CIDR)." if config.get("networking") else "."),
        f"   New cluster: `kubeadm init --config {patch_path}` (it replaces",
        "   --pod-network-cidr, which kubeadm refuses beside --config). kubeadm takes one",
        "   ClusterConfiguration: put your own settings into this file, or its apiServer part into yours.",
        "   Existing cluster: `kubeadm upgrade apply --config` takes no ClusterConfiguration (kubeadm",
        "   1.31+ ignores it there, 1.30 fails). Add the apiServer extraArgs and extraVolumes to",
        "   data.ClusterConfiguration in `kubectl -n kube-system edit configmap kubeadm-config` (later",
        "   upgrades keep them); then, after step 1, on each control-plane node write kube-apiserver's",
        "   manifest again: `kubeadm init phase control-plane apiserver --config <that ClusterConfiguration>`",
        "   (kubernetes.io, \"Reconfiguring a kubeadm cluster\").",
        "",
        "3. Encryption at rest: once every kube-apiserver runs with it, `STEP=rewrite make encryption_rotate`",
        "   stores the existing Secrets again, encrypted.",
    ]
    return "\n".join(lines) + "\n"


_PATCH_HEADER = ("# kubeadm ClusterConfiguration for Kubernetes {version}, written by render.py: encryption at\n"
                 "# rest, audit log and Pod Security admission for kube-apiserver. The files it names must be\n"
                 "# on every control-plane node first: see NOTES.txt beside it.\n")


def _minor(kube_version):
    from ..core.podsecurity import _minor as minor

    found = minor(kube_version)
    return 10**6 if found is None else found

"""Files kube-apiserver reads on a control-plane node: where one may be, the kubeadm fragment, the copy.

Encryption at rest (k8s.nodes.encryption_config) and audit logging
(k8s.nodes.audit) both put a file on the control-plane nodes and mount its
folder into kube-apiserver's container; this module is what they share:

  * node_file_problem: such a file must be an absolute path in a folder of
    its own (kubeadm mounts the whole folder);
  * cluster_configuration: the kubeadm ClusterConfiguration fragment with the
    kube-apiserver flags and extraVolumes, in the form the Kubernetes version takes;
  * copy_to_node: the content goes through ssh's standard input into
    `umask 077; sudo install -m 0600 -o root -g root /dev/stdin …`
    (install_command), so it is never written on this machine and never
    readable by others on the node, not even for a moment.

Variables: SSH_CONFIG, SSH_OPTIONS, REMOTE_SUDO (k8s.nodes.remote).

Only the standard library is imported at module level.
"""

import posixpath
import shlex
import subprocess

from ..errors import UserError


def node_file_problem(path):
    """Why `path` cannot be a control-plane file that kubeadm mounts its folder of, or None."""
    import posixpath

    if not path.startswith("/") or path.endswith("/") or not path.isprintable() or " " in path:
        return "must be an absolute file path without spaces"
    if posixpath.dirname(posixpath.normpath(path)) == "/":
        return "must be in a folder of its own: kubeadm mounts that folder into kube-apiserver's container"
    return None


def cluster_configuration(flags, volumes, kube_version=None):
    """A kubeadm ClusterConfiguration document with apiServer extraArgs `flags` and extraVolumes.

    Parameters:
        flags: [(name, value)] of kube-apiserver flags (values as strings).
        volumes: extraVolumes entries (name, hostPath, mountPath, readOnly, pathType).
        kube_version: v1beta4 (extraArgs as name/value list) from 1.31 or when unknown,
            v1beta3 (extraArgs as a map) before, as k8s.podsecurity decides.
    """
    from ..core.podsecurity import KUBEADM_V1BETA4_MINOR, _minor

    minor = _minor(kube_version)
    if minor is None or minor >= KUBEADM_V1BETA4_MINOR:
        api, args = "kubeadm.k8s.io/v1beta4", [{"name": n, "value": str(v)} for n, v in flags]
    else:
        api, args = "kubeadm.k8s.io/v1beta3", {n: str(v) for n, v in flags}
    return {"apiVersion": api, "kind": "ClusterConfiguration",
            "apiServer": {"extraArgs": args, "extraVolumes": list(volumes)}}


# --- copying a root-only file to a node -----------------------------------------------------------

def install_command(path, sudo, folders=()):
    """The remote shell command that stores its standard input as `path`, root-owned, mode 0600.

    umask 077 first, so nothing it creates is ever readable by others, not even for
    a moment; the file is written beside its target and renamed over it. Missing
    folders (the file's, and `folders`) are made with mode 0700; existing ones
    are left as they are.
    """
    folder = posixpath.dirname(path) or "/"
    temp = posixpath.join(folder, f".{posixpath.basename(path)}.new")
    steps = ["umask 077"]
    for directory in dict.fromkeys([folder, *folders]):
        steps.append(shlex.join([*sudo, "mkdir", "-p", "-m", "0700", "--", directory]))
    steps.append(shlex.join([*sudo, "install", "-T", "-m", "0600", "-o", "root", "-g", "root",
                             "--", "/dev/stdin", temp]))
    steps.append(shlex.join([*sudo, "mv", "-f", "-T", "--", temp, path]))
    return " && ".join(steps)


def copy_to_node(host, path, content, variables, folders=(), dry_run=False, scrub=None, timeout=120):
    """Stream `content` (bytes) through ssh's standard input into `path` on `host`.

    With `dry_run` the ssh command line is printed (the content is not: it only
    ever travels through the pipe) and nothing connects. A failure is one
    UserError line naming the host and ssh's exit status, as k8s.nodes.remote.run words it.
    """
    from . import remote

    command = install_command(path, remote.sudo_words(variables), folders)
    argv = remote.ssh_argv(host, command, variables)
    if dry_run:
        print(shlex.join(argv), flush=True)
        return False
    try:
        result = subprocess.run(argv, input=content, capture_output=True, timeout=timeout)
    except FileNotFoundError:
        raise UserError(f"ssh {host}: no ssh client ({remote.SSH}) found: install openssh-client") from None
    except subprocess.TimeoutExpired:
        raise UserError(f"ssh {host}: no answer within {timeout:g}s") from None
    if result.returncode != 0:
        err = result.stderr.decode("utf-8", "replace")
        lines = [line.strip() for line in err.splitlines() if line.strip()]
        detail = f": {lines[-1]}" if lines else ""
        what = "ssh" if result.returncode == 255 else "remote command"
        message = f"ssh {host}: {what} failed (exit status {result.returncode}){detail}"
        raise UserError(scrub(message) if scrub else message)
    return True

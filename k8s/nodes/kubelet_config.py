"""A node's kubelet configuration: `serverTLSBootstrap: true` in it, and kubelet restarted.

kubeadm writes each node's KubeletConfiguration to /var/lib/kubelet/config.yaml
(KUBELET_CONFIG_PATH) at `kubeadm join`, from the ConfigMap kube-system/kubelet-config;
a kubelet reads it when it starts. `enable_command` is the one remote shell command
(run with REMOTE_SUDO's words, over ssh: k8s.nodes.remote) that:

  * sets the top-level `serverTLSBootstrap:` line to `true`, or appends it;
  * leaves a file that already says `serverTLSBootstrap: true` untouched and kubelet
    running (it prints `unchanged`): run it twice and nothing happens the second time;
  * otherwise restarts kubelet (`systemctl restart kubelet`) and prints `restarted`:
    the kubelet then asks for a serving certificate (a kubelet-serving CSR).

A missing file is an error (exit 3): the node is not a kubeadm node, or the path is wrong.

Only the standard library is imported.
"""

import shlex

from . import remote

DEFAULT_PATH = "/var/lib/kubelet/config.yaml"
# $1 is the file. grep -x: the whole line; sed keeps the file's owner and mode (-i rewrites it).
SCRIPT = r"""f="$1"
[ -f "$f" ] || { echo "no $f: not a kubeadm node (KUBELET_CONFIG_PATH)" >&2; exit 3; }
if grep -Eqx 'serverTLSBootstrap:[[:space:]]*true[[:space:]]*' "$f"; then echo unchanged; exit 0; fi
if grep -Eq '^serverTLSBootstrap[[:space:]]*:' "$f"; then
  sed -i -E 's/^serverTLSBootstrap[[:space:]]*:.*$/serverTLSBootstrap: true/' "$f"
else
  [ -z "$(tail -c 1 "$f")" ] || echo >> "$f"
  echo 'serverTLSBootstrap: true' >> "$f"
fi
systemctl restart kubelet || { echo "$f has serverTLSBootstrap: true but kubelet did not restart: run systemctl restart kubelet there" >&2; exit 4; }
echo restarted"""


def config_path(variables):
    path = (variables.get("KUBELET_CONFIG_PATH") or DEFAULT_PATH).strip()
    if not path.startswith("/") or not path.isprintable():
        from ..errors import UserError

        raise UserError(f"KUBELET_CONFIG_PATH must be an absolute path, got {path!r}")
    return path


def enable_command(variables):
    """The remote shell command line (quoted) that turns serverTLSBootstrap on and restarts kubelet."""
    return shlex.join([*remote.sudo_words(variables), "sh", "-c", SCRIPT, "sh", config_path(variables)])


def enable(host, variables, dry_run=False, timeout=120):
    """Turn serverTLSBootstrap on `host`: "restarted" or "unchanged"; with `dry_run` the ssh
    command line is printed and nothing connects ("dry run")."""
    command = enable_command(variables)
    if dry_run:
        print(shlex.join(remote.ssh_argv(host, command, variables)), flush=True)
        return "dry run"
    result = remote.run(host, command, variables, timeout=timeout)
    words = result.stdout.split()
    return words[-1] if words else "restarted"

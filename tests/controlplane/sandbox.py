"""`make sandbox` and `make sandbox_down`: a real control plane to try the toolkit on.

    python -m tests.controlplane.sandbox up [--dir .sandbox]     # prints export KUBECONFIG=...
    python -m tests.controlplane.sandbox down [--dir .sandbox]

The processes outlive the command (their pids are in DIR/pids) until `down` stops them.
The nodes are K8S_NODES of Makefile.vars (or VARS_FILE); the first is the control plane.
"""

import argparse
import os
import shutil
import signal
import sys
import time

from .harness import ControlPlane, write_toolkit_configs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def node_names():
    from k8s.core import variables

    values = variables.load_variables(os.path.join(ROOT, "Makefile.vars"))  # VARS_FILE too, as make reads it
    names = values.get("K8S_NODES")
    return (names.value.split() if names else []) or ["kube1"]


def running(pids_file):
    try:
        with open(pids_file) as f:
            pids = [int(line.split()[1]) for line in f if line.strip()]
    except (OSError, ValueError, IndexError):
        return []
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
            alive.append(pid)
        except OSError:
            pass
    return alive


def up(directory):
    pids_file = os.path.join(directory, "pids")
    kubeconfig = os.path.join(directory, "admin.conf")
    if running(pids_file):
        print(f"the sandbox is already running; to use it:\n  export KUBECONFIG={kubeconfig}")
        return 0
    shutil.rmtree(directory, ignore_errors=True)
    encryption_config, audit_policy = write_toolkit_configs(os.path.join(directory, "config"))
    nodes = node_names()
    plane = ControlPlane(directory, nodes=nodes, control_plane_nodes=nodes[:1],
                         encryption_config=encryption_config, audit_policy=audit_policy, die_with_parent=False)
    print(f"starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler and nodes "
          f"{', '.join(nodes)} in {directory} ...", flush=True)
    try:
        plane.start()
    except RuntimeError as err:
        print(f"sandbox: {err}", file=sys.stderr)
        return 1
    with open(pids_file, "w") as f:
        f.writelines(f"{name} {proc.pid}\n" for name, proc in plane.processes.items())
    print(f"the sandbox runs at {plane.url} (logs in {directory}); to use it:\n"
          f"  export KUBECONFIG={kubeconfig}\n"
          "then `make install`, `make diff`, ...; `make sandbox_down` stops it")
    return 0


def down(directory):
    pids = running(os.path.join(directory, "pids"))
    for pid in reversed(pids):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if _alive(pid)]
        time.sleep(0.1)
    for pid in pids:
        os.killpg(pid, signal.SIGKILL)
    shutil.rmtree(directory, ignore_errors=True)
    print("the sandbox is stopped")
    return 0


def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.controlplane.sandbox")
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("--dir", default=os.path.join(ROOT, ".sandbox"))
    args = parser.parse_args(argv)
    directory = os.path.abspath(args.dir)
    return up(directory) if args.action == "up" else down(directory)


if __name__ == "__main__":
    sys.exit(main())

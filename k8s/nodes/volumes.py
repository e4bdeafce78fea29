"""Volumes: node-local PersistentVolumes and their directories, from the layout in volumes/.

Every node of `K8S_NODES` holds the same tree under `root` (`$K8S_VOLUMES_PATH`):

    <root>/pool-s/pv-500Mi-0001 ... pv-500Mi-0030   a pool: `count` volumes of `size`
    <root>/pool-m/pv-8Gi-0001 ...                   another pool
    <root>/admin, <root>/backup, <root>/share        named volumes, one per node each
    <root>/mythtv                                    a volume on some nodes only (`nodes:`)

`volumes/layout.yaml` says so (see the file), `volumes/claims.yaml` optionally
adds PersistentVolumeClaims bound to those volumes. Both take variables like
the manifests do. This module reads and checks them and renders the objects;
the commands are in `k8s.commands.volumes`, deleting what the layout no longer
has (`persistent --prune`) in `volume_prune`. The records are in
`volume_layout`, the reading in `volume_reader`, `volume_entries` and `volume_claims`:

* `render.py persistent [NODE...]` renders one PersistentVolume per volume per
  node, named `<short node name>-<volume>` (pool volumes lowercased, as
  `kube1-pv-500mi-0001`), labelled `volume.group` (the pool or volume name) and
  `volume.id` (a hash of node and path: the same on every run and every
  machine), with node affinity on `kubernetes.io/hostname`, and applies them
  and the claims with the apply engine in one run. Nothing in the output
  depends on when or where it runs, so a second run changes nothing.
* `render.py persistent-dirs NODE` creates that node's directories over one
  ssh connection (see `remote`).

`render.py --help` imports this module (through `k8s.commands.volumes`) to list its
commands, so what it imports at module level is the standard library's
cheapest part only (no dataclasses, hashlib or decimal until a command runs).
"""

import os
import posixpath
import shlex

from ..errors import UsageError, UserError, raise_all
from .volume_claims import _read_claims
from .volume_entries import _check_names, _check_object_names, _check_paths, _read_pools, _read_volumes
from .volume_layout import (_CONTROL, ACCESS_MODES, CLAIMS_FILE, COMPONENT, GROUP_LABEL, HOSTNAME_LABEL,  # noqa: F401
                            ID_LABEL, LAYOUT_FILE, STORAGE_CLASS, Layout, node_list, parse_quantity, volume_id)
from .volume_reader import _load_document


def load(directory, variables, need_claims=True):
    """The checked layout of `directory` (layout.yaml and the optional claims.yaml).

    Parameters:
        directory: the volumes/ folder.
        variables: name -> value.
        need_claims: read claims.yaml too.

    Every problem of the files is raised at once, one line each.
    """
    nodes = node_list(variables)
    path = os.path.join(directory, LAYOUT_FILE)
    if not os.path.isfile(path):
        raise UserError(f"no volume layout: {path} not found")
    data, reader = _load_document(path, variables)
    data = reader.mapping(data, [], "the layout", ("root", "pools", "volumes"))
    raise_all(reader.errors)
    layout = Layout(root="", nodes=nodes, file=path)
    root = reader.string(data.get("root"), ["root"], "root")
    if root is not None:
        normalized = posixpath.normpath(root)
        if _CONTROL.search(root):
            reader.error(["root"], f"root {root!r}{reader.origin(['root'])} contains a control character")
        elif not root.startswith("/") or normalized == "/":
            reader.error(["root"], f"root must be an absolute directory other than /, "
                                   f"got {reader.shown(root, ['root'])}")
        layout.root = normalized
    raise_all(reader.errors)
    _read_pools(reader, data.get("pools"), layout)
    _read_volumes(reader, data.get("volumes"), layout)
    _check_names(reader, layout)
    _check_paths(reader, layout)
    _check_object_names(reader, layout)
    raise_all(reader.errors)
    claims_path = os.path.join(directory, CLAIMS_FILE)
    if need_claims and os.path.isfile(claims_path):
        layout.claims = _read_claims(claims_path, variables, layout)
    return layout


def select_nodes(layout, names):
    """The K8S_NODES entries `names` mean (all of them for none), in K8S_NODES order."""
    if not names:
        return list(layout.nodes)
    chosen, errors = set(), []
    for name in names:
        node = layout.resolve_node(name)
        if node is None:
            errors.append(UsageError(f"node {name} is not in K8S_NODES ({' '.join(layout.nodes)})"))
        chosen.add(node)
    raise_all(errors)
    return [n for n in layout.nodes if n in chosen]


def persistent_volume(volume):
    """The PersistentVolume of one volume, as a plain dict."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": volume.pv_name,
            "labels": {GROUP_LABEL: volume.group, ID_LABEL: volume.volume_id},
        },
        "spec": {
            "capacity": {"storage": volume.size},
            "accessModes": list(ACCESS_MODES),
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": STORAGE_CLASS,
            "local": {"path": volume.path},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": HOSTNAME_LABEL, "operator": "In", "values": [volume.node]}]}]}},
        },
    }


def persistent_volume_claim(claim):
    """The PersistentVolumeClaim of one claim: bound by volume.id to one node's volume, else by
    volume.group to any node's, as the original persistent-claim.yaml did."""
    if claim.node:
        selector = {ID_LABEL: volume_id(claim.node, claim.entry.path)}
    else:
        selector = {GROUP_LABEL: claim.entry.name}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": claim.name, "namespace": claim.namespace,
                     "labels": {GROUP_LABEL: claim.entry.name}},
        "spec": {
            "accessModes": list(claim.access_modes),
            "resources": {"requests": {"storage": claim.size}},
            "storageClassName": STORAGE_CLASS,
            "selector": {"matchLabels": selector},
        },
    }


def render(layout, nodes):
    """RenderedObjects: the PersistentVolumes of `nodes` (node by node), then every claim."""
    from ..core.render import RenderedObject

    objects, ids = [], {}
    for node in nodes:
        for volume in layout.volumes(node):
            entry = volume.entry
            data = persistent_volume(volume)
            other = ids.setdefault(data["metadata"]["labels"][ID_LABEL], volume)
            if other is not volume:  # 48 bits: never seen, but a collision must not go unnoticed
                raise UserError(f"volumes {other.pv_name} and {volume.pv_name} have the same "
                                f"{ID_LABEL}", file=entry.file, line=entry.line)
            objects.append(RenderedObject(data, COMPONENT, entry.where))
    for claim in layout.claims:
        objects.append(RenderedObject(persistent_volume_claim(claim), COMPONENT, claim.where,
                                      default_namespace=claim.namespace))
    return objects


def mkdir_command(layout, node, sudo):
    """The shell command line that creates `node`'s tree; every path shell-quoted.

    Parameters:
        sudo: the words to put before each command (["sudo"], or [] for none).
    """
    directories = layout.directories(node)
    prefix = shlex.join(sudo) + " " if sudo else ""
    # mkdir -p makes the parents: name only the deepest directories, in layout order.
    parents = {posixpath.dirname(path) for path, _, _ in directories}
    leaves = list(dict.fromkeys(path for path, _, _ in directories if path not in parents))
    commands = [f"{prefix}mkdir -p -- {' '.join(shlex.quote(p) for p in leaves)}"]
    for attribute, verb in ((2, "chown"), (1, "chmod")):  # chown clears setgid bits: chmod after
        by_value = {}
        for directory in directories:
            if directory[attribute] is not None:
                by_value.setdefault(directory[attribute], []).append(directory[0])
        for value, group in by_value.items():
            text = f"{value:04o}" if verb == "chmod" else value
            commands.append(f"{prefix}{verb} {shlex.quote(text)} -- {' '.join(shlex.quote(p) for p in group)}")
    return " && ".join(commands)

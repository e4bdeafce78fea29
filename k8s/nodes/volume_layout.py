"""The volume layout as records: pools, named volumes, claims, on which nodes and where.

What volumes/layout.yaml and claims.yaml describe once read and checked
(`volume_reader`, `volume_entries`, `volume_claims` fill them in): the records,
the naming rules they follow (`short_name`, `volume_id`, `POOL_VOLUME`), the
quantities sizes are written in, and `Where` a record came from, for errors.
Standard library only at module level: `render.py --help` imports it.
"""

import re

from ..errors import UserError, raise_all

COMPONENT = "persistent"  # the k8s-toolkit/component label of everything `persistent` applies
LAYOUT_FILE = "layout.yaml"
CLAIMS_FILE = "claims.yaml"

STORAGE_CLASS = "local-storage"
HOSTNAME_LABEL = "kubernetes.io/hostname"
GROUP_LABEL = "volume.group"
ID_LABEL = "volume.id"
ACCESS_MODES = ("ReadWriteMany", "ReadWriteOnce")  # as the original persistent-item.yaml offered
POOL_MODE = 0o700  # pool directories: only root walks into them, kubelet bind-mounts the volumes
POOL_VOLUME = "pv-{size}-{index:04d}"  # the original's `seq -f pv-$SIZE-%04g`

# k8s.io/apimachinery resource.Quantity: a number and an SI, binary SI or exponent suffix.
_QUANTITY = re.compile(r"\+?([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][-+]?[0-9]+)?")
_SUFFIX = {"": 0, "n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_NODE_NAME = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*")  # a DNS-1123 subdomain
_VOLUME_NAME = _NODE_NAME  # a PV name part (DNS-1123 subdomain) and a label value (at most 63)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # no place in a path, a PV or a command line
MAX_COUNT = 10000  # volumes in one pool: far more than a node holds, few enough to render at once
MAX_NAME = 253  # a PersistentVolume's name: a DNS-1123 subdomain
MAX_LABEL_VALUE = 63
_OWNER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")  # a user or group name, or a number


def parse_quantity(text):
    """A Kubernetes quantity (`500Mi`, `8Gi`, `1.5T`, `2e9`) as a Decimal, or None if invalid."""
    from decimal import Decimal, InvalidOperation

    m = _QUANTITY.fullmatch(text) if isinstance(text, str) else None
    if not m:
        return None
    number, suffix = Decimal(m.group(1)), m.group(2) or ""
    if suffix in _BINARY:
        return number * (1 << _BINARY[suffix])
    if suffix in _SUFFIX:
        return number.scaleb(_SUFFIX[suffix])
    try:
        return number.scaleb(int(suffix[1:]))
    except (InvalidOperation, ValueError, OverflowError):
        return None


class _Record:
    """Attributes from the constructor's arguments, in `__slots__` order."""

    __slots__ = ()

    def __init__(self, *args, **kwargs):
        for name, value in zip(self.__slots__, args):
            setattr(self, name, value)
        for name in self.__slots__[len(args):]:
            setattr(self, name, kwargs.pop(name, self._defaults.get(name)))
        if kwargs:
            raise TypeError(f"unknown fields {', '.join(kwargs)}")

    _defaults = {}

    def __repr__(self):
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__ if n not in ("entry", "where"))
        return f"{type(self).__name__}({fields})"


class Entry(_Record):
    """One pool or volume entry of layout.yaml, checked.

    Attributes:
        kind: "pool" or "volume".
        name: the pool's or volume's name: its directory and its volume.group label.
        size: capacity of each volume (a quantity).
        path: the pool's directory, or the volume's.
        count: volumes in a pool.
        nodes: the nodes a volume is on; None means every node.
        mode: permission bits for `path`, or None to leave them.
        owner: `user`, `user:group` or `:group` for `path`, or None.
        where: the entry's place in its file (`file`, `line`).
    """

    __slots__ = ("kind", "name", "size", "path", "count", "nodes", "mode", "owner", "where")
    _defaults = {"count": 1}

    @property
    def file(self):
        return self.where.file

    @property
    def line(self):
        return self.where.line


class Volume(_Record):
    """One volume on one node: what its PersistentVolume says.

    Attributes: node, name (pv-500Mi-0001, share), path, size, entry (its Entry).
    """

    __slots__ = ("node", "name", "path", "size", "entry")

    @property
    def group(self):
        return self.entry.name

    @property
    def pv_name(self):
        return f"{short_name(self.node)}-{self.name.lower()}"

    @property
    def volume_id(self):
        return volume_id(self.node, self.path)


class Claim(_Record):
    """One PersistentVolumeClaim of claims.yaml, checked.

    Attributes: name, namespace, entry (the pool or volume it binds to), node (bind to
    that node's volume exactly, by volume.id; None: any node's, by volume.group), size,
    access_modes, where.
    """

    __slots__ = ("name", "namespace", "entry", "node", "size", "access_modes", "where")


class Layout:
    """The checked layout: root, nodes (K8S_NODES, in order), entries, claims, file."""

    def __init__(self, root, nodes, file=""):
        self.root, self.nodes, self.file = root, nodes, file
        self.entries, self.claims = [], []

    def volumes(self, node):
        """The volumes of `node`, pools first, in layout order."""
        found = []
        for entry in self.entries:
            if entry.kind == "pool":
                for i in range(1, entry.count + 1):
                    name = POOL_VOLUME.format(size=entry.size, index=i)
                    found.append(Volume(node, name, f"{entry.path}/{name}", entry.size, entry))
            elif entry.nodes is None or node in entry.nodes:
                found.append(Volume(node, entry.name, entry.path, entry.size, entry))
        return found

    def directories(self, node):
        """(path, mode, owner) of every directory of `node`'s tree, parents first."""
        found = [(self.root, None, None)]
        for entry in self.entries:
            if entry.kind == "pool":
                found.append((entry.path, entry.mode, entry.owner))
                found.extend((v.path, None, None) for v in self.volumes_of(entry, node))
            elif entry.nodes is None or node in entry.nodes:
                found.append((entry.path, entry.mode, entry.owner))
        return found

    def volumes_of(self, entry, node):
        return [v for v in self.volumes(node) if v.entry is entry]

    def resolve_node(self, name):
        """The K8S_NODES entry `name` means (exact, or its short name); None if none."""
        if name in self.nodes:
            return name
        matches = [n for n in self.nodes if short_name(n) == name]
        return matches[0] if len(matches) == 1 else None


def short_name(node):
    return node.split(".", 1)[0]


def volume_id(node, path):
    """The volume.id label: the same for the same node and path, whenever and wherever rendered."""
    import hashlib

    return hashlib.sha256(f"{node}\0{path}".encode()).hexdigest()[:12]


def node_list(variables):
    """K8S_NODES as a list; each a Kubernetes node name, no duplicates, distinct short names."""
    text = variables.get("K8S_NODES")
    if text is None or not text.split():
        raise UserError("K8S_NODES is empty: set it to the cluster's node names")
    nodes, errors, shorts = [], [], {}
    for node in text.split():
        if len(node) > 253 or not _NODE_NAME.fullmatch(node):
            errors.append(UserError(f"K8S_NODES: {node!r} is not a Kubernetes node name "
                                    "(lowercase letters, digits, '-' and '.')"))
        elif node in nodes:
            errors.append(UserError(f"K8S_NODES: node {node} is listed twice"))
        elif short_name(node) in shorts:
            errors.append(UserError(f"K8S_NODES: nodes {shorts[short_name(node)]} and {node} have the same "
                                    f"short name {short_name(node)}: their volume names would collide"))
        else:
            nodes.append(node)
            shorts[short_name(node)] = node
    raise_all(errors)
    return nodes


class Where:
    """A place in a volumes/ file: `file`, and `line`, found when first asked for (finding
    it parses the file again). Serves as the source of the objects made from it."""

    __slots__ = ("reader", "path", "_line")

    def __init__(self, reader, path):
        self.reader, self.path, self._line = reader, list(path), None

    @property
    def file(self):
        return self.reader.file

    @property
    def line(self):
        if self._line is None:
            self._line = self.reader.line(self.path) or 1
        return self._line

    def locate(self, path):  # every field of an object made from an entry is on the entry's line
        return self.line

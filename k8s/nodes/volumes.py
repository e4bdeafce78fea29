"""Volumes: node-local PersistentVolumes and their directories, from the layout in volumes/.

Every node of `K8S_NODES` holds the same tree under `root` (`$K8S_VOLUMES_PATH`):

    <root>/pool-s/pv-500Mi-0001 ... pv-500Mi-0030   a pool: `count` volumes of `size`
    <root>/pool-m/pv-8Gi-0001 ...                   another pool
    <root>/admin, <root>/backup, <root>/share        named volumes, one per node each
    <root>/mythtv                                    a volume on some nodes only (`nodes:`)

`volumes/layout.yaml` says so (see the file), `volumes/claims.yaml` optionally
adds PersistentVolumeClaims bound to those volumes. Both take variables like
the manifests do. This module reads and checks them and renders the objects;
the commands are in `k8s.volumes_cli`:

* `render.py persistent [NODE...]` renders one PersistentVolume per volume per
  node, named `<short node name>-<volume>` (pool volumes lowercased, as
  `kube1-pv-500mi-0001`), labelled `volume.group` (the pool or volume name) and
  `volume.id` (a hash of node and path: the same on every run and every
  machine), with node affinity on `kubernetes.io/hostname`, and applies them
  and the claims with the apply engine in one run. Nothing in the output
  depends on when or where it runs, so a second run changes nothing.
* `render.py persistent-dirs NODE` creates that node's directories over one
  ssh connection (see `remote`).

`render.py --help` imports this module (through `k8s.volumes_cli`) to list its
commands, so what it imports at module level is the standard library's
cheapest part only (no dataclasses, hashlib or decimal until a command runs).
"""

import os
import posixpath
import re
import shlex

from ..errors import UsageError, UserError, raise_all

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


# --- quantities --------------------------------------------------------------

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


# --- the layout --------------------------------------------------------------

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


class _Reader:
    """Typed access to one YAML document's fields, with errors that name the line."""

    def __init__(self, file, text, raw_text, doc_index, data=None):
        self.file, self.text, self.raw, self.doc_index = file, text, raw_text, doc_index
        self.data, self._unexpanded = data, False
        self.errors = []

    def line(self, path):
        from ..core import kubeyaml

        return kubeyaml.line_of(self.text, self.file, self.doc_index, self._text_path(path))

    def _text_path(self, path):
        """`path` (keys of the expanded data) as keys of `text`: a key with a variable
        (`kube1.$DOMAIN:`) is found by its position in its mapping."""
        if self._unexpanded is False:
            from ..core import kubeyaml

            try:
                docs = kubeyaml.load_all(self.text, self.file)
                self._unexpanded = next((d.data for d in docs if d.index == self.doc_index), None)
            except UserError:
                self._unexpanded = None
        node, raw, found = self.data, self._unexpanded, []
        for key in path:
            if isinstance(node, dict) and isinstance(raw, dict) and key in node and len(node) == len(raw):
                raw_key = list(raw)[list(node).index(key)]
                node, raw = node[key], raw[raw_key]
                found.append(raw_key)
            elif isinstance(node, list) and isinstance(raw, list) and isinstance(key, int) \
                    and 0 <= key < min(len(node), len(raw)):
                node, raw = node[key], raw[key]
                found.append(key)
            else:
                return found + list(path[len(found):])
        return found

    def error(self, path, message):
        self.errors.append(UserError(message, file=self.file, line=self.line(path)))

    def origin(self, path):
        """` (from $NAME)` when the line of `path` in the file refers to one variable, else ""."""
        from ..core import substitute

        line = self.line(path)
        lines = self.raw.splitlines()
        refs = substitute.references(lines[line - 1]) if line and line <= len(lines) else []
        return f" (from ${refs[0].name})" if len(refs) == 1 else ""

    def shown(self, value, path):
        """`value` as an error shows it, and the variable it came from."""
        return _show(value) + self.origin(path)

    def mapping(self, value, path, what, allowed):
        """`value` if it is a mapping of `allowed` keys only, else None (and the errors)."""
        if not isinstance(value, dict):
            self.error(path, f"{what} must be a mapping, got {_type(value)}")
            return None
        unknown = [key for key in value if key not in allowed]
        for key in unknown:
            self.error(path + [key], f"{what}: unknown field {key!r} (known: {', '.join(allowed)})")
        return None if unknown else value

    def string(self, value, path, what, required=True):
        if value is None and not required:
            return None
        if value == "":
            self.error(path, f"{what} is empty{self.origin(path)}")
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            self.error(path, f"{what} must be a string, got {_type(value)}{self.origin(path)}")
            return None
        return str(value)

    def words(self, value, path, what):
        """A list of strings, or one string of space-separated words."""
        if isinstance(value, str):
            return value.split()
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return [w for v in value for w in v.split()]
        self.error(path, f"{what} must be a list of names or a string of space-separated names, "
                         f"got {_type(value)}{self.origin(path)}")
        return None

    def count(self, value, path, what):
        """A decimal count: `30`, or `"0030"` (as `seq` read the original POOL_NUM_SMALL)."""
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip(), 10)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.error(path, f"{what} must be a whole number, got {self.shown(value, path)}")
            return None
        return value

    def quantity(self, value, path, what):
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        amount = parse_quantity(value)
        if amount is None:
            self.error(path, f"{what}: size {self.shown(value, path)} is not a Kubernetes quantity "
                             "such as 500Mi, 8Gi or 1Ti")
            return None
        if amount <= 0:
            self.error(path, f"{what}: size must be more than zero, got {self.shown(value, path)}")
            return None
        return value

    def mode(self, value, path, what):
        """Permission bits: `0700` unquoted (YAML reads it as octal) or a string of octal digits."""
        if value is None:
            return None
        if isinstance(value, str) and re.fullmatch(r"0?[0-7]{3,4}", value):
            return int(value, 8)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0o777:
            written = self._written_number(path)
            if written and written[0] != "0":  # `mode: 500` is decimal 500, 0764: never what was meant
                self.error(path, f"{what}: mode {written}{self.origin(path)} is the decimal number {value} "
                                 f"(0{value:o}); write permission bits in octal, such as 0{written}")
                return None
            return value
        hint = f"; write 0{value} or \"0{value}\"" if isinstance(value, int) and \
            re.fullmatch(r"[0-7]{3}", str(value)) else ""
        self.error(path, f"{what}: mode {self.shown(value, path)} is not octal permission bits such as "
                         f"0700{hint}")
        return None

    def _written_number(self, path):
        """The digits a number at `path` is written with in the file, if they can be found."""
        line = self.line(path)
        lines = self.text.splitlines()
        if not path or not line or line > len(lines):
            return None
        match = re.search(rf"(?:^|[\s{{,]){re.escape(str(path[-1]))}:\s*([0-9][0-9_]*)\b", lines[line - 1])
        return match and match.group(1)

    def owner(self, value, path, what):
        """`user`, `user:group` or `:group`; names or numeric ids."""
        if value is None:
            return None
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if isinstance(text, str):
            user, _, group = text.partition(":")
            if (user or group) and all(not part or _OWNER.fullmatch(part) for part in (user, group)):
                return text
        self.error(path, f"{what}: owner {self.shown(value, path)} is not user, user:group or :group")
        return None


def _type(value):
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "nothing"}.get(type(value), type(value).__name__)


def _show(value):
    """A value as an error message shows it: "text", 42, true, nothing, [...]."""
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _load_document(path, variables):
    """The one mapping a volumes/ file holds, with its reader; None if the file is empty."""
    from ..core.files import read_text
    from ..core.render import render_file

    try:
        raw = read_text(path)
    except OSError as err:
        raise UserError(f"cannot read it: {err.strerror}", file=path) from None
    docs, text = render_file(path, variables)
    docs = [d for d in docs if d.data is not None]
    if len(docs) > 1:
        raise UserError("expected one YAML document, found several", file=path, line=docs[1].line)
    if not docs:
        return None, _Reader(path, text, raw, 0)
    return docs[0].data, _Reader(path, text, raw, docs[0].index, docs[0].data)


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


def _entry_list(reader, value, key):
    if value is None:
        return []
    if not isinstance(value, list):
        reader.error([key], f"{key} must be a list, got {_type(value)}")
        return []
    return value


def _entry_what(item, kind, index):
    """How errors name an entry: `volume share`, else `volumes[2]`."""
    name = item.get("name") if isinstance(item, dict) else None
    return f"{kind} {name}" if isinstance(name, str) and name else f"{kind}s[{index}]"


def _read_pools(reader, value, layout):
    for i, item in enumerate(_entry_list(reader, value, "pools")):
        at, errors = ["pools", i], len(reader.errors)
        item = reader.mapping(item, at, _entry_what(item, "pool", i), ("name", "count", "size", "mode", "owner"))
        if item is None:
            continue
        name = reader.string(item.get("name"), at + ["name"], f"pools[{i}].name")
        what = f"pool {name or i}"
        if name is not None:
            _valid_name(reader, name, at + ["name"], "pool")
        count = reader.count(item.get("count"), at + ["count"], f"{what}: count")
        if count is not None and count > MAX_COUNT:
            reader.error(at + ["count"], f"{what}: count {count}{reader.origin(at + ['count'])} is more "
                                         f"than {MAX_COUNT} volumes")
            count = None
        size = reader.quantity(item.get("size"), at + ["size"], what)
        mode = reader.mode(item.get("mode", f"{POOL_MODE:04o}"), at + ["mode"], what)
        owner = reader.owner(item.get("owner"), at + ["owner"], what)
        if size is not None:
            _valid_name(reader, POOL_VOLUME.format(size=size, index=1).lower(), at + ["size"],
                        f"{what} volume")
        if len(reader.errors) > errors:
            continue
        layout.entries.append(Entry("pool", name, size, f"{layout.root}/{name}", count, None, mode, owner,
                                    Where(reader, at)))


def _read_volumes(reader, value, layout):
    for i, item in enumerate(_entry_list(reader, value, "volumes")):
        at, errors = ["volumes", i], len(reader.errors)
        item = reader.mapping(item, at, _entry_what(item, "volume", i),
                              ("name", "names", "size", "nodes", "path", "mode", "owner"))
        if item is None:
            continue
        if ("name" in item) == ("names" in item):
            reader.error(at, f"volumes[{i}] needs either name (one volume) or names (several)")
            continue
        key = "name" if "name" in item else "names"
        if key == "name":
            name = reader.string(item["name"], at + [key], f"volumes[{i}].name")
            names = [name] if name is not None else []
        else:
            names = reader.words(item["names"], at + [key], f"volumes[{i}].names") or []
        if not names:
            continue  # `names: $NAMED_VOLUMES` with nothing in it: no volumes
        what = f"volume{'s' if len(names) > 1 else ''} {' '.join(names)}"
        for name in names:
            _valid_name(reader, name, at + [key], "volume")
        size = reader.quantity(item.get("size"), at + ["size"], what)
        mode = reader.mode(item.get("mode"), at + ["mode"], what)
        owner = reader.owner(item.get("owner"), at + ["owner"], what)
        nodes = None
        if item.get("nodes") is not None:
            nodes = _entry_nodes(reader, item["nodes"], at + ["nodes"], what, layout)
        path = None
        if item.get("path") is not None:
            if len(names) > 1:
                reader.error(at + ["path"], f"{what}: path needs a single name")
            else:
                path = _volume_path(reader, item["path"], at + ["path"], what, layout)
        if len(reader.errors) > errors:
            continue
        where = Where(reader, at)
        for name in names:
            layout.entries.append(Entry("volume", name, size, path or f"{layout.root}/{name}", 1, nodes,
                                        mode, owner, where))


def _entry_nodes(reader, value, path, what, layout):
    names = reader.words(value, path, f"{what}: nodes")
    if names is None:
        return None
    nodes = []
    for name in names:
        node = layout.resolve_node(name)
        if node is None:
            reader.error(path, f"{what}: node {name} is not in K8S_NODES ({' '.join(layout.nodes)})")
            return None
        if node not in nodes:
            nodes.append(node)
    return tuple(nodes)


def _volume_path(reader, value, path, what, layout):
    text = reader.string(value, path, f"{what}: path")
    if text is None:
        return None
    if _CONTROL.search(text):
        reader.error(path, f"{what}: path {text!r}{reader.origin(path)} contains a control character")
        return None
    normalized = posixpath.normpath(text)
    if not text.startswith("/") or not normalized.startswith(layout.root + "/"):
        reader.error(path, f"{what}: path {text}{reader.origin(path)} is outside K8S_VOLUMES_PATH "
                           f"({layout.root})")
        return None
    return normalized


def _valid_name(reader, name, path, what):
    if len(name) <= 63 and _VOLUME_NAME.fullmatch(name):
        return True
    reader.error(path, f"invalid {what} name {name!r}{reader.origin(path)}: use at most 63 lowercase "
                       "letters, digits, '-' and '.', starting and ending with a letter or digit")
    return False


def _check_names(reader, layout):
    seen = {}
    for entry in layout.entries:
        first = seen.setdefault(entry.name, entry)
        if first is not entry:
            also = reader.origin(entry.where.path) if first.line == entry.line else \
                f" (also on line {first.line})"
            reader.errors.append(UserError(f"duplicate volume name {entry.name}{also}",
                                           file=entry.file, line=entry.line))
    # Pool volumes are named by size (pv-500mi-0001): another pool of that size, or a volume
    # called like one of them, would get the same PV names.
    pv_names, reported = {}, set()
    for entry in layout.entries:
        if entry.kind == "pool":
            names = [POOL_VOLUME.format(size=entry.size, index=i) for i in range(1, entry.count + 1)]
        else:
            names = [entry.name]
        for name in names:
            name_of, other = pv_names.setdefault(name.lower(), (name, entry))
            if other is entry or other.name == entry.name or (id(other), id(entry)) in reported:
                continue  # the same entry, or a duplicate name (reported as such)
            reported.add((id(other), id(entry)))
            if entry.kind == other.kind == "pool":
                message = (f"pools {other.name} and {entry.name} both hold volumes of size {entry.size}: "
                           f"their PersistentVolume names ({name.lower()}, ...) would be the same")
            else:
                message = (f"volume {name} has the same PersistentVolume name as {name_of} of "
                           f"{other.kind} {other.name}")
            reader.errors.append(UserError(message, file=entry.file, line=entry.line))


def _check_object_names(reader, layout):
    """Every PersistentVolume name a DNS-1123 subdomain of at most 253 characters, every
    label value at most 63: the node's short name and the volume's come together only here."""
    for entry in layout.entries:
        last = POOL_VOLUME.format(size=entry.size, index=entry.count) if entry.kind == "pool" else entry.name
        for node in layout.nodes if entry.nodes is None else entry.nodes:
            volume = Volume(node, last, entry.path, entry.size, entry)
            name = volume.pv_name
            problem = None
            if len(name) > MAX_NAME:
                problem = f"PersistentVolume name {_clip(name)} has {len(name)} characters, more than {MAX_NAME}"
            elif not _NODE_NAME.fullmatch(name):
                problem = f"PersistentVolume name {name!r} is not a DNS-1123 subdomain"
            elif len(volume.group) > MAX_LABEL_VALUE:
                problem = f"label {GROUP_LABEL}={volume.group} is longer than {MAX_LABEL_VALUE} characters"
            if problem:
                reader.errors.append(UserError(f"{entry.kind} {entry.name} on node {_clip(node)}: {problem}",
                                               file=entry.file, line=entry.line))
                break


def _clip(text, keep=40):
    return text if len(text) <= keep else f"{text[:keep]}..."


def _check_paths(reader, layout):
    """No directory may be another's, or inside another volume: a PV would hold another's data."""
    items = []  # (path parts, entry, is a pool's directory)
    for entry in layout.entries:
        items.append((tuple(entry.path.split("/")), entry, entry.kind == "pool"))
    items.sort(key=lambda item: item[0])
    for (parts_a, a, pool_a), (parts_b, b, _) in zip(items, items[1:]):
        if a.name == b.name:
            continue  # a duplicate name: reported as such
        if parts_a == parts_b:
            reader.errors.append(UserError(f"{b.kind} {b.name}: path {b.path} is also the path of "
                                           f"{a.kind} {a.name}", file=b.file, line=b.line))
        elif parts_b[:len(parts_a)] == parts_a:
            inside = f"pool {a.name}'s directory" if pool_a else f"volume {a.name}"
            reader.errors.append(UserError(f"{b.kind} {b.name}: path {b.path} is inside {inside}",
                                           file=b.file, line=b.line))


def _read_claims(path, variables, layout):
    data, reader = _load_document(path, variables)
    if data is None:
        return []
    data = reader.mapping(data, [], "the claims file", ("claims",))
    raise_all(reader.errors)
    by_name = {e.name: e for e in layout.entries}
    claims, seen = [], {}
    default_namespace = variables.get("K8S_NAMESPACE") or "default"
    for i, item in enumerate(_entry_list(reader, data.get("claims"), "claims")):
        at = ["claims", i]
        item = reader.mapping(item, at, _entry_what(item, "claim", i),
                              ("name", "namespace", "volume", "node", "size", "accessModes"))
        if item is None:
            continue
        name = reader.string(item.get("name"), at + ["name"], f"claims[{i}].name")
        what = f"claim {name or i}"
        namespace = reader.string(item.get("namespace", default_namespace), at + ["namespace"],
                                  f"{what}: namespace")
        volume = reader.string(item.get("volume"), at + ["volume"], f"{what}: volume")
        if None in (name, namespace, volume):
            continue
        if not _NODE_NAME.fullmatch(name) or len(name) > 253:
            reader.error(at + ["name"], f"{what}: invalid name (lowercase letters, digits, '-' and '.')")
            continue
        if not re.fullmatch(_DNS_LABEL, namespace) or len(namespace) > 63:
            reader.error(at + ["namespace"], f"{what}: invalid namespace {namespace!r}")
            continue
        entry = by_name.get(volume)
        if entry is None:
            reader.error(at + ["volume"], f"{what}: no volume or pool {volume} in {layout.file} "
                                          f"(known: {', '.join(by_name) or 'none'})")
            continue
        node = None
        if item.get("node") is not None:
            wanted = reader.string(item["node"], at + ["node"], f"{what}: node")
            node = layout.resolve_node(wanted) if wanted else None
            if wanted and node is None:
                reader.error(at + ["node"], f"{what}: node {wanted} is not in K8S_NODES")
                continue
            if node and entry.kind == "pool":
                reader.error(at + ["node"], f"{what}: a claim on pool {volume} cannot name a node "
                                            "(its volumes are interchangeable)")
                continue
            if node and entry.nodes is not None and node not in entry.nodes:
                reader.error(at + ["node"], f"{what}: volume {volume} is not on node {node}")
                continue
        size = entry.size
        if item.get("size") is not None:
            size = reader.quantity(item["size"], at + ["size"], what)
            if size is None:
                continue
            if parse_quantity(size) > parse_quantity(entry.size):
                reader.error(at + ["size"], f"{what} asks for {size}, more than the {entry.size} of "
                                            f"{entry.kind} {volume}: it would never bind")
                continue
        modes = item.get("accessModes", list(ACCESS_MODES))
        if not isinstance(modes, list) or not modes or any(m not in ACCESS_MODES for m in modes):
            reader.error(at + ["accessModes"], f"{what}: accessModes must be a list of "
                                               f"{' and '.join(ACCESS_MODES)}, got {_show(modes)}")
            continue
        first = seen.setdefault((namespace, name), i)
        if first != i:
            also = reader.line(["claims", first])
            reader.error(at, f"duplicate claim {namespace}/{name} (also on line {also})")
            continue
        claims.append(Claim(name, namespace, entry, node, size, list(modes), Where(reader, at)))
    raise_all(reader.errors)
    return claims


# --- rendering ---------------------------------------------------------------

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


# --- directories -------------------------------------------------------------

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

"""The pools and named volumes of layout.yaml: read into the Layout, then checked together.

Names must be DNS labels, unique on every node, paths distinct and not nested,
and the PersistentVolume names they make must be valid object names.
"""

import posixpath

from ..errors import UserError
from .volume_layout import (_CONTROL, _NODE_NAME, _VOLUME_NAME, GROUP_LABEL, MAX_COUNT, MAX_LABEL_VALUE,
                            MAX_NAME, POOL_MODE, POOL_VOLUME, Entry, Volume, Where)
from .volume_reader import _type


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

"""claims.yaml: PersistentVolumeClaims bound to volumes of the layout, read and checked."""

import re

from ..errors import raise_all
from .volume_entries import _entry_list, _entry_what
from .volume_layout import _DNS_LABEL, _NODE_NAME, ACCESS_MODES, Claim, Where, parse_quantity
from .volume_reader import _load_document, _show


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

"""The rows of `render.py secrets list`: what each secret file holds, and whether the cluster has it.

Contract: `clear_row` describes an encrypted document without decrypting it
(kind, name, namespace, key names); `sync_row` describes a decoded object and
compares it with the cluster by digest: in sync, differs, not in the cluster,
or unknown (with the reason, scrubbed). Rows hold key names, never values;
printing them is the command's business.

Only the standard library is imported at module level (render.py --help stays
fast); each function imports what it needs.
"""

import json

from .objects import decoded_values, digest


def clear_row(doc):
    """What an encrypted document shows without decrypting: kind, name, namespace, keys.

    Mistyped fields show as `?` (decrypting, or `apply`, names what is wrong with them).
    """
    def text(value):
        return value if isinstance(value, str) else "?"

    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    keys = set()
    for field in ("data", "stringData"):
        if isinstance(doc.get(field), dict):
            keys |= {str(key) for key in doc[field]}
    return {"kind": text(doc.get("kind")), "name": text(meta.get("name")),
            "namespace": None if meta.get("namespace") is None else text(meta["namespace"]),
            "keys": sorted(keys), "cluster": None}


def sync_row(obj, cluster, ws):
    """The row of a decoded object: its keys and how the cluster's copy compares.

    `cluster` is a Cluster, or the UserError of one that could not be reached.
    """
    from ..cluster.connection import ApiError
    from ..errors import UserError

    row = {"kind": obj.kind, "name": obj.name, "namespace": obj.namespace,
           "keys": sorted(decoded_values(obj.data)) if obj.kind == "Secret" else [], "cluster": None}
    if obj.kind != "Secret":
        row["cluster"] = "not compared (not a Secret)"
        return row
    if isinstance(cluster, UserError):
        row["cluster"] = f"unknown ({cluster})"
        return row
    current = None
    try:
        resource = cluster.resource("v1", "Secret")
        response = cluster.call(lambda: cluster.dynamic.get(
            resource, name=obj.name, namespace=obj.namespace, serialize=False), obj=obj.ref)
        current = json.loads(response.data)
    except ApiError as err:
        if err.status != 404:
            row["cluster"] = f"unknown ({ws.scrub(err.message)})"
            return row
    except UserError as err:
        row["cluster"] = f"unknown ({ws.scrub(str(err))})"
        return row
    if current is None:
        row["cluster"] = "not in the cluster"
    elif digest(current) == digest(obj.data):
        row["cluster"] = "in sync"
    else:
        row["cluster"] = "differs (apply it to update)"
    return row

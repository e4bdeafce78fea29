"""Rewriting every object of a resource: step 3 of the etcd key rotation.

The apiserver encrypts an object when it writes it, so objects stored before a
new key became the first one stay encrypted with the old key until written
again. `rewrite_objects` PUTs each object back unchanged so it is stored with
the first key; only then can `render.py encryption rotate drop` remove the old key.
"""

from dataclasses import dataclass, field

from ..errors import UserError


@dataclass
class Target:
    """One resource of ENCRYPTION_RESOURCES as the server serves it."""

    name: str
    api_version: str
    kind: str
    plural: str
    namespaced: bool
    base: str  # /api/v1 or /apis/GROUP/VERSION

    def list_path(self):
        return f"{self.base}/{self.plural}"

    def object_path(self, namespace, name):
        where = f"/namespaces/{namespace}" if self.namespaced else ""
        return f"{self.base}{where}/{self.plural}/{name}"


@dataclass
class Rewrite:
    """What the rewrite of one resource did."""

    target: Target
    found: int = 0
    rewritten: int = 0
    gone: int = 0
    failed: list = field(default_factory=list)
    namespaces: set = field(default_factory=set)

    def line(self, dry_run=False):
        spread = f" in {len(self.namespaces)} namespace{'s' if len(self.namespaces) != 1 else ''}" \
            if self.target.namespaced else ""
        if dry_run:
            return f"{self.target.name}: {self.found} to rewrite{spread} (dry run: nothing written)"
        parts = [f"{self.rewritten} rewritten{spread}"]
        if self.gone:
            parts.append(f"{self.gone} gone meanwhile")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        return f"{self.target.name}: {', '.join(parts)}"


def _get_json(cluster, path, **params):
    from .connection import document

    response = cluster.call(lambda: cluster.dynamic.request("get", path, serialize=False, **params))
    return document(response)


def locate(cluster, name):
    """The Target serving `name` (`secrets`, `widgets.example.com`); wildcards are refused."""
    from .connection import ApiError

    plural, _, group = name.partition(".")
    if "*" in name:
        raise UserError(f"ENCRYPTION_RESOURCES: the rewrite cannot expand {name!r}; name the "
                        "resources it covers")
    try:
        return _locate(cluster, name, plural, group)
    except ApiError as err:
        if err.status == 404:
            raise UserError(f"the cluster does not serve {name} (ENCRYPTION_RESOURCES)") from None
        raise


def _locate(cluster, name, plural, group):
    if group:
        info = _get_json(cluster, f"/apis/{group}")
        version = ((info.get("preferredVersion") or {}).get("groupVersion")
                   or next((v.get("groupVersion") for v in info.get("versions") or ()), None))
        if not version:
            raise UserError(f"the cluster serves no version of API group {group}")
        base = f"/apis/{version}"
    else:
        version, base = "v1", "/api/v1"
    listing = _get_json(cluster, base)
    entry = next((r for r in listing.get("resources") or () if r.get("name") == plural), None)
    if entry is None:
        raise UserError(f"the cluster does not serve {name} (ENCRYPTION_RESOURCES)")
    verbs = set(entry.get("verbs") or ())
    if not {"list", "update"} <= verbs:
        raise UserError(f"{name} cannot be listed and updated, so it cannot be rewritten")
    return Target(name, version, entry.get("kind") or plural, plural, bool(entry.get("namespaced")), base)


def list_objects(cluster, target, page=500):
    """Every object of `target` across namespaces, sorted by namespace and name."""
    items, token = [], None
    while True:
        params = {"limit": page}
        if token:
            params["_continue"] = token
        listing = _get_json(cluster, target.list_path(), **params)
        items.extend(listing.get("items") or [])
        token = (listing.get("metadata") or {}).get("continue")
        if not token:
            break
    return sorted(items, key=lambda o: ((o.get("metadata") or {}).get("namespace") or "",
                                        (o.get("metadata") or {}).get("name") or ""))


def rewrite_objects(cluster, target, dry_run=False, scrub=None):
    """One PUT of each object, unchanged, so the apiserver stores it again with the first key."""
    from .connection import ApiError

    done = Rewrite(target)
    objects = list_objects(cluster, target)
    done.found = len(objects)
    for obj in objects:
        meta = obj.get("metadata") or {}
        if meta.get("namespace"):
            done.namespaces.add(meta["namespace"])
    if dry_run:
        return done
    for obj in objects:
        meta = obj.get("metadata") or {}
        namespace, name = meta.get("namespace"), meta.get("name")
        ref = f"{target.kind}/{name}" if not namespace else f"{target.kind} {namespace}/{name}"
        path = target.object_path(namespace, name)
        try:
            result = _put(cluster, target, path, obj, ref)
        except ApiError as err:
            message = scrub(err.message) if scrub else err.message
            done.failed.append(f"{ref}: {message}")
            continue
        if result == "gone":
            done.gone += 1
        else:
            done.rewritten += 1
    return done


def _put(cluster, target, path, obj, ref):
    from .connection import ApiError

    body = dict(obj, apiVersion=target.api_version, kind=target.kind)
    for attempt in (1, 2):
        try:
            cluster.call(lambda: cluster.dynamic.request("put", path, body=body, serialize=False), obj=ref)
            return "rewritten"
        except ApiError as err:
            if err.status == 404:
                return "gone"
            if err.status != 409 or attempt == 2:
                raise
        try:  # changed since the LIST: read it again and write that, once
            current = _get_json(cluster, path)
        except ApiError as err:
            if err.status == 404:
                return "gone"
            raise
        body = dict(current, apiVersion=target.api_version, kind=target.kind)
    return "rewritten"  # not reached


"""Order: which component, and which object, goes first.

Components are ordered by the `depends` of their component.yaml (dependencies
first, ties by name so the order is stable). Inside a component, objects go in
tiers by kind: a Namespace must exist before anything is created in it, a CRD
before its custom resources, a ServiceAccount and its RBAC before the pods
that run as it, Secrets and ConfigMaps before the pods that mount them, and
webhook configurations last so they cannot block the objects they would
check. An object may add an explicit dependency with the annotation
`k8s-toolkit/depends-on: Kind/name` or `Kind/namespace/name` (several,
comma-separated): it then goes in a tier after that object.

Deleting runs the exact reverse of applying.
"""

from ..errors import UserError

DEPENDS_ON = "k8s-toolkit/depends-on"

# Kinds of one row share a rank; earlier rows are applied first.
KIND_RANKS = [
    ["Namespace"],
    ["CustomResourceDefinition"],
    ["PriorityClass"],
    ["PodSecurityPolicy"],
    ["ResourceQuota", "LimitRange"],
    ["ServiceAccount"],
    ["ClusterRole", "Role"],
    ["ClusterRoleBinding", "RoleBinding"],
    ["Secret", "ConfigMap"],
    ["StorageClass", "PersistentVolume", "PersistentVolumeClaim"],
    ["IngressClass"],
    ["Service"],
    [None],  # unknown kinds: after Services, before workloads
    ["DaemonSet", "Deployment", "StatefulSet", "ReplicaSet", "Pod"],
    ["Job", "CronJob"],
    ["Ingress"],
    ["HorizontalPodAutoscaler", "PodDisruptionBudget"],
    ["APIService"],
    ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"],
]
RANK = {kind: i for i, row in enumerate(KIND_RANKS) for kind in row}
UNKNOWN_RANK = RANK[None]


def component_order(components):
    """`components` sorted so every component follows the ones it depends on.

    Parameters:
        components: Component objects; their `depends` name other components.

    A dependency cycle is a UserError naming the cycle (`a -> b -> a`).
    """
    by_name = {c.name: c for c in components}
    done, visiting, ordered = set(), [], []

    def visit(name):
        if name in done:
            return
        if name in visiting:
            cycle = visiting[visiting.index(name):] + [name]
            raise UserError(f"dependency cycle between components: {' -> '.join(cycle)}")
        visiting.append(name)
        for dep in sorted(by_name[name].depends):
            if dep in by_name:
                visit(dep)
        visiting.pop()
        done.add(name)
        ordered.append(by_name[name])

    for name in sorted(by_name):
        visit(name)
    return ordered


def kind_rank(obj, crd_kinds):
    """Rank of a RenderedObject's kind; custom resources rank with unknown kinds,
    after their CRD, even when their kind is spelled like a built-in one."""
    if (obj.group, obj.kind) in crd_kinds:
        return UNKNOWN_RANK
    return RANK.get(obj.kind, UNKNOWN_RANK)


def tiers(objects, component_names, elsewhere=()):
    """`objects` grouped into tiers, in apply order.

    Parameters:
        objects: RenderedObjects.
        component_names: component names in dependency order.
        elsewhere: objects of the run outside `objects` that depends-on may name.

    Returns a list of lists; every object of a tier may be applied at the same
    time, and a tier starts only when the one before it is done.
    """
    position = {name: i for i, name in enumerate(component_names)}
    crd_kinds = {((o.data.get("spec") or {}).get("group"),
                  ((o.data.get("spec") or {}).get("names") or {}).get("kind"))
                 for o in objects if o.kind == "CustomResourceDefinition"}
    keys = {id(o): (position[o.component], kind_rank(o, crd_kinds), 0) for o in objects}
    _apply_explicit_dependencies(objects, keys, elsewhere)
    grouped = {}
    for obj in objects:
        grouped.setdefault(keys[id(obj)], []).append(obj)
    return [grouped[k] for k in sorted(grouped)]


def dependency_edges(objects, elsewhere=(), missing_ok=False):
    """(object, target) for every `k8s-toolkit/depends-on` reference among `objects`.

    A reference to an object of `elsewhere` (other components of the run, ordered by
    the component graph) is no edge here; to anything else it is a UserError, unless
    `missing_ok` (the set is a part of a run that was checked as a whole).
    """
    index, outside = {}, {id(o) for o in elsewhere}
    for obj in [*elsewhere, *objects]:
        index[(obj.kind, obj.namespace or "", obj.name)] = obj
    edges = []
    for obj in objects:
        annotations = (obj.data.get("metadata") or {}).get("annotations") or {}
        for ref in filter(None, (r.strip() for r in str(annotations.get(DEPENDS_ON, "")).split(","))):
            parts = ref.split("/")
            if len(parts) == 2:
                target = index.get((parts[0], obj.namespace or "", parts[1])) or \
                    index.get((parts[0], "", parts[1]))
            elif len(parts) == 3:
                target = index.get(tuple(parts))
            else:
                target = None
            if target is None and missing_ok:
                continue
            if target is None:
                raise UserError(f"{DEPENDS_ON}: {ref!r} is not an object of this run "
                                "(expected Kind/name or Kind/namespace/name)",
                                file=obj.source.file, line=obj.source.line, obj=obj.ref)
            if id(target) not in outside:
                edges.append((obj, target))
    return edges


def _apply_explicit_dependencies(objects, keys, elsewhere=()):
    """Move objects with a depends-on annotation into a tier after their targets."""
    edges = dependency_edges(objects, elsewhere)
    for _ in range(len(edges) + 1):  # longest chain is at most len(edges)
        moved = False
        for obj, target in edges:
            after = keys[id(target)][:2] + (keys[id(target)][2] + 1,)
            if keys[id(obj)] < after:
                keys[id(obj)] = after
                moved = True
        if not moved:
            return
    obj, target = edges[0]
    raise UserError(f"{DEPENDS_ON} annotations form a cycle involving {target.ref}",
                    file=obj.source.file, line=obj.source.line, obj=obj.ref)

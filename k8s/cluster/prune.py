"""Prune: delete what the toolkit applied earlier and the rendered set no longer has.

Each component's ApplySet (`applyset`) says which group-kinds it ever applied;
its members are found by their part-of label, whatever their kind. Objects
applied before ApplySets existed carry only the toolkit's labels, managed-by and
the component: those are looked for among the rendered kinds and the common
kinds a component may have dropped (PRUNE_KINDS), and are adopted into the set
by the next apply. Nothing without the toolkit's labels is ever touched.
Deletion runs in reverse apply order; the sets then list exactly what is rendered.
"""

from ..core import order
from .apply import COMPONENT_LABEL, MANAGED_BY, MANAGED_BY_LABEL
from ..core.render import RenderedObject

PRUNE_KINDS = [
    ("v1", "Namespace"), ("v1", "ServiceAccount"), ("v1", "Secret"), ("v1", "ConfigMap"),
    ("v1", "Service"), ("v1", "PersistentVolumeClaim"), ("v1", "PersistentVolume"),
    ("v1", "LimitRange"), ("v1", "ResourceQuota"),
    ("apps/v1", "Deployment"), ("apps/v1", "DaemonSet"), ("apps/v1", "StatefulSet"),
    ("batch/v1", "Job"), ("batch/v1", "CronJob"),
    ("rbac.authorization.k8s.io/v1", "Role"), ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("networking.k8s.io/v1", "Ingress"), ("networking.k8s.io/v1", "IngressClass"),
    ("networking.k8s.io/v1", "NetworkPolicy"), ("policy/v1", "PodDisruptionBudget"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"), ("storage.k8s.io/v1", "StorageClass"),
    ("apiregistration.k8s.io/v1", "APIService"),
]


def stale_objects(engine, objects, component_names):
    """Objects on the cluster labelled for `component_names` but not in `objects`.

    Parameters:
        engine: an apply.Engine (for its clusters and retried requests).
        objects: the rendered set.
        component_names: the components of this run.
    """
    from . import applyset
    from .connection import document

    wanted = {(o.group, o.kind, o.namespace or "", o.name) for o in objects}
    kinds = sorted({(o.api_version, o.kind) for o in objects} | set(PRUNE_KINDS))
    selector = (f"{MANAGED_BY_LABEL}={MANAGED_BY},"
                f"{COMPONENT_LABEL} in ({','.join(sorted(component_names))})")
    stale, seen, found = [], set(), set()

    def consider(api_version, kind, item, component):
        labels = item["metadata"].get("labels") or {}
        if labels.get(MANAGED_BY_LABEL) != MANAGED_BY or labels.get(COMPONENT_LABEL) != component:
            return  # never trust the selector alone with a delete
        item.setdefault("apiVersion", api_version)
        item.setdefault("kind", kind)
        obj = RenderedObject(item, component, source=None)
        key = (obj.group, obj.kind, obj.namespace or "", obj.name)
        if key not in wanted and key not in found:
            found.add(key)
            stale.append(obj)

    for component in sorted(component_names):
        cluster = engine.cluster_for(component)
        set_kinds, _ = applyset.recorded(applyset.parents(engine, cluster).get(applyset.parent_name(component)))
        set_kinds |= {applyset.group_kind(o) for o in objects if o.component == component}
        for api_version, kind, item in applyset.members(cluster, component, set_kinds):
            consider(api_version, kind, item, component)
    for component in sorted(component_names):
        cluster = engine.cluster_for(component)
        if id(cluster) in seen:
            continue
        seen.add(id(cluster))
        for api_version, kind in kinds:
            resource = cluster.resource(api_version, kind)
            if resource is None:
                continue
            listing = cluster.call(lambda: cluster.dynamic.get(
                resource, label_selector=selector, serialize=False))
            for item in document(listing).get("items") or []:
                labels = item["metadata"].get("labels") or {}
                if labels.get(applyset.PART_OF):
                    continue  # a member of a set: found above, or of another component's set now
                consider(api_version, kind, item, labels.get(COMPONENT_LABEL))
    return stale


def prune(engine, objects, component_names, dry_run=False):
    """Delete the stale objects, last tier first; returns the apply.Run. Once all went,
    each component's set lists exactly the group-kinds it has now."""
    from . import applyset

    stale = stale_objects(engine, objects, component_names)
    run = engine.delete(order.tiers(stale, sorted(component_names)), done="pruned", dry_run=dry_run)
    if not dry_run and not run.failed:
        for component in sorted(component_names):
            applyset.record(engine, component, [o for o in objects if o.component == component],
                            keep_previous=False)
    return run

"""Prune: delete what the toolkit applied earlier and the rendered set no longer has.

Only objects carrying both of the toolkit's labels, managed-by and one of the
run's components, are ever considered: anything else on the cluster is never
touched. The kinds looked at are those of the rendered set plus the common
kinds a component may have dropped entirely (PRUNE_KINDS). Deletion runs in
reverse apply order.
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
    import json

    wanted = {(o.group, o.kind, o.namespace or "", o.name) for o in objects}
    kinds = sorted({(o.api_version, o.kind) for o in objects} | set(PRUNE_KINDS))
    selector = (f"{MANAGED_BY_LABEL}={MANAGED_BY},"
                f"{COMPONENT_LABEL} in ({','.join(sorted(component_names))})")
    stale, seen = [], set()
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
            for item in json.loads(listing.data).get("items") or []:
                labels = item["metadata"].get("labels") or {}
                if labels.get(MANAGED_BY_LABEL) != MANAGED_BY or \
                        labels.get(COMPONENT_LABEL) not in component_names:
                    continue  # never trust the selector alone with a delete
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
                obj = RenderedObject(item, labels[COMPONENT_LABEL], source=None)
                if (obj.group, obj.kind, obj.namespace or "", obj.name) not in wanted:
                    stale.append(obj)
    return stale


def prune(engine, objects, component_names, dry_run=False):
    """Delete the stale objects, last tier first; returns the apply.Run."""
    stale = stale_objects(engine, objects, component_names)
    return engine.delete(order.tiers(stale, sorted(component_names)), done="pruned", dry_run=dry_run)

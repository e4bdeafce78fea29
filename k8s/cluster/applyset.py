"""ApplySets (KEP-3659): each component's applied set, recorded on the cluster, so prune finds it all.

Every object a component applies carries `applyset.kubernetes.io/part-of: <id>`;
the set's parent, a ConfigMap `applyset-<component>` in kube-system, carries
`applyset.kubernetes.io/id: <id>` and lists in its annotations every group-kind
(`Deployment.apps,Widget.example.com`) and namespace the set ever had since the
last prune. Prune lists each of those group-kinds by the part-of label, so a
custom resource, a webhook configuration or a PriorityClass a component dropped
is found, and an object that moved to another component (and so to its set) is
not. The id is what kubectl computes: `applyset-` + base64url(sha256 of the
parent's `name.namespace.kind.group`) + `-v1`.
"""

import base64
import hashlib

from .connection import ApiError, document

PART_OF = "applyset.kubernetes.io/part-of"
ID = "applyset.kubernetes.io/id"
TOOLING = "applyset.kubernetes.io/tooling"
TOOLING_VALUE = "k8s-toolkit/v1"
GROUP_KINDS = "applyset.kubernetes.io/contains-group-kinds"
NAMESPACES = "applyset.kubernetes.io/additional-namespaces"
PARENT_NAMESPACE = "kube-system"
FIELD_MANAGER = "k8s-toolkit"


def parent_name(component):
    return f"applyset-{component}"


def set_id(component):
    key = f"{parent_name(component)}.{PARENT_NAMESPACE}.ConfigMap."
    digest = base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()).decode().rstrip("=")
    return f"applyset-{digest}-v1"


def group_kind(obj):
    return f"{obj.kind}.{obj.group}" if obj.group else obj.kind


def _split(value):
    return {v for v in (value or "").split(",") if v}


def parents(engine, cluster):
    """name -> parent ConfigMap, from the run's one LIST of kube-system's ConfigMaps."""
    try:
        return engine.listed(cluster, cluster.resource("v1", "ConfigMap"), PARENT_NAMESPACE)
    except ApiError as err:
        if err.status == 404:
            return {}
        raise


def recorded(parent):
    """(group-kinds, namespaces) a parent lists; empty sets when there is no parent yet."""
    annotations = ((parent or {}).get("metadata") or {}).get("annotations") or {}
    return _split(annotations.get(GROUP_KINDS)), _split(annotations.get(NAMESPACES))


def record(engine, component, objects, keep_previous=True):
    """Write the parent: the group-kinds and namespaces of `objects`, with those it listed before
    unless `keep_previous` is off (after a prune, when the set is exactly what is rendered).
    A parent that already says so is not written again."""
    cluster = engine.cluster_for(component)
    kinds = {group_kind(o) for o in objects}
    namespaces = {o.namespace for o in objects if o.namespace and o.namespace != PARENT_NAMESPACE}
    old_kinds, old_namespaces = recorded(parents(engine, cluster).get(parent_name(component)))
    if keep_previous:
        kinds, namespaces = kinds | old_kinds, namespaces | old_namespaces
    if (kinds, namespaces) == (old_kinds, old_namespaces):
        return
    parent = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": parent_name(component), "namespace": PARENT_NAMESPACE,
                           "labels": {ID: set_id(component), "app.kubernetes.io/managed-by": "k8s-toolkit"},
                           "annotations": {TOOLING: TOOLING_VALUE, GROUP_KINDS: ",".join(sorted(kinds)),
                                           NAMESPACES: ",".join(sorted(namespaces))}}}
    resource = cluster.resource("v1", "ConfigMap")
    cluster.call(lambda: cluster.dynamic.server_side_apply(
        resource, body=parent, name=parent["metadata"]["name"], namespace=PARENT_NAMESPACE,
        field_manager=FIELD_MANAGER, force_conflicts=True, serialize=False))
    parents(engine, cluster)[parent_name(component)] = parent  # what this run now knows


def forget(cluster, component):
    """Delete the parent once the component's objects are gone."""
    resource = cluster.resource("v1", "ConfigMap")
    try:
        cluster.call(lambda: cluster.dynamic.delete(resource, name=parent_name(component),
                                                    namespace=PARENT_NAMESPACE, serialize=False))
    except ApiError as err:
        if err.status not in (403, 404):
            raise


def members(cluster, component, kinds):
    """Every object on the cluster of the component's set, of the group-kinds `kinds`:
    (apiVersion, kind, item) with one LIST per group-kind across namespaces."""
    found = []
    selector = f"{PART_OF}={set_id(component)}"
    for gk in sorted(kinds):
        kind, _, group = gk.partition(".")
        resource = cluster.resource_of(group, kind)
        if resource is None:  # its CRD is gone, and the objects with it
            continue
        listing = cluster.call(lambda: cluster.dynamic.get(resource, label_selector=selector, serialize=False))
        for item in document(listing).get("items") or []:
            if ((item.get("metadata") or {}).get("labels") or {}).get(PART_OF) == set_id(component):
                found.append((resource.group_version, kind, item))  # never trust the selector alone
    return found

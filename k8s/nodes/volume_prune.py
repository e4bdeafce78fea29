"""Pruning `persistent`: delete the PVs and claims it applied earlier that the layout no longer has.

`prune(engine, cluster, objects, nodes)` lists what carries the labels of an
apply by `persistent` and deletes, with the apply engine, what `objects` (this
run's rendering) lacks: PersistentVolumes only of `nodes`, and never one still
bound to a claim, since its data would go with it. Standard library only at
module level (`render.py --help` imports the command module): the cluster
code is imported when `prune` runs.
"""

from .volume_layout import COMPONENT, HOSTNAME_LABEL


def prune(engine, cluster, objects, nodes, dry_run=False):
    """Delete PVs and claims `persistent` applied earlier that the layout no longer has.

    Only objects labelled as applied by this command are looked at; PVs only of `nodes`
    (a run for some nodes leaves the others' alone); a PV still bound to a claim is kept.
    With `dry_run` the server checks each delete and keeps the object.
    """
    import json

    from ..core import order
    from ..cluster.apply import COMPONENT_LABEL, MANAGED_BY, MANAGED_BY_LABEL, Run
    from ..core.render import RenderedObject

    wanted = {o.key for o in objects}
    selector = f"{MANAGED_BY_LABEL}={MANAGED_BY},{COMPONENT_LABEL}={COMPONENT}"
    stale = []
    for kind in ("PersistentVolume", "PersistentVolumeClaim"):
        resource = cluster.resource("v1", kind)
        listing = cluster.call(lambda: cluster.dynamic.get(resource, label_selector=selector, serialize=False))
        for item in json.loads(listing.data).get("items") or []:
            labels = item["metadata"].get("labels") or {}
            if labels.get(MANAGED_BY_LABEL) != MANAGED_BY or labels.get(COMPONENT_LABEL) != COMPONENT:
                continue  # never trust the selector alone with a delete
            item.update(apiVersion="v1", kind=kind)
            obj = RenderedObject(item, COMPONENT, source=None)
            if obj.key in wanted:
                continue
            if kind == "PersistentVolume":
                if not set(_affinity_nodes(item)) & set(nodes):
                    continue
                claim = (item.get("spec") or {}).get("claimRef") or {}
                if (item.get("status") or {}).get("phase") == "Bound":
                    engine.say(f"{obj.display} kept: no longer in the layout but bound to claim "
                               f"{claim.get('namespace')}/{claim.get('name')}")
                    continue
            stale.append(obj)
    if not stale:
        return Run()
    return engine.delete(order.tiers(stale, [COMPONENT]), done="pruned", dry_run=dry_run)


def _affinity_nodes(pv):
    # the nodes a PV is pinned to, read back from the affinity `persistent_volume` writes
    terms = ((((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {})
             .get("nodeSelectorTerms") or [])
    return [v for term in terms for e in term.get("matchExpressions") or []
            if e.get("key") == HOSTNAME_LABEL for v in e.get("values") or []]

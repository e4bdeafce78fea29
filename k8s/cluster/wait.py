"""Wait: hold the next tier until what this tier created is usable.

A CustomResourceDefinition must be Established before its custom resources
are applied, and a Namespace Active before objects go into it; with `--wait`,
DaemonSets, Deployments and StatefulSets must finish their rollout (the
conditions `kubectl rollout status` checks). Each object is polled with a
GET, backing off from 0.2 s to 2 s, until it holds or the timeout passes; a
timeout names every object still waiting and its last condition.
"""

import json
import time

from ..errors import UserError

POLL_START, POLL_MAX = 0.2, 2.0
ROLLOUT_KINDS = {"Deployment", "DaemonSet", "StatefulSet"}


def crd_established(data):
    return _condition(data, "Established") == "True", _last_condition(data)


def namespace_active(data):
    phase = (data.get("status") or {}).get("phase")
    return phase == "Active", f"phase {phase or 'unknown'}"


def rollout_complete(data):
    """True when the workload's rollout is done, with a description of where it stands."""
    kind, spec, status = data.get("kind"), data.get("spec") or {}, data.get("status") or {}
    generation = (data.get("metadata") or {}).get("generation") or 0
    if (status.get("observedGeneration") or 0) < generation:
        return False, "waiting for the controller to observe the new generation"
    if kind == "DaemonSet":
        desired = status.get("desiredNumberScheduled") or 0
        updated = status.get("updatedNumberScheduled") or 0
        available = status.get("numberAvailable") or 0
        return (updated >= desired and available >= desired,
                f"{updated} of {desired} updated, {available} available")
    wanted = spec.get("replicas", 1)
    updated = status.get("updatedReplicas") or 0
    ready = status.get("readyReplicas") or 0
    if kind == "Deployment":
        total = status.get("replicas") or 0
        available = status.get("availableReplicas") or 0
        done = updated >= wanted and total <= updated and available >= updated
        return done, f"{updated} of {wanted} updated, {available} available; {_last_condition(data)}"
    return updated >= wanted and ready >= wanted, f"{updated} of {wanted} updated, {ready} ready"


CHECKS = {"CustomResourceDefinition": crd_established, "Namespace": namespace_active}


def wait_for_tier(outcomes, cluster_for, rollouts, timeout, say):
    """Wait until every applied object of a tier that needs it is usable.

    Parameters:
        outcomes: Outcomes of the tier (their `response` is the applied object).
        cluster_for: component name -> Cluster.
        rollouts: also wait for workload rollouts.
        timeout: seconds before giving up.
        say: prints one progress line.
    """
    pending = []
    for outcome in outcomes:
        kind = outcome.obj.kind
        check = CHECKS.get(kind) or (rollout_complete if rollouts and kind in ROLLOUT_KINDS else None)
        if check and outcome.response is not None:
            held, _ = check(outcome.response)
            if not held:
                pending.append((outcome, check))
    if not pending:
        return
    rollouts = sum(1 for _, check in pending if check is rollout_complete)
    if rollouts:  # CRDs and namespaces settle in a moment; rollouts are worth a line
        say(f"waiting for {rollouts} rollout{'s' if rollouts != 1 else ''} (timeout {timeout:g}s)")
    _poll(pending, cluster_for, timeout, _fetch)


def wait_for_deletion(outcomes, cluster_for, timeout, say):
    """Wait until deleted objects (namespaces, which terminate slowly) are gone."""
    say(f"waiting for {len(outcomes)} namespace{'s' if len(outcomes) != 1 else ''} "
        f"to finish terminating (timeout {timeout:g}s)")
    _poll([(o, namespace_gone) for o in outcomes], cluster_for, timeout, _fetch_or_none)


# What the namespace controller reports when it cannot finish; the common one on a kubeadm
# cluster is an aggregated API (metrics.k8s.io) whose backend is down: the controller will
# not finish any namespace while discovery of a group fails.
DELETION_FAILURES = ("NamespaceDeletionDiscoveryFailure", "NamespaceDeletionGroupVersionParsingFailure",
                     "NamespaceDeletionContentFailure", "NamespaceFinalizersRemaining")


def namespace_gone(data):
    if data is None:
        return True, "gone"
    for condition in (data.get("status") or {}).get("conditions") or []:
        if condition.get("type") in DELETION_FAILURES and condition.get("status") == "True":
            return False, f"still terminating: {' '.join(str(condition.get('message', '')).split())}"
    return False, "still terminating"


def _poll(pending, cluster_for, timeout, fetch):
    deadline = time.monotonic() + timeout
    delay = POLL_START
    last = {}
    while pending:
        still = []
        for outcome, check in pending:
            data = fetch(outcome, cluster_for)
            held, state = check(data)
            if not held:
                last[id(outcome)] = state
                still.append((outcome, check))
        pending = still
        if not pending:
            return
        if time.monotonic() + delay > deadline:
            waiting = "; ".join(f"{o.obj.display} ({last[id(o)]})" for o, _ in pending)
            raise UserError(f"timed out after {timeout:g}s waiting for {waiting}")
        time.sleep(delay)
        delay = min(delay * 2, POLL_MAX)


def _fetch(outcome, cluster_for):
    obj = outcome.obj
    cluster = cluster_for(obj.component)
    resource = cluster.resource(obj.api_version, obj.kind)
    response = cluster.call(lambda: cluster.dynamic.get(
        resource, name=obj.name, namespace=obj.namespace if resource.namespaced else None,
        serialize=False), obj=obj.ref)
    return json.loads(response.data)


def _fetch_or_none(outcome, cluster_for):
    from .connection import ApiError

    try:
        return _fetch(outcome, cluster_for)
    except ApiError as err:
        if err.status == 404:
            return None
        raise


def _condition(data, kind):
    for condition in (data.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return condition.get("status")
    return None


def _last_condition(data):
    conditions = (data.get("status") or {}).get("conditions") or []
    if not conditions:
        return "no conditions yet"
    c = conditions[-1]
    text = f"{c.get('type')}={c.get('status')}"
    return f"{text}: {c['message']}" if c.get("message") else text

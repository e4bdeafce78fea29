"""Diff: what an apply would change, from a server-side dry run.

Each object is applied with `dryRun=All`, so defaulting, admission and field
ownership are the server's own; the result is compared with the object as it
is now (from the run's LIST of its kind and namespace). Managed fields,
status and bookkeeping metadata are left out, and Secret values are masked:
a changed value shows as `*** (before)` / `*** (after)`, never in clear.
"""

import difflib

from ..core import emit
from . import readiness
from .apply import Outcome, body

VOLATILE_METADATA = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp",
                     "selfLink")
MASK = "***"


def normalize(data):
    """A copy of `data` without status and bookkeeping metadata."""
    if data is None:
        return None
    data = {k: v for k, v in data.items() if k != "status"}
    metadata = {k: v for k, v in (data.get("metadata") or {}).items() if k not in VOLATILE_METADATA}
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items()
                   if k != "deprecated.daemonset.template.generation"}
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    data["metadata"] = metadata
    return data


def mask_secrets(before, after):
    """Replace Secret values in both versions; equal values stay equal, changed ones differ."""
    for field in ("data", "stringData"):
        old = (before or {}).get(field) or {}
        new = (after or {}).get(field) or {}
        for key in set(old) | set(new):
            same = old.get(key) == new.get(key)
            if key in old:
                old[key] = MASK if same else f"{MASK} (before)"
            if key in new:
                new[key] = MASK if same else f"{MASK} (after)"


def object_diff(obj, current, planned):
    """Unified diff text for one object (empty when nothing changes)."""
    before, after = normalize(current), normalize(planned)
    if obj.kind == "Secret":
        before = _copy_fields(before)
        after = _copy_fields(after)
        mask_secrets(before, after)
    # Sorted keys: the server's field order is not ours, and order is no change.
    old = emit.to_yaml([before], sort_keys=True).splitlines(keepends=True)[1:] if before else []
    new = emit.to_yaml([after], sort_keys=True).splitlines(keepends=True)[1:] if after else []
    if old == new:
        return ""
    return "".join(difflib.unified_diff(old, new, f"a/{obj.display}", f"b/{obj.display}"))


def _copy_fields(data):
    if data is None:
        return None
    data = dict(data)
    for field in ("data", "stringData"):
        if isinstance(data.get(field), dict):
            data[field] = dict(data[field])
    return data


def diff(engine, objects):
    """Diff every object; returns ([(object, its unified diff)] of the changed ones, failures, notes).

    A Job that removes itself when done (ttlSecondsAfterFinished) is absent, or still
    finishing, after every apply and created by the next: that is its design, not drift,
    so it gets a note instead of a diff.

    Parameters:
        engine: an apply.Engine (its clusters and LIST cache are used).
        objects: RenderedObjects, in apply order.
    """
    outcomes = engine.map_objects(lambda o: _plan(engine, o), objects)
    texts, failures, notes = [], [], []
    for outcome in outcomes:
        if outcome.result == "failed":
            failures.append(outcome)
            continue
        if readiness.removes_itself(outcome.obj.kind, outcome.obj.data):
            notes.append(f"{outcome.obj.display}: runs again on apply (it removes itself when done)")
            continue
        text = object_diff(outcome.obj, outcome.response.get("current"), outcome.response["planned"])
        if text:
            texts.append((outcome.obj, text))
    return texts, failures, notes


def _plan(engine, obj):
    """Dry-run apply of one object, with the object as it is now."""
    outcome = engine.apply_one(obj, dry_run=True)
    if outcome.result == "failed":
        if _would_create(outcome.message):
            planned = body(obj, engine.set_of(obj))
            return Outcome(obj, "created", response={"current": None, "planned": planned})
        return outcome
    cluster = engine.cluster_for(obj.component)
    resource = cluster.resource(obj.api_version, obj.kind)
    namespace = obj.namespace if resource.namespaced else None
    current = engine.listed(cluster, resource, namespace).get(obj.name)
    if current is not None:  # LIST items carry no apiVersion and kind of their own
        current = {"apiVersion": obj.api_version, "kind": obj.kind, **current}
    return Outcome(obj, outcome.result, response={"current": current, "planned": outcome.response})


def _would_create(message):
    """A dry run cannot place an object in a namespace or of a kind that does not exist yet."""
    return "not found" in message.lower() and "namespace" in message.lower() or \
        "does not serve" in message

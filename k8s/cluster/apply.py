"""Apply: server-side apply of a validated object set, tier by tier (one component's, or one set).

Every object goes to the server as one PATCH with `application/apply-patch+yaml`
under a fixed field manager: creating and updating are the same call, and no
GET precedes it. Objects of one tier are applied concurrently by a bounded
worker pool; the next tier starts once this one is applied and its waits hold
(`wait`). Whether an object was created, configured or left unchanged is read
from the answer alone, so a re-apply costs one request per object: 201 is
created; otherwise the time the server gave the toolkit's managedFields entry
says whether this apply (or its dry run) changed anything (`changed`, `clock`).
A controller writing status in between does not count. After each tier the engine waits
for what later tiers need (`apply_tiers`); a 4xx fails the set after the current
tier, and the summary says what was and was not applied. `install` runs many
components' sets as a graph.
"""

import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import readiness, wait as waits
from .connection import ApiError, BadReply, document
from ..errors import UserError

FIELD_MANAGER = "k8s-toolkit"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "k8s-toolkit"
COMPONENT_LABEL = "k8s-toolkit/component"
PART_OF_LABEL = "applyset.kubernetes.io/part-of"


@dataclass
class Outcome:
    """What happened to one object."""

    obj: object            # the RenderedObject
    result: str            # created, configured, unchanged, failed, not applied, deleted, ...
    message: str = ""
    response: dict = field(default=None, repr=False)

    def line(self):
        text = f"{self.obj.display} {self.result}"
        return f"{text}: {self.message}" if self.message else text

    def as_dict(self):
        return {"kind": self.obj.kind, "apiVersion": self.obj.api_version, "name": self.obj.name,
                "namespace": self.obj.namespace, "component": self.obj.component,
                "result": self.result, "message": self.message}


DRY_RUN = "(server dry run)"  # after the result of an outcome the server only simulated


@dataclass
class Run:
    """Outcomes of a whole run, in the order they happened, and whether it stopped early."""

    outcomes: list = field(default_factory=list)
    stopped: str = ""
    components: list = field(default_factory=list)  # graph.Result per component, for install

    def count(self, result):
        return sum(1 for o in self.outcomes if o.result == result)

    @property
    def failed(self):
        return (bool(self.stopped) or any(o.result == "failed" for o in self.outcomes)
                or any(c.state == "failed" for c in self.components))  # skipped: after a failure, or by choice

    def summary(self):
        order = ["created", "configured", "unchanged", "deleted", "pruned", "not found", "failed",
                 "not applied"]
        order += [f"{r} {DRY_RUN}" for r in order]
        counts = [f"{self.count(r)} {r}" for r in order if self.count(r)]
        text = ", ".join(counts) or "nothing to do"
        text = f"{text}; {self.stopped}" if self.stopped else text
        return "\n".join([*(f"  {c.line()}" for c in self.components), text])

    def as_json(self):
        return json.dumps({"objects": [o.as_dict() for o in self.outcomes],
                           "components": [{"name": c.name, "state": c.state, "reason": c.reason or None}
                                          for c in self.components],
                           "summary": {r: self.count(r) for r in sorted({o.result for o in self.outcomes})},
                           "stopped": self.stopped or None}, indent=2)


def body(obj, part_of=None):
    """The object as sent: its data plus the labels that name the toolkit and component,
    and the ApplySet it belongs to (`applyset`), if any."""
    data = dict(obj.data)
    metadata = dict(data.get("metadata") or {})
    labels = dict(metadata.get("labels") or {})
    labels[MANAGED_BY_LABEL] = MANAGED_BY
    labels[COMPONENT_LABEL] = getattr(obj, "component_label", None) or obj.component
    if part_of:
        labels[PART_OF_LABEL] = part_of
    metadata["labels"] = labels
    data["metadata"] = metadata
    return data


class Engine:
    """Applies tiers of RenderedObjects to clusters.

    Parameters:
        cluster_for: component name -> Cluster.
        parallel: concurrent requests inside a tier.
        force: take over fields owned by other field managers (`--force-conflicts`).
        wait: wait for workload rollouts after each tier (CRDs and Namespaces are always waited for).
        timeout: seconds each tier's waits may take.
        out: where progress lines go (None: silent).
        applysets: label each object with its component's ApplySet id (components; not
            secrets or volumes, which have no set).
        scrub: (object data, message) -> the message as it may be shown; the steps pass one
            that takes a Secret's values out of what the server said about it.
    """

    def __init__(self, cluster_for, parallel=8, force=False, wait=False, timeout=300, out=sys.stdout,
                 applysets=False, scrub=None):
        self.cluster_for = cluster_for
        self.parallel = max(1, parallel)
        self.force = force
        self.wait = wait
        self.timeout = timeout
        self.out = out
        self._lock = threading.Lock()
        self._listed = {}
        self.applysets = applysets
        self.board = None  # a board.Board on a terminal
        self.scrub = scrub or (lambda data, text: text)

    def say(self, text):
        if self.board is not None:
            self.board.print(text)
        elif self.out is not None:
            with self._lock:
                print(text, file=self.out, flush=True)

    def status(self, component, text):
        """A component's state for the live board, if there is one (nothing is printed)."""
        if self.board is not None and component:
            self.board.update(component, text)

    # --- apply ---------------------------------------------------------------

    def apply(self, tiers, dry_run=False):
        """Apply every tier in order; returns a Run (one component's objects, or one set)."""
        run = Run()
        ok, reason = self.apply_tiers(tiers, run, dry_run)
        if not ok and not any(o.result == "failed" for o in run.outcomes):
            run.stopped = reason  # a wait that failed; a failed object has its own line
        return run

    def apply_tiers(self, tiers, run, dry_run=False, label=""):
        """Apply tiers in order into `run`, waiting as readiness requires; (ok, why not).

        After each tier: CRDs, Namespaces and webhook backends (later objects cannot be
        applied without them) and the targets of depends-on annotations. At the end, with
        `wait`, everything that has a readiness rule. A failed object stops the tiers
        after its own; the rest are recorded as not applied.
        """
        targets = _depends_on_targets([o for tier in tiers for o in tier])
        applied = []
        self.status(label, "applying")
        for number, tier in enumerate(tiers):
            outcomes = self.map_objects(lambda o: self.apply_one(o, dry_run), tier)
            with self._lock:
                run.outcomes.extend(outcomes)
            for outcome in outcomes:
                self.say(outcome.line())
            applied += outcomes
            failed = [o for o in outcomes if o.result == "failed"]
            if failed:
                rest = [Outcome(o, "not applied") for t in tiers[number + 1:] for o in t]
                with self._lock:
                    run.outcomes.extend(rest)
                for outcome in rest:
                    self.say(outcome.line())
                return False, failed[0].line()
            if dry_run:
                continue
            pending = waits.checks(outcomes, kinds=readiness.STRUCTURAL_KINDS | readiness.WEBHOOK_KINDS)
            pending += [p for p in waits.checks([o for o in outcomes if id(o.obj) in targets])
                        if p not in pending]
            problem = self._wait(pending, label)
            if problem:
                return False, problem
        if self.wait and not dry_run:
            # webhooks were waited for after their own tier
            problem = self._wait(waits.checks(applied, skip=readiness.WEBHOOK_KINDS), label)
            if problem:
                return False, problem
        return True, ""

    def _progress(self, line):
        """On the board, the 10 s line (with its pods' reasons) updates the row instead."""
        label, _, text = line.partition(": ")
        self.status(label, text)

    def _wait(self, pending, label):
        """None once `pending` is ready, else what went wrong."""
        if not pending:
            return None
        try:
            waits.wait_until_ready(pending, self.cluster_for, self.timeout, label=label,
                                   progress=self._progress if self.board else self.say,
                                   status=lambda text: self.status(label, text))
        except BadReply:
            raise
        except UserError as err:
            return str(err)
        return None

    def map_objects(self, fn, objects):
        if self.parallel == 1 or len(objects) <= 1:
            return [fn(o) for o in objects]
        with ThreadPoolExecutor(max_workers=min(self.parallel, len(objects))) as pool:
            return list(pool.map(fn, objects))

    def apply_one(self, obj, dry_run):
        cluster = self.cluster_for(obj.component)
        try:
            resource = self._resource(cluster, obj)
            namespace = self._namespace(resource, obj)
            params = {"field_manager": FIELD_MANAGER, "serialize": False}
            if self.force:
                params["force_conflicts"] = True
            if dry_run:
                params["dry_run"] = "All"
            sent = body(obj, self.set_of(obj))
            cluster.clock.fence()
            response = cluster.call(lambda: cluster.dynamic.server_side_apply(
                resource, body=sent, name=obj.name, namespace=namespace, **params),
                obj=obj.ref)
        except BadReply:
            raise  # the server's answers cannot be used: the run ends (install.FATAL)
        except (ApiError, UserError) as err:
            return Outcome(obj, "failed", self.scrub(obj.data, err.message))
        data = document(response)
        if response.status == 201:  # a dry run's create answers 201 as well
            result = "created"
        else:
            result = "configured" if changed(data, cluster.clock) else "unchanged"
        if dry_run:
            result += " " + DRY_RUN
        return Outcome(obj, result, response=data)

    def set_of(self, obj):
        """The ApplySet id an object carries, or None."""
        if not self.applysets or getattr(obj, "component_label", None):
            return None
        from .applyset import set_id

        return set_id(obj.component)

    def _resource(self, cluster, obj):
        resource = cluster.resource(obj.api_version, obj.kind)
        if resource is None:
            raise UserError(f"the cluster does not serve {obj.kind} in {obj.api_version}")
        return resource

    @staticmethod
    def _namespace(resource, obj):
        if not resource.namespaced:
            return None
        namespace = obj.namespace or getattr(obj, "default_namespace", None) or "default"
        obj.data.setdefault("metadata", {})["namespace"] = namespace
        return namespace

    def listed(self, cluster, resource, namespace):
        """name -> object from one LIST per kind and namespace, taken once per run.

        Concurrent workers asking for the same LIST wait for the first one's answer.
        """
        key = (id(cluster), resource.group_version, resource.kind, namespace)
        with self._lock:
            entry = self._listed.get(key)
            owner = entry is None
            if owner:
                entry = self._listed[key] = {"ready": threading.Event(), "items": {}}
        if owner:
            try:
                listing = cluster.call(lambda: cluster.dynamic.get(
                    resource, namespace=namespace, serialize=False))
                entry["items"] = {i["metadata"]["name"]: i
                                  for i in document(listing).get("items") or []}
            except ApiError as err:
                if err.status != 403:
                    raise
                # A context that may not list this kind can still apply it; its
                # objects then show as configured rather than unchanged.
            finally:
                entry["ready"].set()
        entry["ready"].wait()
        return entry["items"]

    # --- delete --------------------------------------------------------------

    def delete(self, tiers, done="deleted", dry_run=False):
        """Delete every object, tiers in reverse and objects of a tier concurrently.

        Parameters:
            tiers: the apply tiers of the objects.
            done: the word for a deleted object in progress lines (`pruned` for prune).
            dry_run: the server's dry run: it checks each delete and keeps the object.
        """
        run = Run()
        namespaces = []
        for tier in reversed(tiers):
            outcomes = self.map_objects(lambda o: self._delete_one(o, done, dry_run), list(reversed(tier)))
            for outcome in outcomes:
                run.outcomes.append(outcome)
                self.say(outcome.line())
                if outcome.result == done and (outcome.obj.kind == "Namespace" or _finalizing(outcome.response)):
                    namespaces.append(outcome)
        if namespaces and not dry_run:
            try:
                waits.wait_for_deletion(namespaces, self.cluster_for, self.timeout, self.say)
            except UserError as err:
                run.stopped = str(err)
        return run

    def _delete_one(self, obj, done, dry_run=False):
        cluster = self.cluster_for(obj.component)
        try:
            resource = cluster.resource(obj.api_version, obj.kind)
            if resource is None:
                return Outcome(obj, "not found", "kind not served by the cluster")
            namespace = self._namespace(resource, obj)
            extra = {"dry_run": "All"} if dry_run else {}
            response = cluster.call(lambda: cluster.dynamic.delete(
                resource, name=obj.name, namespace=namespace, propagation_policy="Background",
                serialize=False, **extra), obj=obj.ref)
        except ApiError as err:
            if err.status == 404:
                return Outcome(obj, "not found")
            return Outcome(obj, "failed", err.message)
        except BadReply:
            raise
        except UserError as err:
            return Outcome(obj, "failed", err.message)
        try:
            answer = document(response)
        except (ValueError, AttributeError):
            answer = None
        return Outcome(obj, f"{done} {DRY_RUN}" if dry_run else done, response=answer)


def changed(answer, clock):
    """Whether the apply that answered `answer` changed the object (or, in a dry run, would).

    The server moves the time of the toolkit's Apply entry in managedFields only when
    an apply changes something, so the entry tells it without reading the object first:
    set during this run (`clock`) is changed. An answer without the entry is changed.
    """
    for entry in (answer.get("metadata") or {}).get("managedFields") or ():
        if isinstance(entry, dict) and entry.get("manager") == FIELD_MANAGER and entry.get("operation") == "Apply" \
                and not entry.get("subresource"):
            return clock.changed_since_began(entry.get("time"))
    return True


def _depends_on_targets(objects):
    """ids of the objects that a `k8s-toolkit/depends-on` annotation names (they are waited for)."""
    from ..core.order import dependency_edges

    return {id(target) for _, target in dependency_edges(objects, missing_ok=True)}


def _finalizing(answer):
    """Whether a DELETE's answer is the object held by finalizers (it is gone only later)."""
    metadata = (answer or {}).get("metadata") if isinstance(answer, dict) else None
    return bool(metadata and metadata.get("finalizers") and metadata.get("deletionTimestamp"))

"""Wait: poll applied objects until the readiness table says they are usable.

Each object is read with a GET, backing off from 0.2 s to 0.5 s, and judged by
its kind's rule (`readiness`); a webhook configuration is judged by the
EndpointSlices of the Services it calls. A failure (a failed Job, with its
pod's reason) ends the wait at once. Every `PROGRESS_EVERY` seconds the wait
says what it still waits for; the timeout is kept to the poll, and its error
names every object still waiting and the last state seen.
"""

import time
from urllib.parse import quote

from . import readiness
from .connection import ApiError, BadReply, document
from .readiness import State
from ..errors import UserError

POLL_START, POLL_MAX = 0.2, 0.5  # a person waits on this: a ready object is seen within half a second
PROGRESS_EVERY = 10.0


def checks(outcomes, kinds=None, skip=()):
    """(outcome, rule) for every applied object that has a rule (of `kinds`, if given, and
    not of `skip`) and does not already hold in the server's answer to the apply."""
    pending = []
    for outcome in outcomes:
        obj = outcome.obj
        if outcome.response is None or (kinds is not None and obj.kind not in kinds) or obj.kind in skip:
            continue
        if obj.kind in readiness.WEBHOOK_KINDS:
            pending.append((outcome, None))  # judged by its Services' endpoints
            continue
        rule = readiness.rule_for(obj.kind, obj.group)
        if rule and not _state(rule, outcome.response, lambda: f"{obj.display}: the answer to its apply").ready:
            pending.append((outcome, rule))
    return pending


def wait_until_ready(pending, cluster_for, timeout, progress=None, label="", read=None, status=None):
    """Poll until every (outcome, rule) of `pending` is ready.

    Parameters:
        pending: from `checks`.
        cluster_for: component name -> Cluster.
        timeout: seconds; the wait ends at that moment, not before.
        progress: prints one line; called every PROGRESS_EVERY seconds while waiting.
        label: what the progress line starts with (the component).
        read: (obj, cluster) -> the object now (default `fetch`).
        status: called after every poll with what is still awaited (for a live board).
    A failure or the timeout is a UserError naming the objects.
    """
    start = time.monotonic()
    deadline, delay, next_line = start + timeout, POLL_START, start + PROGRESS_EVERY
    last, seen = {}, {}
    while True:
        still = []
        reader = read or _batched(pending, cluster_for)
        for outcome, rule in pending:
            state, seen[id(outcome)] = _judge(outcome, rule, cluster_for, reader)
            if state.failed:
                raise UserError(f"{outcome.obj.display} {state.detail}")
            if not state.ready:
                last[id(outcome)] = state.detail
                still.append((outcome, rule))
        pending = still
        if not pending:
            return
        now = time.monotonic()
        if status:
            status(f"{int(now - start)}s, waiting for " + "; ".join(f"{o.obj.display} ({last[id(o)]})"
                                                                   for o, _ in pending))
        if now >= deadline or (progress and now >= next_line):
            waiting = "; ".join(f"{o.obj.display} ({_why(o, last[id(o)], seen[id(o)], cluster_for)})"
                                for o, _ in pending)
            if now >= deadline:
                raise UserError(f"timed out after {timeout:g}s waiting for {waiting}")
            progress(f"{label}: {int(now - start)}s, waiting for {waiting}" if label else
                     f"waiting for {waiting}")
            next_line = now + PROGRESS_EVERY
        time.sleep(min(delay, max(0.0, deadline - now)))
        delay = min(delay * 2, POLL_MAX)


def _judge(outcome, rule, cluster_for, read):
    """(State, the object as read)."""
    obj = outcome.obj
    cluster = cluster_for(obj.component)
    if rule is None:  # a webhook configuration: what it calls is in the apply's answer
        return _webhook_backends(cluster, outcome.response), outcome.response
    try:
        data = read(obj, cluster)
    except ApiError as err:
        # Gone with a TTL means finished (whether it succeeded went with it; what it made
        # is what later objects wait on).
        if err.status == 404 and readiness.removes_itself(obj.kind, outcome.response):
            return State(True, "finished (removed by its ttlSecondsAfterFinished)"), None
        raise
    state = _state(rule, data, lambda: f"{cluster.last_request()}: {obj.display}")
    if state.failed and obj.kind == "Job":
        why = _job_pod_reason(cluster, obj)
        if why:
            state = State(False, f"{state.detail}; pod {why}", failed=True)
    return state, data


def _state(rule, data, where):
    """`rule(data)`; an answer whose status has another shape than the rules read (a string
    where conditions belong) is a BadReply starting with `where()`, not a traceback."""
    try:
        return rule(data)
    except (AttributeError, TypeError, KeyError, ValueError) as err:
        raise BadReply(f"{where()}: the reply's status is not what a {data.get('kind') or 'object'} has "
                       f"({type(err).__name__}: {err})") from None


def _why(outcome, detail, data, cluster_for):
    """`detail`, and for a workload what its first pod that is not ready says (read only
    when a person is told: at a progress line or the timeout)."""
    if outcome.obj.kind not in readiness.ROLLOUT_KINDS or not data:
        return detail
    labels = ((data.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if not labels:
        return detail
    try:
        problem = _pod_problem(cluster_for(outcome.obj.component), outcome.obj.namespace, labels)
    except (UserError, AttributeError, TypeError, KeyError, ValueError):
        return detail  # the reason is a courtesy: never let it hide the wait's own answer
    return f"{detail}: {problem}" if problem else detail


def _pod_problem(cluster, namespace, labels):
    selector = quote(",".join(f"{k}={v}" for k, v in sorted(labels.items())))
    pods = _get(cluster, f"/api/v1/namespaces/{namespace}/pods?labelSelector={selector}").get("items") or []
    if not pods:
        return "no pods yet"
    for pod in pods:
        status = pod.get("status") or {}
        if readiness.condition(pod, "Ready") and readiness.condition(pod, "Ready").get("status") == "True":
            continue
        name = pod["metadata"]["name"]
        scheduled = readiness.condition(pod, "PodScheduled")
        if scheduled and scheduled.get("status") == "False":
            return f"pod {name} Pending: {' '.join(str(scheduled.get('message', '')).split())}"
        for container in status.get("containerStatuses") or []:
            waiting = (container.get("state") or {}).get("waiting")
            if waiting:
                message = waiting.get("message") or _last_warning(cluster, namespace, name)
                return f"pod {name} {waiting.get('reason', 'waiting')}" + (f": {message}" if message else "")
        return f"pod {name} {status.get('phase', 'Pending')}, not ready"
    return None


def _last_warning(cluster, namespace, pod):
    """The newest Warning event of a pod (kubelet's FailedMount, for one), as `kubectl describe` shows it."""
    selector = quote(f"involvedObject.name={pod},type=Warning")
    events = _get(cluster, f"/api/v1/namespaces/{namespace}/events?fieldSelector={selector}").get("items") or []
    if not events:
        return ""
    newest = max(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or
                 (e.get("metadata") or {}).get("creationTimestamp") or "")
    return " ".join(str(newest.get("message", "")).split())


def _batched(pending, cluster_for):
    """A reader for one poll: objects of one kind and namespace that are waited for
    together are read with one LIST (not a GET each); the rest with `fetch`."""
    groups = {}
    for outcome, rule in pending:
        if rule is not None:
            obj = outcome.obj
            groups.setdefault((obj.component, obj.api_version, obj.kind, obj.namespace), []).append(obj)
    listed = {}

    def read(obj, cluster):
        key = (obj.component, obj.api_version, obj.kind, obj.namespace)
        if len(groups.get(key, ())) < 2:
            return fetch(obj, cluster)
        if key not in listed:
            resource = cluster.resource(obj.api_version, obj.kind)
            response = cluster.call(lambda: cluster.dynamic.get(
                resource, namespace=obj.namespace if resource.namespaced else None, serialize=False))
            items = document(response).get("items") or []
            for item in items:  # a LIST's items carry no apiVersion and kind; the rules read kind
                item.setdefault("apiVersion", obj.api_version)
                item.setdefault("kind", obj.kind)
            listed[key] = {i["metadata"]["name"]: i for i in items}
        if obj.name not in listed[key]:
            raise ApiError(f"{obj.display} not found", 404, "NotFound", obj=obj.ref)
        return listed[key][obj.name]

    return read


def fetch(obj, cluster):
    """The object as the server has it now."""
    resource = cluster.resource(obj.api_version, obj.kind)
    response = cluster.call(lambda: cluster.dynamic.get(
        resource, name=obj.name, namespace=obj.namespace if resource.namespaced else None,
        serialize=False), obj=obj.ref)
    return document(response)


def _get(cluster, path):
    response = cluster.call(lambda: cluster.dynamic.request("get", path, serialize=False))
    return document(response)


def _webhook_backends(cluster, data):
    """Ready when every Service the webhooks call has a ready endpoint."""
    for namespace, name in readiness.webhook_services(data):
        selector = quote(f"kubernetes.io/service-name={name}")
        slices = _get(cluster, f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
                               f"?labelSelector={selector}").get("items") or []
        state = readiness.endpoints_ready(slices)
        if not state.ready:
            return State(False, f"service {namespace}/{name}: no ready endpoint yet")
    return State(True, "backends ready")


def _job_pod_reason(cluster, obj):
    """Why the Job's last failed pod failed: its container's reason, exit code and message."""
    selector = quote(f"batch.kubernetes.io/job-name={obj.name}")
    pods = _get(cluster, f"/api/v1/namespaces/{obj.namespace}/pods?labelSelector={selector}").get("items") or []
    for pod in reversed(pods):
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            done = (status.get("state") or {}).get("terminated") or {}
            if done and done.get("exitCode"):
                parts = [done.get("reason") or "terminated", f"exit code {done['exitCode']}", done.get("message")]
                return f"{pod['metadata']['name']}: " + ", ".join(" ".join(str(p).split()) for p in parts if p)
    return ""


# --- deletion ---------------------------------------------------------------------------------

# What the namespace controller reports when it cannot finish; the common one on a kubeadm
# cluster is an aggregated API (metrics.k8s.io) whose backend is down: the controller will
# not finish any namespace while discovery of a group fails.
DELETION_FAILURES = ("NamespaceDeletionDiscoveryFailure", "NamespaceDeletionGroupVersionParsingFailure",
                     "NamespaceDeletionContentFailure", "NamespaceFinalizersRemaining")


def namespace_gone(data):
    if data is None:
        return State(True, "gone")
    for condition in (data.get("status") or {}).get("conditions") or []:
        if condition.get("type") in DELETION_FAILURES and condition.get("status") == "True":
            return State(False, f"still terminating: {' '.join(str(condition.get('message', '')).split())}")
    return State(False, "still terminating")


def wait_for_deletion(outcomes, cluster_for, timeout, say):
    """Wait until deleted objects that terminate slowly (namespaces, finalizers) are gone."""
    kinds = {o.obj.kind for o in outcomes}
    what = "namespace" if kinds == {"Namespace"} else "object"
    say(f"waiting for {len(outcomes)} {what}{'s' if len(outcomes) != 1 else ''} "
        f"to finish terminating (timeout {timeout:g}s)")
    wait_until_ready([(o, namespace_gone) for o in outcomes], cluster_for, timeout, progress=say,
                     read=_fetch_or_none)


def _fetch_or_none(obj, cluster):
    from .connection import ApiError

    try:
        return fetch(obj, cluster)
    except ApiError as err:
        if err.status == 404:
            return None
        raise

"""Readiness: when an applied object is usable, one rule per kind, in one table.

Each rule reads the object as the server returns it and answers a `State`:
ready, failed (it never will be: a Job that failed), or still waiting, with a
short description of where it stands that progress lines and timeouts repeat.
The rules are those `kubectl rollout status` and kstatus apply:

- Deployment, DaemonSet, StatefulSet: the controller observed the generation,
  and the updated and available (ready) replicas reach the desired count.
- Job: condition Complete; condition Failed is a failure with its reason.
- CustomResourceDefinition: Established.  APIService: Available.
- Namespace: phase Active.
- Mutating/ValidatingWebhookConfiguration: every webhook's Service has a ready
  endpoint (`webhook_services` names them; the waiter reads the EndpointSlices),
  because the API server refuses what such a webhook intercepts until then.
- Any other object with a `Ready` condition (kstatus): Ready=True; without
  conditions it is taken as ready, as kstatus takes an object without status.
"""

from dataclasses import dataclass

ROLLOUT_KINDS = {"Deployment", "DaemonSet", "StatefulSet"}
WEBHOOK_KINDS = {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
STRUCTURAL_KINDS = {"CustomResourceDefinition", "Namespace"}  # later tiers cannot even be applied without them


@dataclass(frozen=True)
class State:
    ready: bool
    detail: str
    failed: bool = False


def condition(data, kind):
    """The condition `kind` of an object's status, or None."""
    for c in (data.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return c
    return None


def last_condition(data):
    conditions = (data.get("status") or {}).get("conditions") or []
    if not conditions:
        return "no conditions yet"
    c = conditions[-1]
    text = f"{c.get('type')}={c.get('status')}"
    return f"{text}: {c['message']}" if c.get("message") else text


def _condition_true(kind):
    def rule(data):
        c = condition(data, kind)
        return State(bool(c) and c.get("status") == "True", last_condition(data))
    rule.__name__ = f"{kind.lower()}_condition"
    return rule


def namespace_active(data):
    phase = (data.get("status") or {}).get("phase")
    return State(phase == "Active", f"phase {phase or 'unknown'}")


def rollout_complete(data):
    """Done when the workload's rollout is: the conditions `kubectl rollout status` checks."""
    kind, spec, status = data.get("kind"), data.get("spec") or {}, data.get("status") or {}
    generation = (data.get("metadata") or {}).get("generation") or 0
    if (status.get("observedGeneration") or 0) < generation:
        return State(False, "waiting for the controller to observe the new generation")
    if kind == "DaemonSet":
        desired = status.get("desiredNumberScheduled") or 0
        updated = status.get("updatedNumberScheduled") or 0
        available = status.get("numberAvailable") or 0
        return State(updated >= desired and available >= desired,
                     f"{updated} of {desired} updated, {available} available")
    wanted = spec.get("replicas", 1)
    updated = status.get("updatedReplicas") or 0
    ready = status.get("readyReplicas") or 0
    if kind == "Deployment":
        total = status.get("replicas") or 0
        available = status.get("availableReplicas") or 0
        done = updated >= wanted and total <= updated and available >= updated
        return State(done, f"{available}/{wanted} ready, {updated} updated; {last_condition(data)}")
    return State(updated >= wanted and ready >= wanted, f"{ready}/{wanted} ready, {updated} updated")


def job_complete(data):
    failed = condition(data, "Failed")
    if failed and failed.get("status") == "True":
        why = ": ".join(filter(None, (failed.get("reason"), failed.get("message"))))
        return State(False, f"failed: {why or 'no reason given'}", failed=True)
    complete = condition(data, "Complete")
    if complete and complete.get("status") == "True":
        return State(True, "complete")
    status = data.get("status") or {}
    return State(False, f"{status.get('active') or 0} active, {status.get('succeeded') or 0} succeeded, "
                        f"{status.get('failed') or 0} failed")


def removes_itself(kind, data):
    """A Job with ttlSecondsAfterFinished: gone once finished, created again by each apply."""
    return kind == "Job" and ((data or {}).get("spec") or {}).get("ttlSecondsAfterFinished") is not None


def ready_condition(data):
    c = condition(data, "Ready")
    if c is None:
        return State(True, "no Ready condition")
    return State(c.get("status") == "True", last_condition(data))


RULES = {
    "Deployment": rollout_complete, "DaemonSet": rollout_complete, "StatefulSet": rollout_complete,
    "Job": job_complete,
    "CustomResourceDefinition": _condition_true("Established"),
    "APIService": _condition_true("Available"),
    "Namespace": namespace_active,
}
BUILT_IN_GROUPS = {"", "apps", "batch", "rbac.authorization.k8s.io", "networking.k8s.io", "policy",
                   "storage.k8s.io", "scheduling.k8s.io", "admissionregistration.k8s.io",
                   "apiextensions.k8s.io", "apiregistration.k8s.io", "autoscaling", "coordination.k8s.io",
                   "discovery.k8s.io", "node.k8s.io", "certificates.k8s.io", "flowcontrol.apiserver.k8s.io"}


def rule_for(kind, group):
    """The readiness rule of a kind, or None when the object is usable once applied."""
    if kind in RULES:
        return RULES[kind]
    if group not in BUILT_IN_GROUPS:  # a custom resource: kstatus' Ready condition
        return ready_condition
    return None


def webhook_services(data):
    """(namespace, name) of every Service the webhooks of a webhook configuration call."""
    services = []
    for webhook in data.get("webhooks") or []:
        service = ((webhook or {}).get("clientConfig") or {}).get("service")
        if service and service.get("name"):
            key = (service.get("namespace") or "default", service["name"])
            if key not in services:
                services.append(key)
    return services


def endpoints_ready(slices):
    """Whether EndpointSlices (their items) hold a ready endpoint, and how many do."""
    ready = sum(1 for s in slices for e in s.get("endpoints") or []
                if (e.get("conditions") or {}).get("ready") is not False)
    return State(ready > 0, f"{ready} ready endpoint{'s' if ready != 1 else ''}")

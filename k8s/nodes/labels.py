"""Node labels: the labels declared in volumes/nodes.yaml, kept on the nodes by server-side apply.

volumes/nodes.yaml gives the labels of every node of K8S_NODES, and maps node
names to more labels (variables work as in manifests):

    everyNode:
      service.data-sync: allow
    labels:
      kube2.$DOMAIN:
        disk: ssd

A node's labels are those of `everyNode` (when it is one of K8S_NODES) with its
own under `labels` on top.

`render.py node-labels` applies, for each node, a Node object holding only its
name and those labels, under a field manager of its own
(k8s-toolkit-node-labels). Server-side apply then changes those labels and
nothing else: not other labels, not the kubelet's, not the node's spec. A
label this manager applied before and that the map no longer has is removed
by the server itself, because the manager stops applying it; a node dropped
from the map gets an apply without labels, which releases all of its. A label
that another manager set too (`kubectl label` earlier, say) stays when the map
drops it; the run names the other manager.

Nodes are never created: a node of the map that the cluster does not have is
an error before anything is written. Module-level imports are the standard
library's cheapest part only (`render.py --help` imports this module).
"""

import os

from ..core import object_names
from ..errors import UserError, raise_all

COMMANDS = ("node-labels",)
FIELD_MANAGER = "k8s-toolkit-node-labels"
NODES_FILE = "nodes.yaml"
HOSTNAME_LABEL = "kubernetes.io/hostname"

def node_name_problem(name):
    """Why `name` cannot be a Kubernetes node's name (a DNS-1123 subdomain), or None."""
    if not isinstance(name, str) or not name or len(name) > 253 or not object_names.DNS1123_SUBDOMAIN.fullmatch(name):
        return (f"{name!r} is not a node name (a DNS-1123 subdomain: at most 253 lowercase letters, "
                "digits, '-' and '.', starting and ending with a letter or digit)")
    return None


def label_key_problem(key):
    """Why `key` is not a valid label key, or None (the API server's rule: object_names)."""
    if not isinstance(key, str):
        return f"label key {key!r} must be a string"
    problem = object_names.label_key_problem(key)
    return f"label key {key!r}: {problem}" if problem else None


def label_value_problem(key, value):
    """Why `value` is not a valid value for label `key`, or None."""
    if isinstance(value, bool) or isinstance(value, (int, float)):
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        return f"label {key}: value {shown} is not a string: quote it (\"{shown}\")"
    if value is None:
        return f"label {key}: no value: write \"\" for an empty one"
    if not isinstance(value, str):
        return f"label {key}: value must be a string"
    problem = object_names.label_value_problem(value)
    return f"label {key}: value {value!r} {problem}" if problem else None


def load(directory, variables):
    """{node name: {label: value}} from `directory`/nodes.yaml, and node -> line."""
    from .volume_reader import _load_document

    path = os.path.join(directory, NODES_FILE)
    if not os.path.isfile(path):
        raise UserError(f"no node labels: {path} not found")
    data, reader = _load_document(path, variables)
    if data is None:
        return {}, {}
    data = reader.mapping(data, [], "the node labels file", ("everyNode", "labels"))
    raise_all(reader.errors)
    labels = data.get("labels") or {}
    if not isinstance(labels, dict):
        reader.error(["labels"], "labels must be a mapping of node names to labels")
        raise_all(reader.errors)
    wanted, lines = {}, {}
    every = _checked(reader, ["everyNode"], "every node", data.get("everyNode"))
    if every:
        for node in variables.get("K8S_NODES", "").split():
            problem = node_name_problem(node)
            if problem:
                reader.error(["everyNode"], f"K8S_NODES: node {problem}")
                continue
            wanted[node], lines[node] = dict(every), reader.line(["everyNode"])
    for node, node_labels in labels.items():
        problem = node_name_problem(node)
        if problem:
            reader.error(["labels", node], f"node {problem}{reader.origin(['labels', node])}")
            continue
        own = _checked(reader, ["labels", node], f"node {node}", node_labels)
        if own is not None:
            wanted[str(node)] = {**wanted.get(str(node), {}), **own}
            lines[node] = reader.line(["labels", node])
    raise_all(reader.errors)
    return wanted, lines


def _checked(reader, path, who, node_labels):
    """{key: value} of one labels mapping, its problems reported to `reader`; None if not a mapping."""
    if node_labels is None:
        return {}
    if not isinstance(node_labels, dict):
        reader.error(path, f"{who}: labels must be a mapping (key: value)")
        return None
    for key, value in node_labels.items():
        problem = label_key_problem(key) or label_value_problem(key, value)
        if problem:
            reader.error([*path, key], f"{who}: {problem}")
    return {str(k): v for k, v in node_labels.items()}


# --- the cluster's nodes ----------------------------------------------------

def list_nodes(cluster):
    """Every Node of the cluster (one LIST), by name."""
    import json

    resource = cluster.resource("v1", "Node")
    if resource is None:
        raise UserError(f"the API server {cluster.url} does not serve v1 Node")
    listing = cluster.call(lambda: cluster.dynamic.get(resource, serialize=False))
    return {item["metadata"]["name"]: item for item in json.loads(listing.data).get("items") or []}


def check_hostnames(cluster, names):
    """Errors for each of `names` that no node of the cluster carries as its hostname label.

    A PersistentVolume's node affinity selects `kubernetes.io/hostname` = the node's name in
    K8S_NODES: a node that is missing, or whose hostname label differs, never gets its volumes.
    """
    found = list_nodes(cluster)
    hostnames = {(n["metadata"].get("labels") or {}).get(HOSTNAME_LABEL) for n in found.values()}
    errors = []
    for name in names:
        if name in hostnames:
            continue
        if name in found:
            actual = (found[name]["metadata"].get("labels") or {}).get(HOSTNAME_LABEL)
            errors.append(UserError(f"node {name} has label {HOSTNAME_LABEL}={actual}: its volumes, "
                                    f"which select {HOSTNAME_LABEL}={name}, could never be used"))
        else:
            errors.append(UserError(f"node {name} of K8S_NODES is not in the cluster (context "
                                    f"{cluster.context}; it has {', '.join(sorted(found)) or 'no nodes'})"))
    return errors


def owned_labels(node, manager):
    """Label keys `manager` holds by apply on `node`, per its managedFields."""
    owned = set()
    for entry in node["metadata"].get("managedFields") or []:
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            fields = ((entry.get("fieldsV1") or {}).get("f:metadata") or {}).get("f:labels") or {}
            owned.update(k[2:] for k in fields if k.startswith("f:"))
    return owned


def other_owners(node, key, manager):
    """Managers other than `manager` that hold label `key` on `node`."""
    owners = []
    for entry in node["metadata"].get("managedFields") or []:
        fields = ((entry.get("fieldsV1") or {}).get("f:metadata") or {}).get("f:labels") or {}
        if entry.get("manager") != manager and f"f:{key}" in fields and entry.get("manager") not in owners:
            owners.append(entry.get("manager"))
    return owners


# --- applying ---------------------------------------------------------------

def plan(wanted, nodes):
    """(node name, labels to apply) for every node: the map's, then nodes this manager labelled
    before that the map no longer names (applied with no labels, which releases them)."""
    steps = [(name, wanted[name]) for name in wanted]
    steps += [(name, {}) for name in sorted(nodes)
              if name not in wanted and owned_labels(nodes[name], FIELD_MANAGER)]
    return steps


def node_body(name, labels):
    metadata = {"name": name}
    if labels:
        metadata["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "Node", "metadata": metadata}


def apply_labels(cluster, steps, nodes, force=False, dry_run=False, parallel=4, say=None):
    """Apply each step; returns an apply.Run with one Outcome per node."""
    from concurrent.futures import ThreadPoolExecutor

    import json

    from ..cluster.apply import Outcome, Run
    from ..cluster.connection import ApiError
    from ..core.render import RenderedObject, Source

    resource = cluster.resource("v1", "Node")

    def one(step):
        name, labels = step
        obj = RenderedObject(node_body(name, labels), "node-labels", Source(NODES_FILE, 1, 0, ""))
        params = {"field_manager": FIELD_MANAGER, "serialize": False}
        if force:
            params["force_conflicts"] = True
        if dry_run:
            params["dry_run"] = "All"
        before = nodes[name]
        try:
            response = cluster.call(lambda: cluster.dynamic.server_side_apply(
                resource, body=obj.data, name=name, **params), obj=obj.ref)
        except ApiError as err:
            hint = "; --force-conflicts takes the labels over" \
                if err.status == 409 and "--force-conflicts" not in err.message else ""
            return Outcome(obj, "failed", err.message + hint), []
        after = json.loads(response.data)
        return _outcome(obj, before, after, labels, dry_run), _notes(name, before, after, labels)

    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(steps) or 1))) as pool:
        results = list(pool.map(one, steps))
    run = Run()
    for outcome, notes in results:
        run.outcomes.append(outcome)
        if say:
            say(outcome.line())
            for note in notes:
                say(note)
    return run


def _outcome(obj, before, after, labels, dry_run):
    """The node's Outcome: what changed of the labels this run applies or releases.

    Only those labels and who holds them by this manager's apply count. A resourceVersion
    says nothing here: a kubelet's status update or a controller's write between the LIST
    and the apply changes it while this run changed nothing, and other labels may change
    meanwhile too (not this run's doing).
    """
    from ..cluster.apply import Outcome

    old = before["metadata"].get("labels") or {}
    new = after["metadata"].get("labels") or {}
    held_before = owned_labels(before, FIELD_MANAGER)
    ours = set(labels) | held_before
    changes = [f"+{k}={new[k]}" if k not in old else f"{k}={old[k]}->{new[k]}"
               for k in sorted(ours) if k in new and old.get(k) != new[k]]
    changes += [f"-{k}" for k in sorted(ours) if k in old and k not in new]
    same = not changes and owned_labels(after, FIELD_MANAGER) == held_before
    result = "unchanged" if same else "configured"
    if dry_run:
        result += " (server dry run)"
    message = ", ".join(changes) or ("" if same else "no label changed, only who manages them")
    return Outcome(obj, result, message, response=after)


def _notes(name, before, after, labels):
    """Labels dropped from the map that stay on the node because another manager holds them."""
    notes = []
    current = after["metadata"].get("labels") or {}
    for key in sorted(owned_labels(before, FIELD_MANAGER) - set(labels)):
        if key in current:
            owners = other_owners(after, key, FIELD_MANAGER) or other_owners(before, key, FIELD_MANAGER)
            notes.append(f"note: node/{name}: label {key} stays, also set by "
                         f"{', '.join(owners) or 'another field manager'}; remove it with "
                         f"kubectl label node {name} {key}-")
    return notes

"""Aggregated discovery: every served kind of every group in two requests.

Since Kubernetes 1.26 (GA in 1.30) `/api` and `/apis` answer, when asked for
`APIGroupDiscoveryList`, with every group version and its resources at once;
the client's own discoverer instead reads one document per group version (a
run of the shipped components touched eight). `Index` turns that answer into
the client's Resource objects. A server that does not offer it (it answers with
the plain group list) gets None, and the Cluster keeps to the client's
discoverer.

`replies.discovery_spec` says what the discovery documents must hold for the client and
`Index` to read them; the connection refuses any answer that does not.
"""


ACCEPT = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
          "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")


class Index:
    """Resources by (group, version, kind), and each group's preferred version."""

    def __init__(self):
        self.resources = {}
        self.preferred = {}

    def get(self, group, version, kind):
        return self.resources.get((group, version, kind))

    def preferred_of(self, group, kind):
        version = self.preferred.get(group)
        found = self.resources.get((group, version, kind)) if version else None
        if found is None:  # a kind only in a version the group does not prefer
            found = next((r for (g, _, k), r in self.resources.items() if g == group and k == kind), None)
        return found


def fetch(dynamic, call):
    """The Index of the server behind `dynamic` (a DynamicClient), or None when the server
    does not serve aggregated discovery. `call` runs one request with the Cluster's retries."""
    from .replies import document as parsed

    index = Index()
    for prefix in ("api", "apis"):
        response = call(lambda: dynamic.request("get", f"/{prefix}", serialize=False,
                                                header_params={"Accept": ACCEPT}))
        document = parsed(response)  # checked against replies.SHAPES as it arrived
        if document.get("kind") != "APIGroupDiscoveryList":
            return None
        _add(index, dynamic, prefix, document)
    return index


def _add(index, dynamic, prefix, document):
    from kubernetes.dynamic.resource import Resource

    for group_entry in document.get("items") or ():
        group = ((group_entry.get("metadata") or {}).get("name")) or ""
        versions = group_entry.get("versions") or ()
        for position, version_entry in enumerate(versions):
            version = version_entry.get("version")
            if position == 0:
                index.preferred[group] = version  # the list is in order of preference
            for entry in version_entry.get("resources") or ():
                kind = (entry.get("responseKind") or {}).get("kind")
                if not kind or not version:
                    continue
                index.resources[(group, version, kind)] = Resource(
                    prefix=prefix, group=group or None, api_version=version, kind=kind,
                    namespaced=entry.get("scope") == "Namespaced", verbs=entry.get("verbs") or [],
                    name=entry.get("resource"), preferred=position == 0, client=dynamic,
                    singularName=entry.get("singularResource"), shortNames=entry.get("shortNames") or [],
                    categories=entry.get("categories") or [], subresources={})

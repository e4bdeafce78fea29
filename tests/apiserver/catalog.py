"""The API discovery catalog of the stand-in: built-in kinds plus established CRDs.

The source of truth is kmock's ``ResourcesArray`` (``emulator.resources``), loaded
from the discovery documents that kmock bundles (captured from a real cluster).
This module adds what kmock's registry does not keep: the preferred order of
versions per group, the exact sub-resource entries (e.g. ``deployments/scale``
is of kind ``Scale``), and CRD bookkeeping. It renders the legacy discovery
documents (``/api``, ``/api/v1``, ``/apis``, ``/apis/<g>``, ``/apis/<g>/<v>``)
the way a real kube-apiserver does, which is all ``kubernetes.dynamic`` needs.
"""

import gzip
import importlib.resources
import json
import re
from typing import Any

from kmock import ResourceInfo, ResourcesArray, resource

# Groups in kmock's bundle that a plain kubeadm cluster does not serve out of the box.
NOT_BUILT_IN = {"gateway.networking.k8s.io", "metrics.k8s.io"}

# Kinds whose registry strategy maintains metadata.generation (a subset of the real list).
GENERATION_RESOURCES = {
    ("apps", "deployments"), ("apps", "statefulsets"), ("apps", "daemonsets"),
    ("apps", "replicasets"), ("batch", "jobs"), ("batch", "cronjobs"),
    ("", "replicationcontrollers"), ("", "pods"),
    ("autoscaling", "horizontalpodautoscalers"), ("policy", "poddisruptionbudgets"),
    ("networking.k8s.io", "ingresses"), ("networking.k8s.io", "networkpolicies"),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
    ("admissionregistration.k8s.io", "validatingadmissionpolicies"),
    ("admissionregistration.k8s.io", "validatingadmissionpolicybindings"),
    ("flowcontrol.apiserver.k8s.io", "flowschemas"),
    ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations"),
}

CRD_VERBS = ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]

_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple:
    """Sort key of API versions as Kubernetes orders them (v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > foo)."""
    m = _KUBE_VERSION.match(version)
    if not m:
        return (1, 0, 0, version)  # non-kube-like versions go last, alphabetically
    major, stage, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (0, rank, -major, -minor)


def _bundled_documents() -> list[dict[str, Any]]:
    data = importlib.resources.files("kmock._internal").joinpath("resources.json.gz").read_bytes()
    docs = json.loads(gzip.decompress(data))
    return [doc for doc in docs if split_api_version(doc["groupVersion"])[0] not in NOT_BUILT_IN]


def split_api_version(api_version: str) -> tuple[str, str]:
    if "/" in api_version:
        group, version = api_version.rsplit("/", 1)
        return group, version
    return "", api_version


def join_api_version(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


class Catalog:
    """Which (group, version, plural) exist, their kinds, scopes, verbs; rendered as discovery."""

    def __init__(self, resources: ResourcesArray) -> None:
        self.resources = resources  # kmock's registry (may also be extended directly by tests)
        self.group_versions: dict[str, list[str]] = {}  # group -> versions, preferred first
        self.group_order: list[str] = []  # "" first, then in the order a real aggregator lists them
        self.sub_entries: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        self.crd_resources: dict[str, list[resource]] = {}  # CRD name -> what it added
        self.storage_memo: dict[tuple[str, str], resource] = {}  # (group, plural) -> the storage key

    # -- loading ---------------------------------------------------------------------------

    def load_builtin(self) -> None:
        docs = _bundled_documents()
        self.resources.load_data(json.dumps(docs))
        for doc in docs:
            group, version = split_api_version(doc["groupVersion"])
            self._add_group_version(group, version, preferred=False)
            for entry in doc["resources"]:
                if "/" in entry["name"]:
                    plural, _ = entry["name"].split("/", 1)
                    self.sub_entries.setdefault((group, version, plural), []).append(dict(entry))

    def _add_group_version(self, group: str, version: str, preferred: bool | None) -> None:
        if group not in self.group_versions:
            self.group_versions[group] = []
            self.group_order.append(group)
        versions = self.group_versions[group]
        if version not in versions:
            versions.append(version)
            if preferred is None:  # CRD groups: kube-like priority order
                versions.sort(key=version_priority)

    def _drop_group_version_if_empty(self, group: str, version: str) -> None:
        if not any(r.group == group and r.version == version for r in self.resources):
            versions = self.group_versions.get(group, [])
            if version in versions:
                versions.remove(version)
            if not versions and group in self.group_versions:
                del self.group_versions[group]
                self.group_order.remove(group)

    # -- CRDs ------------------------------------------------------------------------------

    def add_crd(self, crd: dict[str, Any]) -> None:
        spec = crd.get("spec", {})
        group = spec["group"]
        names = spec["names"]
        namespaced = spec.get("scope", "Namespaced") == "Namespaced"
        name = crd["metadata"]["name"]
        self.remove_crd(name, forget_storage=False)
        added: list[resource] = []
        for ver in spec.get("versions", []):
            if not ver.get("served", True):
                continue
            res = resource(group, ver["name"], names["plural"])
            subresources = set((ver.get("subresources") or {}).keys())
            self.resources[res] = ResourceInfo(
                namespaced=namespaced,
                kind=names["kind"],
                singular=names.get("singular") or names["kind"].lower(),
                verbs=set(CRD_VERBS),
                shortnames=set(names.get("shortNames") or []),
                categories=set(names.get("categories") or []),
                subresources=subresources,
            )
            self._add_group_version(group, ver["name"], preferred=None)
            added.append(res)
        self.crd_resources[name] = added

    def remove_crd(self, name: str, *, forget_storage: bool = True) -> list[resource]:
        removed = self.crd_resources.pop(name, [])
        for res in removed:
            if forget_storage:
                self.storage_memo.pop((res.group, res.plural), None)
            if res in self.resources:
                del self.resources[res]
            self._drop_group_version_if_empty(res.group, res.version)
        return removed

    # -- lookups ---------------------------------------------------------------------------

    def info(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        res = resource(group, version, plural)
        if res in self.resources:
            return self.resources[res]
        return None

    def versions_of(self, group: str) -> list[str]:
        known = list(self.group_versions.get(group, []))
        extra = sorted({r.version for r in self.resources if r.group == group and r.version not in known},
                       key=version_priority)
        return [v for v in known + extra if any(r.group == group and r.version == v for r in self.resources)]

    def groups(self) -> list[str]:
        ordered = [g for g in self.group_order if g]
        extra = sorted({r.group for r in self.resources if r.group and r.group not in ordered})
        return [g for g in ordered + extra if self.versions_of(g)]

    def storage_version(self, group: str, plural: str) -> str | None:
        """One storage per (group, plural): the preferred version that serves it."""
        for version in self.versions_of(group):
            if self.info(group, version, plural) is not None:
                return version
        return None

    def storage_key(self, group: str, plural: str) -> resource | None:
        """Stable while the resource exists (objects do not move when a CRD gains a newer version)."""
        if (group, plural) in self.storage_memo:
            return self.storage_memo[(group, plural)]
        version = self.storage_version(group, plural)
        if version is None:
            return None
        key = self.storage_memo[(group, plural)] = resource(group, version, plural)
        return key

    def any_info(self, group: str, plural: str) -> ResourceInfo | None:
        for version in self.versions_of(group):
            info = self.info(group, version, plural)
            if info is not None:
                return info
        return None

    def find_kind(self, kind: str, api_version: str | None = None) -> list[resource]:
        """All storage keys matching a kind ('Deployment'), a plural ('deployments') or 'plural.group'."""
        found: list[resource] = []
        for res in list(self.resources):
            info = self.resources[res]
            if api_version is not None and split_api_version(api_version) != (res.group, res.version):
                continue
            names = {info.kind, res.plural, f"{res.plural}.{res.group}" if res.group else res.plural,
                     (info.kind or "").lower(), info.singular, *info.shortnames}
            if kind in names:
                key = self.storage_key(res.group, res.plural)
                if key is not None and key not in found:
                    found.append(key)
        return found

    def has_generation(self, group: str, plural: str) -> bool:
        return (group, plural) in GENERATION_RESOURCES or self.is_custom(group, plural)

    def is_custom(self, group: str, plural: str) -> bool:
        return any(r.group == group and r.plural == plural for rs in self.crd_resources.values() for r in rs)

    def has_status(self, group: str, version: str, plural: str) -> bool:
        info = self.info(group, version, plural)
        return info is not None and "status" in info.subresources

    # -- rendering -------------------------------------------------------------------------

    def api_versions(self, server_address: str) -> dict[str, Any]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
        }

    def _group_doc(self, group: str) -> dict[str, Any]:
        versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in self.versions_of(group)]
        return {"name": group, "versions": versions, "preferredVersion": dict(versions[0])}

    def api_group_list(self) -> dict[str, Any]:
        return {"kind": "APIGroupList", "apiVersion": "v1",
                "groups": [self._group_doc(g) for g in self.groups()]}

    def api_group(self, group: str) -> dict[str, Any] | None:
        if not group or not self.versions_of(group):
            return None
        return {"kind": "APIGroup", "apiVersion": "v1", **self._group_doc(group)}

    def api_resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        plurals = sorted(r.plural for r in self.resources if r.group == group and r.version == version)
        if not plurals:
            return None
        entries: list[dict[str, Any]] = []
        for plural in plurals:
            info = self.resources[resource(group, version, plural)]
            entry: dict[str, Any] = {
                "name": plural,
                "singularName": info.singular or plural,
                "namespaced": bool(info.namespaced),
                "kind": info.kind or plural.capitalize(),
                "verbs": sorted(info.verbs),
            }
            if info.shortnames:
                entry["shortNames"] = sorted(info.shortnames)
            if info.categories:
                entry["categories"] = sorted(info.categories)
            entries.append(entry)
            known = {e["name"]: e for e in self.sub_entries.get((group, version, plural), [])}
            for sub in sorted(info.subresources):
                sub_entry = known.get(f"{plural}/{sub}")
                if sub_entry is None:
                    sub_entry = {
                        "name": f"{plural}/{sub}", "singularName": "", "namespaced": bool(info.namespaced),
                        "kind": "Scale" if sub == "scale" else entry["kind"],
                        "verbs": ["get", "patch", "update"],
                    }
                    if sub == "scale":
                        sub_entry.update(group="autoscaling", version="v1")
                entries.append(dict(sub_entry))
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": join_api_version(group, version), "resources": entries}

"""Facts about the built-in Kubernetes kinds: scope, API groups, removed APIs.

Data, not code. Where each table comes from is written above it; the tests in
tests/core/test_validate.py check the tables against the schema files that ship
with kubernetes-validate, so a wrong entry fails there.
"""

# --- Scope ------------------------------------------------------------------
# (group, kind) of the cluster-scoped built-in kinds, "" being the core group.
# Derived from the REST paths of the Kubernetes API (a cluster-scoped kind has
# no /namespaces/{namespace}/ path), as exposed by the generated python client
# (kubernetes 37: read_X vs read_namespaced_X) for every kind in the 1.25-1.37
# schemas; the removed kinds (PodSecurityPolicy, ClusterCIDR, ResourceClass)
# from their published REST paths (/apis/policy/v1beta1/podsecuritypolicies,
# /apis/networking.k8s.io/v1alpha1/clustercidrs, ...).
CLUSTER_SCOPED = frozenset({
    ("", "ComponentStatus"),
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("authentication.k8s.io", "SelfSubjectReview"),
    ("authentication.k8s.io", "TokenReview"),
    ("authorization.k8s.io", "SelfSubjectAccessReview"),
    ("authorization.k8s.io", "SelfSubjectRulesReview"),
    ("authorization.k8s.io", "SubjectAccessReview"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("certificates.k8s.io", "ClusterTrustBundle"),
    ("extensions", "PodSecurityPolicy"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("internal.apiserver.k8s.io", "StorageVersion"),
    ("networking.k8s.io", "ClusterCIDR"),
    ("networking.k8s.io", "IPAddress"),
    ("networking.k8s.io", "IngressClass"),
    ("networking.k8s.io", "ServiceCIDR"),
    ("node.k8s.io", "RuntimeClass"),
    ("policy", "PodSecurityPolicy"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("resource.k8s.io", "DeviceClass"),
    ("resource.k8s.io", "DeviceTaintRule"),
    ("resource.k8s.io", "ResourceClass"),
    ("resource.k8s.io", "ResourcePoolStatusRequest"),
    ("resource.k8s.io", "ResourceSlice"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("storage.k8s.io", "VolumeAttributesClass"),
    ("storagemigration.k8s.io", "StorageVersionMigration"),
})

# The namespaced built-in kinds, same sources.
NAMESPACED = frozenset({
    ("", "Binding"),
    ("", "ConfigMap"),
    ("", "Endpoints"),
    ("", "Event"),
    ("", "LimitRange"),
    ("", "PersistentVolumeClaim"),
    ("", "Pod"),
    ("", "PodTemplate"),
    ("", "ReplicationController"),
    ("", "ResourceQuota"),
    ("", "Secret"),
    ("", "Service"),
    ("", "ServiceAccount"),
    ("apps", "ControllerRevision"),
    ("apps", "DaemonSet"),
    ("apps", "Deployment"),
    ("apps", "ReplicaSet"),
    ("apps", "StatefulSet"),
    ("authentication.k8s.io", "TokenRequest"),  # subresource of ServiceAccount
    ("authorization.k8s.io", "LocalSubjectAccessReview"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("autoscaling", "Scale"),  # subresource of the workloads
    ("batch", "CronJob"),
    ("batch", "Job"),
    ("certificates.k8s.io", "PodCertificateRequest"),
    ("coordination.k8s.io", "Lease"),
    ("coordination.k8s.io", "LeaseCandidate"),
    ("discovery.k8s.io", "EndpointSlice"),
    ("events.k8s.io", "Event"),
    ("extensions", "DaemonSet"),
    ("extensions", "Deployment"),
    ("extensions", "Ingress"),
    ("extensions", "NetworkPolicy"),
    ("extensions", "ReplicaSet"),
    ("lifecycle.k8s.io", "Eviction"),
    ("lifecycle.k8s.io", "EvictionRequest"),
    ("networking.k8s.io", "Ingress"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("policy", "Eviction"),
    ("policy", "PodDisruptionBudget"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("resource.k8s.io", "PodScheduling"),
    ("resource.k8s.io", "PodSchedulingContext"),
    ("resource.k8s.io", "ResourceClaim"),
    ("resource.k8s.io", "ResourceClaimParameters"),
    ("resource.k8s.io", "ResourceClaimTemplate"),
    ("resource.k8s.io", "ResourceClassParameters"),
    ("scheduling.k8s.io", "CompositePodGroup"),
    ("scheduling.k8s.io", "PodGroup"),
    ("scheduling.k8s.io", "Workload"),
    ("storage.k8s.io", "CSIStorageCapacity"),
})

# --- Groups -----------------------------------------------------------------
# Every API group served by Kubernetes itself (all groups named in the
# 1.25-1.37 schema files). Any other group containing a dot is taken for a
# custom resource group, even under k8s.io (gateway.networking.k8s.io,
# snapshot.storage.k8s.io, metrics.k8s.io...).
BUILTIN_GROUPS = frozenset({
    "", "admission.k8s.io", "admissionregistration.k8s.io",
    "apiextensions.k8s.io", "apiregistration.k8s.io", "apps",
    "authentication.k8s.io", "authorization.k8s.io", "autoscaling", "batch",
    "certificates.k8s.io", "coordination.k8s.io", "discovery.k8s.io",
    "events.k8s.io", "extensions", "flowcontrol.apiserver.k8s.io",
    "imagepolicy.k8s.io", "internal.apiserver.k8s.io", "lifecycle.k8s.io",
    "networking.k8s.io", "node.k8s.io", "policy", "rbac.authorization.k8s.io",
    "resource.k8s.io", "scheduling.k8s.io", "storage.k8s.io",
    "storagemigration.k8s.io",
})

# --- Names ------------------------------------------------------------------
# (group, kind) -> how the API server validates metadata.name, where it is not
# a DNS-1123 subdomain (apimachinery's NameIsDNSSubdomain: what every other
# built-in kind and every custom resource gets). Source: the name function each
# kind passes to ValidateObjectMeta in kubernetes/kubernetes pkg/apis/*/validation:
# ValidateNamespaceName (a DNS-1123 label), ValidateServiceName =
# NameIsDNS1035Label, ValidateRBACName = path.IsValidPathSegmentName, and
# batch's ValidateCronJob (a subdomain of at most 52 characters: the Jobs it
# makes get an 11-character suffix). The rules themselves are in validate.py.
NAME_RULES = {
    ("", "Namespace"): "dns-1123-label",
    ("", "Service"): "dns-1035-label",
    ("rbac.authorization.k8s.io", "Role"): "path-segment",
    ("rbac.authorization.k8s.io", "ClusterRole"): "path-segment",
    ("rbac.authorization.k8s.io", "RoleBinding"): "path-segment",
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): "path-segment",
    ("batch", "CronJob"): "cronjob",
}

# (group, kind) -> the paths of the pod (or job) templates whose labels and
# annotations the API server validates like an object's own (ValidateLabels,
# ValidateAnnotations in ValidatePodTemplateSpec and friends).
_POD_TEMPLATE = (("spec", "template", "metadata"),)
TEMPLATE_METADATA = {
    ("", "ReplicationController"): _POD_TEMPLATE,
    ("", "PodTemplate"): (("template", "metadata"),),
    ("apps", "Deployment"): _POD_TEMPLATE,
    ("apps", "DaemonSet"): _POD_TEMPLATE,
    ("apps", "ReplicaSet"): _POD_TEMPLATE,
    ("apps", "StatefulSet"): _POD_TEMPLATE,
    ("batch", "Job"): _POD_TEMPLATE,
    ("batch", "CronJob"): (("spec", "jobTemplate", "metadata"),
                           ("spec", "jobTemplate", "spec", "template", "metadata")),
}

# (group, kind) -> {field: True if its values are base64}: the key-value maps whose
# keys the API server validates as config keys (IsConfigMapKey).
KEYED_DATA = {
    ("", "ConfigMap"): {"data": False, "binaryData": True},
    ("", "Secret"): {"data": True, "stringData": False},
}

# --- Removed APIs -----------------------------------------------------------
# (apiVersion, kind) -> (minor release that stopped serving it, what to use).
# "What to use" is a tuple of apiVersions, best first: the validator names
# the first one that exists in the target release. A text that is not an
# apiVersion is advice (PodSecurityPolicy has no replacement API).
# Source: the Kubernetes "Deprecated API Migration Guide"
# (kubernetes.io/docs/reference/using-api/deprecation-guide/) for 1.16-1.32;
# the later beta removals (off-by-default betas, not in the guide) from the
# kubernetes-validate schema files (present in 1.N-1, gone in 1.N).
_APPS_V1 = ("apps/v1",)
_FLOWCONTROL = ("flowcontrol.apiserver.k8s.io/v1", "flowcontrol.apiserver.k8s.io/v1beta3")
_PSA = ("Pod Security Admission",)

REMOVED_APIS = {
    # 1.16
    ("extensions/v1beta1", "DaemonSet"): (16, _APPS_V1),
    ("extensions/v1beta1", "Deployment"): (16, _APPS_V1),
    ("extensions/v1beta1", "ReplicaSet"): (16, _APPS_V1),
    ("extensions/v1beta1", "NetworkPolicy"): (16, ("networking.k8s.io/v1",)),
    ("extensions/v1beta1", "PodSecurityPolicy"): (16, _PSA),
    **{(f"apps/{v}", k): (16, _APPS_V1)
       for v in ("v1beta1", "v1beta2")
       for k in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ControllerRevision")},
    # 1.22
    ("extensions/v1beta1", "Ingress"): (22, ("networking.k8s.io/v1",)),
    ("networking.k8s.io/v1beta1", "Ingress"): (22, ("networking.k8s.io/v1",)),
    ("networking.k8s.io/v1beta1", "IngressClass"): (22, ("networking.k8s.io/v1",)),
    **{("rbac.authorization.k8s.io/v1beta1", k): (22, ("rbac.authorization.k8s.io/v1",))
       for k in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")},
    ("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition"): (22, ("apiextensions.k8s.io/v1",)),
    ("admissionregistration.k8s.io/v1beta1", "MutatingWebhookConfiguration"):
        (22, ("admissionregistration.k8s.io/v1",)),
    ("admissionregistration.k8s.io/v1beta1", "ValidatingWebhookConfiguration"):
        (22, ("admissionregistration.k8s.io/v1",)),
    ("apiregistration.k8s.io/v1beta1", "APIService"): (22, ("apiregistration.k8s.io/v1",)),
    ("authentication.k8s.io/v1beta1", "TokenReview"): (22, ("authentication.k8s.io/v1",)),
    **{("authorization.k8s.io/v1beta1", k): (22, ("authorization.k8s.io/v1",))
       for k in ("LocalSubjectAccessReview", "SelfSubjectAccessReview", "SubjectAccessReview")},
    ("certificates.k8s.io/v1beta1", "CertificateSigningRequest"): (22, ("certificates.k8s.io/v1",)),
    ("coordination.k8s.io/v1beta1", "Lease"): (22, ("coordination.k8s.io/v1",)),
    ("scheduling.k8s.io/v1beta1", "PriorityClass"): (22, ("scheduling.k8s.io/v1",)),
    **{("storage.k8s.io/v1beta1", k): (22, ("storage.k8s.io/v1",))
       for k in ("CSIDriver", "CSINode", "StorageClass", "VolumeAttachment")},
    # 1.25
    ("batch/v1beta1", "CronJob"): (25, ("batch/v1",)),
    ("discovery.k8s.io/v1beta1", "EndpointSlice"): (25, ("discovery.k8s.io/v1",)),
    ("events.k8s.io/v1beta1", "Event"): (25, ("events.k8s.io/v1",)),
    ("autoscaling/v2beta1", "HorizontalPodAutoscaler"): (25, ("autoscaling/v2",)),
    ("policy/v1beta1", "PodDisruptionBudget"): (25, ("policy/v1",)),
    ("policy/v1beta1", "PodSecurityPolicy"): (25, _PSA),
    ("node.k8s.io/v1beta1", "RuntimeClass"): (25, ("node.k8s.io/v1",)),
    # 1.26
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler"): (26, ("autoscaling/v2",)),
    ("flowcontrol.apiserver.k8s.io/v1beta1", "FlowSchema"): (26, _FLOWCONTROL),
    ("flowcontrol.apiserver.k8s.io/v1beta1", "PriorityLevelConfiguration"): (26, _FLOWCONTROL),
    # 1.27
    ("storage.k8s.io/v1beta1", "CSIStorageCapacity"): (27, ("storage.k8s.io/v1",)),
    # 1.29
    ("flowcontrol.apiserver.k8s.io/v1beta2", "FlowSchema"): (29, _FLOWCONTROL),
    ("flowcontrol.apiserver.k8s.io/v1beta2", "PriorityLevelConfiguration"): (29, _FLOWCONTROL),
    # 1.32
    ("flowcontrol.apiserver.k8s.io/v1beta3", "FlowSchema"): (32, _FLOWCONTROL[:1]),
    ("flowcontrol.apiserver.k8s.io/v1beta3", "PriorityLevelConfiguration"): (32, _FLOWCONTROL[:1]),
    # From the schema files (betas that were never on by default).
    ("authentication.k8s.io/v1beta1", "SelfSubjectReview"): (33, ("authentication.k8s.io/v1",)),
    ("admissionregistration.k8s.io/v1beta1", "ValidatingAdmissionPolicy"):
        (34, ("admissionregistration.k8s.io/v1",)),
    ("admissionregistration.k8s.io/v1beta1", "ValidatingAdmissionPolicyBinding"):
        (34, ("admissionregistration.k8s.io/v1",)),
    ("networking.k8s.io/v1beta1", "IPAddress"): (37, ("networking.k8s.io/v1",)),
    ("networking.k8s.io/v1beta1", "ServiceCIDR"): (37, ("networking.k8s.io/v1",)),
    ("storage.k8s.io/v1beta1", "VolumeAttributesClass"): (37, ("storage.k8s.io/v1",)),
}


def api_group(api_version):
    """The group of `api_version`: "apps" for "apps/v1", "" for "v1"."""
    return api_version.rpartition("/")[0]


def is_namespaced(api_version, kind, crds=()):
    """Whether objects of `kind` live in a namespace.

    Parameters:
        api_version: the object's apiVersion, e.g. "apps/v1".
        kind: the object's kind, e.g. "Deployment".
        crds: CustomResourceDefinition objects (dicts) to consult for custom
            kinds, e.g. the CRDs among the rendered objects.

    Returns True or False, or None when the kind is unknown.
    """
    group = api_group(api_version)
    for crd in crds:
        spec = crd.get("spec")
        names = spec.get("names") if isinstance(spec, dict) else None
        if isinstance(names, dict) and spec.get("group") == group and names.get("kind") == kind:
            return {"Namespaced": True, "Cluster": False}.get(spec.get("scope"))
    if (group, kind) in CLUSTER_SCOPED:
        return False
    if (group, kind) in NAMESPACED:
        return True
    return None

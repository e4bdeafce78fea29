"""Variable shapes: what the value of each variable of Makefile.vars must look like.

A value lands in a manifest, a kubeadm file, a JSON document or a command line; one
that does not have its shape (`POD_CIDR=banana`, an image tag with a space, a newline
in a quantity) would break what it lands in, or worse, change it. `check` refuses
every such value before anything is rendered, one line each, all at once:

    POD_CIDR='banana' (environment): not an IPv4 CIDR like 10.244.0.0/16

The table is `SHAPES` (name -> Shape) plus `PATTERNS` for families of names
(`*_CPU_REQUEST`, `VERSION_*`, ...). It applies to the variables the vars files set,
and to environment values overriding them; the rest of the environment is not ours
to judge. A variable without a shape here is free text (CLUSTER, SOPS_KEY_NAME, ...):
`TEXT` only refuses control characters in those. No shaped value may hold a control
character. An optional shape also takes the empty value: the variable then means
"none" or "the default" where it is used.
"""

import re
from dataclasses import dataclass, replace
from collections.abc import Callable

from ..errors import UserError, raise_all

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # YAML and str.splitlines break lines at some
_SHOWN = 60  # characters of a bad value shown in its error


@dataclass(frozen=True)
class Shape:
    """What a value must look like.

    Parameters:
        expected: what a good value is, for the error line after "not": "a CIDR like 10.244.0.0/16".
        accepts: value -> bool; never sees a control character.
        optional: the empty value is accepted too.
        pattern: a regular expression every accepted value matches in full, when there is
            one (the tests generate values from it).
        hint: value -> what is wrong in it, or None.
        item: the shape of each item, for a list.
        bounds: (lowest, highest), for a whole number.
    """

    expected: str
    accepts: Callable[[str], bool]
    optional: bool = False
    pattern: str | None = None
    hint: Callable[[str], str | None] = lambda value: None
    item: "Shape | None" = None
    bounds: tuple[int, int] | None = None

    def problem(self, value):
        """Why `value` does not have this shape, or None."""
        if _CONTROL.search(value):
            return f"not {self.expected} (it holds a control character)"
        if (value == "" and self.optional) or self.accepts(value):
            return None
        if value.strip(" ") != value and self.accepts(value.strip(" ")):
            return f"not {self.expected}: remove the spaces around it (a # comment keeps those before it)"
        hint = self.hint(value)
        return f"not {self.expected}" + (f": {hint}" if hint else "")


def optional(shape):
    return replace(shape, optional=True)


def _regex(expected, pattern, flags=0):
    return Shape(expected, re.compile(pattern, re.ASCII | flags).fullmatch, pattern=pattern)


def _one_of(*values, ignore_case=False):
    words = [*values[:-1], f"or {values[-1]}"] if len(values) > 1 else list(values)
    allowed = frozenset(values)
    accepts = (lambda v: v.lower() in allowed) if ignore_case else allowed.__contains__
    return Shape(", ".join(words).replace(", or", " or"), accepts,
                 pattern=("(?i)" if ignore_case else "") + "|".join(map(re.escape, values)))


_DIGITS = re.compile(r"[0-9]{1,12}", re.ASCII).fullmatch


def _whole(low, high, what="a whole number"):
    return Shape(f"{what} from {low} to {high}", lambda v: bool(_DIGITS(v)) and low <= int(v) <= high,
                 bounds=(low, high))


def _list(item, expected, separators=" ", optional=False):
    """Items of `item` shape separated by runs of `separators`; `optional`: no item at all is fine."""
    split = re.compile(f"[{re.escape(separators)}]+").split

    def accepts(value):
        items = [w for w in split(value) if w]
        return all(map(item.accepts, items)) and bool(items or optional)

    def hint(value):
        bad = [repr(w) for w in split(value) if w and not item.accepts(w)]
        return f"{', '.join(bad)} {'is' if len(bad) == 1 else 'are'} not" if bad else None

    return Shape(expected, accepts, optional, hint=hint, item=item)


def _text_in_yaml(shape):
    """`shape`, and read as text where YAML takes it unquoted (`namespace: $K8S_NAMESPACE`):
    `0`, `1e3`, `y` or `no` are DNS labels, but YAML makes them a number or a boolean."""
    def accepts(value):
        from .kubeyaml_scalars import _STR, _resolve

        return shape.accepts(value) and _resolve(value)[0] == _STR

    return replace(shape, expected=f"{shape.expected} that YAML reads as text (0, 1e3, y and no are not)",
                   accepts=accepts)


def _network(family):
    """An IPv4 (family 4), IPv6 (6) or either (None) network, host bits zero."""
    def accepts(value):
        import ipaddress

        if not _CIDR_TEXT.fullmatch(value):  # ipaddress also takes netmasks (/255.0.0.0) and zones (%eth0)
            return False
        try:
            net = ipaddress.ip_network(value)
        except ValueError:
            return False
        return family in (None, net.version)

    return accepts


def _network_of(value):
    """Which network a CIDR with host bits set stands for, or None."""
    import ipaddress

    if _CIDR_TEXT.fullmatch(value):
        try:
            return f"the network of {value} is {ipaddress.ip_network(value, strict=False)}"
        except ValueError:
            pass
    return None


def _address(value):
    import ipaddress

    if not re.fullmatch(r"[0-9a-fA-F:.]{2,45}", value):
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


_CIDR_TEXT = re.compile(r"[0-9a-fA-F:.]{2,45}/[0-9]{1,3}", re.ASCII)
_LABEL = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
_SUBDOMAIN = rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*"
_HOURS = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6})?", re.ASCII)

IPV4_CIDR = Shape("an IPv4 CIDR like 10.244.0.0/16", _network(4), hint=_network_of)
CIDR = Shape("a CIDR like 10.96.0.0/12 or fd00:10:96::/112", _network(None), hint=_network_of)
IP = Shape("an IP address like 10.96.0.10", _address)
BOOLEAN = _one_of("true", "false")
LEVEL = _one_of("privileged", "baseline", "restricted")  # Pod Security Standards
PSA_VERSION = _regex("latest or v1.NN like v1.25", r"latest|v1\.(?:0|[1-9][0-9]{0,2})")
# The OCI distribution spec's tag grammar.
TAG = _regex("an image tag like v1.2.3 (letters, digits, '_', '.' and '-', at most 128)",
             r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
DIGEST = _regex("an image digest sha256:<64 hex digits>", r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")
# k8s.io/apimachinery resource.Quantity as documented: no sign here, requests and sizes are never negative.
QUANTITY = _regex("a Kubernetes quantity like 500m, 0.5, 256Mi or 8Gi",
                  r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][-+]?[0-9]+)?")
LABEL = _regex("a DNS label like worker (at most 63 lowercase letters, digits and '-')", _LABEL)
SUBDOMAIN = _regex("a DNS name like example.com (lowercase letters, digits, '-' and '.')", _SUBDOMAIN)
EMAIL = _regex("an email address like admin@example.com",
               rf"[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]{{1,64}}@{_SUBDOMAIN}", re.IGNORECASE)
# Any characters (control characters are refused for every shape): the renderer protects a
# substituted value and every remote command quotes its words (tests/nodes/test_volumes.py).
PATH = _regex("an absolute path like /var/lib/k8s-volumes", r"/[^\x00-\x1f\x7f]{0,4095}")
PORT = _whole(1, 65535, "a port")
KUBE_VERSION = _regex("a Kubernetes version MAJOR.MINOR like 1.37",
                      r"v?[0-9]{1,3}\.[0-9]{1,3}(?:\.[0-9]{1,5})?(?:[-+][0-9A-Za-z.+-]{0,64})?")
TEXT = Shape("one line of text", lambda v: True)


def _mirror(value):
    from .images import check_mirror

    try:
        check_mirror(value)
    except UserError:
        return False
    return value == value.strip(" ")


SHAPES = {
    # Cluster identity and access
    "CLUSTER": TEXT,  # a kubeconfig cluster name: any text
    "DOMAIN": SUBDOMAIN,
    "ADMIN_CTX": TEXT,  # kubeconfig context names; empty: the current context
    "USER_CTX": TEXT,
    "K8S_NAMESPACE": _text_in_yaml(LABEL),
    # k8s.nodes.access.token_seconds: 10 minutes to ten years; empty: 720
    "USER_TOKEN_HOURS": optional(Shape("a number of hours from 0.17 (10 minutes) to 87840",
                                       lambda v: bool(_HOURS.fullmatch(v)) and 1 / 6 <= float(v) <= 87840)),
    "LONG_LIVED_USER_TOKEN": BOOLEAN,
    "KUBECONFIG_OUT": TEXT,  # a local file, ~ expanded
    "K8S_NODES": _list(SUBDOMAIN, "node names like kube1.example.com (DNS names), space separated", optional=True),
    "KUBE_VERSION": optional(KUBE_VERSION),  # empty: the newest one there are schemas for
    # Networking: flannel's Network (net-conf.json) is IPv4
    "POD_CIDR": IPV4_CIDR,
    "SERVICE_CIDR": optional(CIDR),  # documents kubeadm's default; nothing renders it
    "CLUSTER_DNS": optional(IP),
    "PSA_USER_LEVEL": LEVEL,
    "PSA_VERSION": PSA_VERSION,
    "NETPOL_EGRESS": _one_of("open", "dns-only"),
    "NETPOL_EGRESS_ALLOW": _list(CIDR, "CIDRs like 10.0.0.0/8 192.168.1.0/24, space separated", optional=True),
    # Local persistent volumes
    "K8S_VOLUMES_PATH": PATH,
    "LOCAL_VOLUMES": _list(SUBDOMAIN, "volume names like media (DNS names), space separated", optional=True),
    "NAMED_VOLUMES": _list(SUBDOMAIN, "volume names like admin backup (DNS names), space separated", optional=True),
    "PATH_ADM": optional(PATH),
    "PATH_BKP": optional(PATH),
    "PATH_SHR": optional(PATH),
    # ssh to the nodes: a file, shell words, command words
    "SSH_CONFIG": TEXT,
    "SSH_OPTIONS": TEXT,
    "REMOTE_SUDO": TEXT,
    "KUBELET_CONFIG_PATH": optional(PATH),  # on each node; empty: kubeadm's
    # Secrets (sops)
    "SOPS_KEY_NAME": TEXT,
    "SOPS_KEY_EMAIL": optional(EMAIL),
    # k8s.secrets.keys.KEY_TYPES and KEY_TYPE_ALIASES; empty: rsa4096
    "SOPS_KEY_TYPE": optional(_one_of("rsa4096", "rsa3072", "ed25519", "rsa", "cv25519", "ecc", ignore_case=True)),
    "GPG_FINGERPRINT": _list(_regex("", r"[0-9A-Fa-f]{40}"),
                             "GPG fingerprints (40 hex digits), comma separated", ", ", optional=True),
    "SOPS_AGE_RECIPIENT": _list(_regex("", r"age1[0-9a-z]{20,}"),
                                "age recipients like age1..., comma separated", ", ", optional=True),
    "TZ": TEXT,  # a zone name or a POSIX TZ string
    # Networking add-ons. flannel's backends (Documentation/backends.md): vxlan, host-gw and
    # wireguard work with the Type alone, which is all net-conf.json gives (wireguard: the kernel
    # module on every node); udp (debugging) needs /dev/net/tun, which the DaemonSet does not
    # mount, ipsec a PSK, alloc forwards nothing, ipip and tencent-vpc are experimental.
    "FLANNEL_BACKEND": _one_of("vxlan", "host-gw", "wireguard"),
    "FLANNEL_NETPOL": BOOLEAN,
    "LOCAL_STORAGE_DEFAULT": BOOLEAN,
    "METRICS_SERVER_INSECURE_TLS": _one_of("true", "false", "auto"),
    "DASHBOARD": _one_of("headlamp", "kubernetes-dashboard"),
    # ingress-nginx
    "INGRESS_KIND": _one_of("Deployment", "DaemonSet"),
    "INGRESS_REPLICAS": _whole(0, 1000),
    "INGRESS_SERVICE_TYPE": _one_of("NodePort", "LoadBalancer", "hostNetwork"),
    "INGRESS_HTTP_NODEPORT": optional(PORT),  # empty: the API server picks one
    "INGRESS_HTTPS_NODEPORT": optional(PORT),
    "INGRESS_DEFAULT_CLASS": BOOLEAN,
    "INGRESS_ADMISSION_WEBHOOK": BOOLEAN,
    # Pod Security Admission defaults
    "PSA_EXEMPT_NAMESPACES": _list(LABEL, "namespace names (DNS labels), space separated", optional=True),
    # data-sync
    "DATA_SYNC_CLUSTER_SIZE": _whole(1, 1000),
    "DATA_SYNC_VOLUMES": _list(LABEL, "volume names like admin share (DNS labels), space separated", optional=True),
    "DATA_SYNC_SECRET": _text_in_yaml(SUBDOMAIN),  # a Secret's name and secrets/<name>.yml
    "DATA_SYNC_INTERVAL": _whole(1, 10080, "a number of minutes"),  # at most a week
    # etcd encryption at rest: k8s.nodes.encryption_keys.PROVIDERS
    "ENCRYPTION_PROVIDER": _one_of("secretbox", "aescbc"),
    "ENCRYPTION_RESOURCES": _list(
        _regex("", r"(?:\*|[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)(?:\.(?:\*|[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?)?)?"),
        "resources like secrets configmaps widgets.example.com, space separated"),
    "ENCRYPTION_CONFIG_PATH": PATH,
    # API audit log; AUDIT_LOG_PATH may be - (kube-apiserver's standard output)
    "AUDIT_POLICY_PATH": PATH,
    "AUDIT_LOG_PATH": _regex(PATH.expected + ", or -", rf"-|{PATH.pattern}"),
    "AUDIT_LOG_MAXAGE": _whole(0, 2**31 - 1),
    "AUDIT_LOG_MAXBACKUP": _whole(0, 2**31 - 1),
    "AUDIT_LOG_MAXSIZE": _whole(0, 2**31 - 1),
    # Upstream release manifests, images
    "ACME_EMAIL": optional(EMAIL),  # ACME accounts need none
    "GATEWAY_API": optional(BOOLEAN),  # component.yaml reads ${GATEWAY_API:-false}
    "IMAGE_DIGESTS": BOOLEAN,
    "IMAGE_MIRROR": optional(Shape("a registry like registry.local:5000 or mirror.example.com/hub", _mirror)),
}

# Families of names, first match wins: the variables other changes add follow these.
# `PREFIX*` and `*SUFFIX`, the star standing for at least one character.
PATTERNS = [
    ("VERSION_*", TAG),
    ("DIGEST_*", optional(DIGEST)),  # empty: the tag only
    *((f"*_{resource}{kind}", QUANTITY) for resource in ("CPU", "MEMORY", "MEM", "EPHEMERAL_STORAGE")
      for kind in ("_REQUEST", "_LIMIT", "_DEFAULT", "")),
    ("LIMIT_*", QUANTITY),
    ("POOL_SIZE_*", QUANTITY),
    ("POOL_NUM_*", _whole(0, 10000)),  # k8s.nodes.volume_layout.MAX_COUNT
    ("PSA_DEFAULT_*", LEVEL),
    ("*_NODEPORT", optional(PORT)),
    ("*_REPLICAS", _whole(0, 1000)),
]


def shape_of(name):
    """The Shape of variable `name`, or None for a variable the table does not know."""
    shape = SHAPES.get(name)
    if shape is None:
        shape = next((s for pattern, s in PATTERNS if _matches(pattern, name)), None)
    return shape


def _matches(pattern, name):
    fixed = pattern.strip("*")
    return len(name) > len(fixed) and (name.startswith(fixed) if pattern.endswith("*") else name.endswith(fixed))


def problems(variables):
    """One UserError per variable of `variables` ({name: Variable}) whose value is not of its shape.

    Only variables the vars files set count (their origin is a file, or the environment
    overriding one): the rest of the environment is not ours to judge.
    """
    errors = []
    for variable in variables.values():
        if variable.origin == "environment":
            continue
        shape = shape_of(variable.name)
        why = shape and shape.problem(variable.value)
        if why:
            errors.append(UserError(f"{variable.name}={_shown(variable.value)} ({_origin(variable.origin)}): {why}"))
    return errors


def check(variables):
    """Raise every shape problem of `variables` ({name: Variable}) at once, one line each."""
    raise_all(problems(variables))


def _shown(value):
    return repr(value) if len(value) <= _SHOWN else repr(value[:_SHOWN]) + "..."


def _origin(origin):
    """ "environment (overrides Makefile.vars:23)" is the environment to the user; a file stays file:line."""
    return "environment" if origin.startswith("environment") else origin

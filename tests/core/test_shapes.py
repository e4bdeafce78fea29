"""k8s.core.shapes: every variable of Makefile.vars has a shape, a bad value is one line
naming it, its origin and the shape, before any command renders or connects; flannel's
net-conf.json takes its values JSON-encoded."""

import argparse
import ipaddress
import json
import os
import re
import time
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from k8s import steps
from k8s.core import render, shapes
from k8s.core.variables import Variable, load_variables
from k8s.errors import UserError

from ..conftest import ROOT, examples, in_process
from .test_variables import fixture_settings

SHIPPED = os.path.join(ROOT, "Makefile.vars")
FLANNEL_CONFIG = os.path.join(ROOT, "manifests", "flannel", "30-config.yaml.j2")
FIXTURES = sorted((Path(ROOT) / "tests" / "vars").glob("*.vars"))
# flannel's net-conf.json as the shipped defaults render it, byte for byte as before it was a template.
NET_CONF = ('{\n  "Network": "10.244.0.0/16",\n  "EnableNFTables": false,\n  "Backend": {\n'
            '    "Type": "vxlan"\n  }\n}\n')
CNI_CONF = ('{\n  "name": "cbr0",\n  "cniVersion": "0.3.1",\n  "plugins": [\n    {\n      "type": "flannel",\n'
            '      "delegate": {\n        "hairpinMode": true,\n        "isDefaultGateway": true\n      }\n'
            '    },\n    {\n      "type": "portmap",\n      "capabilities": {\n        "portMappings": true\n'
            '      }\n    }\n  ]\n}\n')
INJECTION = 'vxlan", "Port": 1, "x": "'
AS_TEXT = " that YAML reads as text (0, 1e3, y and no are not)"


def shipped(environ=None):
    return load_variables(SHIPPED, environ=environ or {})


def defaults():
    return {name: v.value for name, v in shipped().items()}


@pytest.fixture
def cli(monkeypatch, capfd):
    """render.py in this process, in the repository, with an environment of our own."""
    monkeypatch.chdir(ROOT)
    for name in [*shipped(), "VARS_FILE"]:
        monkeypatch.delenv(name, raising=False)

    def run(*argv, **env):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return in_process(argv, capfd)

    return run


# --- the examples: one line each, exit 1, nothing rendered ------------------------------------

@pytest.mark.parametrize("name, value, line", [
    ("POD_CIDR", "banana", "POD_CIDR='banana' (environment): not an IPv4 CIDR like 10.244.0.0/16"),
    ("PSA_USER_LEVEL", "superstrict",
     "PSA_USER_LEVEL='superstrict' (environment): not privileged, baseline or restricted"),
    ("VERSION_HEADLAMP", "v0.1 :latest", "VERSION_HEADLAMP='v0.1 :latest' (environment): not an image tag like "
                                         "v1.2.3 (letters, digits, '_', '.' and '-', at most 128)"),
    ("LIMIT_CPU_DEFAULT", "500m\n", "LIMIT_CPU_DEFAULT='500m\\n' (environment): not a Kubernetes quantity like "
                                    "500m, 0.5, 256Mi or 8Gi (it holds a control character)"),
    ("FLANNEL_BACKEND", INJECTION, f"FLANNEL_BACKEND={INJECTION!r} (environment): not vxlan, host-gw or wireguard"),
    ("POD_CIDR", "10.244.0.1/16", "POD_CIDR='10.244.0.1/16' (environment): not an IPv4 CIDR like 10.244.0.0/16: "
                                  "the network of 10.244.0.1/16 is 10.244.0.0/16"),
    ("NETPOL_EGRESS_ALLOW", "10.0.0.0/8 10.0.0.1", "NETPOL_EGRESS_ALLOW='10.0.0.0/8 10.0.0.1' (environment): not "
                                                   "CIDRs like 10.0.0.0/8 192.168.1.0/24, space separated: "
                                                   "'10.0.0.1' is not"),
    ("VERSION_FLANNEL", "v0.28.9 ", "VERSION_FLANNEL='v0.28.9 ' (environment): not an image tag like v1.2.3 "
                                    "(letters, digits, '_', '.' and '-', at most 128): remove the spaces around "
                                    "it (a # comment keeps those before it)"),
    ("K8S_NAMESPACE", "x" * 100, f"K8S_NAMESPACE={'x' * 60!r}... (environment): not a DNS label like worker "
                                 f"(at most 63 lowercase letters, digits and '-'){AS_TEXT}"),
    ("K8S_NAMESPACE", "0", f"K8S_NAMESPACE='0' (environment): not a DNS label like worker "
                           f"(at most 63 lowercase letters, digits and '-'){AS_TEXT}"),
])
def test_a_bad_value_is_one_line_naming_it_where_it_came_from_and_its_shape(cli, name, value, line):
    result = cli("validate", **{name: value})
    assert (result.code, result.out, result.err) == (1, "", f"error: {line}\n")


def test_every_bad_value_is_reported_at_once_in_file_order(cli):
    result = cli("template", POD_CIDR="banana", INGRESS_REPLICAS="-1", DASHBOARD="grafana")
    assert result.code == 1 and result.out == ""
    assert result.err.splitlines() == [
        "error: POD_CIDR='banana' (environment): not an IPv4 CIDR like 10.244.0.0/16",
        "error: DASHBOARD='grafana' (environment): not headlamp or kubernetes-dashboard",
        "error: INGRESS_REPLICAS='-1' (environment): not a whole number from 0 to 1000"]


def test_the_origin_is_the_file_and_line_or_the_overlay(project):
    project.write("Makefile.vars", "export K8S_NAMESPACE ?= demo\nexport INGRESS_KIND ?= StatefulSet\n")
    project.write("manifests/app/a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    project.write("prod.vars", "# prod\nK8S_NAMESPACE = Demo\n")
    result = project.run("validate", env={"VARS_FILE": "prod.vars"})
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [
        "error: K8S_NAMESPACE='Demo' (overlay prod.vars:2): not a DNS label like worker "
        f"(at most 63 lowercase letters, digits and '-'){AS_TEXT}",
        "error: INGRESS_KIND='StatefulSet' (Makefile.vars:2): not Deployment or DaemonSet"]
    assert "Traceback" not in result.stderr


# Commands that render, connect or work on nodes: all read the variables first, and stop there.
@pytest.mark.parametrize("argv", [
    ("validate",), ("template", "flannel"), ("vars",), ("components",), ("check",), ("install",),
    ("apply", "flannel"), ("diff",), ("delete", "flannel"), ("kubeconfig", "--out", "/nonexistent/kc"),
    ("admission-config", "--out", "/nonexistent"), ("audit-policy", "--out", "/nonexistent"),
    ("encryption-config", "--out", "/nonexistent"), ("persistent",), ("node-labels",),
])
def test_every_command_that_reads_variables_checks_them_all_first(cli, argv):
    result = cli("--kube-version", "1.37", *argv, FLANNEL_BACKEND=INJECTION, KUBECONFIG="/nonexistent")
    assert (result.code, result.out) == (1, "")
    assert result.err == f"error: FLANNEL_BACKEND={INJECTION!r} (environment): not vxlan, host-gw or wireguard\n"


def test_the_check_of_every_variable_costs_well_under_a_millisecond():
    found = shipped()
    shapes.check(found)  # imports what the shapes need
    runs = 200
    start = time.perf_counter()
    for _ in range(runs):
        shapes.check(found)
    assert (time.perf_counter() - start) / runs < 0.001


# --- the table --------------------------------------------------------------------------------

def test_the_shipped_defaults_have_their_shapes(cli):
    assert shapes.problems(shipped()) == []
    result = cli("validate")
    assert result.code == 0, result.err


def test_every_variable_of_makefile_vars_has_a_shape():
    """A new variable gets a shape in k8s/core/shapes.py (TEXT when it is free text)."""
    assert [name for name in shipped() if shapes.shape_of(name) is None] == []


@pytest.mark.parametrize("name, shape", [
    ("FOO_CPU_REQUEST", shapes.QUANTITY), ("FOO_MEMORY_LIMIT", shapes.QUANTITY), ("FOO_CPU_LIMIT", shapes.QUANTITY),
    ("FOO_MEMORY", shapes.QUANTITY), ("LIMIT_STORAGE", shapes.QUANTITY), ("POOL_SIZE_HUGE", shapes.QUANTITY),
    ("VERSION_NEW_THING", shapes.TAG), ("PSA_DEFAULT_NEW", shapes.LEVEL),
])
def test_families_of_names_have_the_shape_of_their_family(name, shape):
    assert shapes.shape_of(name) == shape
    assert shapes.shape_of("DIGEST_NEW").optional and shapes.shape_of("POOL_NUM_HUGE").bounds == (0, 10000)
    assert shapes.shape_of("CPU_REQUEST") is None and shapes.shape_of("VERSION_") is None


def test_only_what_the_files_set_is_judged():
    found = {"POD_CIDR": Variable("POD_CIDR", "banana", "environment"),
             "VERSION_ID": Variable("VERSION_ID", "not a tag", "environment")}
    assert shapes.problems(found) == []
    found["POD_CIDR"] = Variable("POD_CIDR", "banana", "environment (overrides Makefile.vars:23)")
    assert [str(e) for e in shapes.problems(found)] == [
        "POD_CIDR='banana' (environment): not an IPv4 CIDR like 10.244.0.0/16"]


@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
def test_the_make_oracle_fixtures_still_load(path):
    envs, overlay = fixture_settings(path)
    for env in [{}, *envs]:
        assert shapes.problems(load_variables(path, overlay=overlay, environ=env)) == []


@pytest.mark.parametrize("shape, good, bad", [
    (shapes.QUANTITY, ["0", "500m", "0.5", ".5", "5.", "1Ki", "1.5Gi", "256Mi", "1e3", "1E-3", "2k", "8G"],
     ["", "-1", "+1", "Mi", "1mi", "1 Gi", "1Gb", "1KiB", "0x10", ".", "1..2", "１"]),
    (shapes.TAG, ["v0.28.9", "2.54.0-4.14.3-r0", "_x", "a" * 128, "1.15.1"],
     ["", "-x", ".x", "v1:2", "v 1", "a" * 129, "v1/2", "x@y", "é"]),
    (shapes.IPV4_CIDR, ["10.244.0.0/16", "0.0.0.0/0", "192.168.1.7/32"],
     ["10.244.0.0", "10.244.0.0/33", "10.244.0.1/16", "fd00::/8", "10.0.0.0/255.0.0.0", "010.0.0.0/8", "x/8"]),
    (shapes.CIDR, ["10.96.0.0/12", "fd00:10:96::/112", "2001:db8::/32"], ["fe80::%eth0/64", "2001:db8::1/32"]),
    (shapes.IP, ["10.96.0.10", "fd00::a"], ["10.96.0", "10.96.0.10/32", "256.1.1.1", "x"]),
    (shapes.LABEL, ["worker", "a", "a-1", "a" * 63], ["", "Worker", "-a", "a-", "a.b", "a" * 64, "a_b"]),
    (shapes.SUBDOMAIN, ["example.com", "localhost", "a-1.b", ".".join(["a" * 63] * 3)],
     ["", "Example.com", "a..b", ".a", "a.", "a_b.c", ".".join(["a" * 63] * 4) + ".aa"]),
    (shapes.PSA_VERSION, ["latest", "v1.25", "v1.0"], ["1.25", "v1.025", "v2.1", "Latest", "v1.25.1"]),
    (shapes.BOOLEAN, ["true", "false"], ["", "True", "yes", "1", "on"]),
    (shapes.PATH, ["/var/lib/docker/k8s-volumes", "/", "/a/b_c.d+e@f", "/a b", "/a:b #c"], ["", "var/lib", "a/b", "/a\x01b"]),
    (shapes.EMAIL, ["admin@example.com", "a.b+c@localhost"], ["", "admin", "a@", "@x.com", "a b@x.com", "a@b@c"]),
    (shapes.SHAPES["USER_TOKEN_HOURS"], ["", "720", "0.17", "87840", "2.5"], ["0.1", "87841", "inf", "1e3", "-1"]),
    (shapes.SHAPES["METRICS_SERVER_INSECURE_TLS"], ["true", "false", "auto"], ["", "yes"]),
    (shapes.SHAPES["SOPS_KEY_TYPE"], ["", "rsa4096", "ED25519", "ecc"], ["dsa", "rsa2048"]),
    (shapes.SHAPES["INGRESS_HTTP_NODEPORT"], ["", "30080", "1", "65535"], ["0", "65536", "80 ", "8O"]),
    (shapes.SHAPES["GPG_FINGERPRINT"], ["", "A" * 40, f"{'a' * 40},{'B' * 40}", f"{'a' * 40}, {'B' * 40}"],
     ["A" * 39, "G" * 40]),
    (shapes.SHAPES["ENCRYPTION_RESOURCES"], ["secrets", "secrets configmaps", "widgets.example.com", "*.apps"],
     ["", " ", "Secrets", "secrets,configmaps"]),
    (shapes.SHAPES["AUDIT_LOG_PATH"], ["-", "/var/log/audit.log"], ["", "audit.log"]),
    (shapes.SHAPES["IMAGE_MIRROR"], ["", "registry.local:5000", "mirror.example.com/hub"], ["registry", "a b"]),
    (shapes.SHAPES["K8S_NODES"], ["", "kube1.example.com kube2", "  kube1  "], ["Kube_2", "kube1,kube2"]),
    (shapes.SHAPES["K8S_NAMESPACE"], ["worker", "a1", "x0"], ["0", "123", "y", "n", "no", "on", "null", "1e3", "0x1f",
                                                            "0o7", "worker "]),
    (shapes.SHAPES["DATA_SYNC_SECRET"], ["data-sync-ssh", "1.2.3"], ["1", "true", "1.5", "1e3"]),
    (shapes.TEXT, ["", "k8s-secrets kubernetes", "-p 2222 -i ~/.ssh/k8s", "日本"], ["a\nb", "a\tb", "a\u2028b"]),
])
def test_shapes_take_their_grammar_and_nothing_else(shape, good, bad):
    assert [v for v in good if shape.problem(v)] == []
    assert [v for v in bad if not shape.problem(v)] == []


# --- flannel's net-conf.json: JSON-encoded, never spliced -------------------------------------

def flannel_config(**changed):
    docs, _, _ = render.render_file(FLANNEL_CONFIG, {**defaults(), **changed})
    (config,) = [d.data for d in docs if d.data is not None]
    return config


def test_the_flannel_config_renders_byte_for_byte_as_before():
    config = flannel_config()
    assert config["data"] == {"cni-conf.json": CNI_CONF, "net-conf.json": NET_CONF}


def test_an_injection_into_flannel_backend_adds_no_key_even_past_the_shape_check():
    net = json.loads(flannel_config(FLANNEL_BACKEND=INJECTION)["data"]["net-conf.json"])
    assert net == {"Network": "10.244.0.0/16", "EnableNFTables": False, "Backend": {"Type": INJECTION}}


@settings(max_examples=examples(500, 100))
@given(cidr=st.text(), backend=st.text())
def test_no_value_changes_the_keys_of_net_conf_json(cidr, backend):
    net = json.loads(flannel_config(POD_CIDR=cidr, FLANNEL_BACKEND=backend)["data"]["net-conf.json"])
    assert net == {"Network": cidr, "EnableNFTables": False, "Backend": {"Type": backend}}


# --- any accepted value renders to manifests that validate ------------------------------------

def accepted(shape):
    """Values `shape` accepts."""
    if shape.item is not None:
        values = st.lists(accepted(shape.item), min_size=0 if shape.optional else 1, max_size=4).map(" ".join)
    elif shape.bounds is not None:
        low, high = shape.bounds
        values = st.one_of(st.integers(low, min(high, low + 100)), st.integers(low, high)).map(str)
    elif shape in (shapes.IPV4_CIDR, shapes.CIDR):
        family = st.ip_addresses(v=4) if shape is shapes.IPV4_CIDR else st.ip_addresses()
        values = st.builds(lambda ip, bits: str(ipaddress.ip_network(f"{ip}/{bits % (ip.max_prefixlen + 1)}",
                                                                     strict=False)), family, st.integers(0, 128))
    elif shape is shapes.IP:
        values = st.ip_addresses().map(str)
    elif shape is shapes.TEXT:
        values = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")))
    elif shape.pattern:
        values = st.from_regex(shape.pattern.replace("(?=.{1,253}$)", ""), fullmatch=True)
    else:  # the rest is few: IMAGE_MIRROR, USER_TOKEN_HOURS
        values = st.sampled_from(["registry.local:5000", "mirror.example.com/hub", "0.17", "720", "87840"])
    values = values.filter(lambda v: shape.problem(v) is None)
    return st.one_of(st.just(""), values) if shape.optional else values


DEFAULTS = defaults()
SHAPED = sorted(n for n in DEFAULTS if shapes.shape_of(n) and n != "KUBE_VERSION")  # the version is --kube-version
OTHER_NAMESPACES = {"kube-system", "kube-flannel", "data-sync", "ingress-nginx", "headlamp", "kubernetes-dashboard",
                    "metrics-server", "cert-manager", "nginx-gateway", "default"}


@settings(max_examples=examples(400, 60))
@given(data=st.data(), name=st.sampled_from(SHAPED))
def test_any_accepted_value_renders_to_manifests_that_validate(data, name):
    value = data.draw(accepted(shapes.shape_of(name)), label=name)
    assert shapes.shape_of(name).problem(value) is None
    if name == "K8S_NAMESPACE":
        assume(value not in OTHER_NAMESPACES)  # a clash of two components' objects, not a shape
    changed = {**DEFAULTS, name: value}
    if re.match(r"(VERSION|DIGEST)_", name):
        changed["IMAGE_DIGESTS"] = "false"  # a digest belongs to its version: a rule between two variables
    args = argparse.Namespace(vars=SHIPPED, vars_file=None, manifests=os.path.join(ROOT, "manifests"),
                              kube_version="1.37", components=None)
    try:
        _, _, objects, report, _ = steps.render_and_validate(args, variable_values=changed)
    except UserError as err:
        raise AssertionError(f"{name}={value!r}: {err}") from None
    assert objects and report.errors == []


def test_free_text_beyond_u_ffff_renders_through_tojson():
    """JSON escapes 😀 as a surrogate pair, which YAML (and kubectl) refuse in a quoted scalar."""
    args = argparse.Namespace(vars=SHIPPED, vars_file=None, manifests=os.path.join(ROOT, "manifests"),
                              kube_version="1.37", components=["data-sync", "dashboard"])
    _, _, objects, report, _ = steps.render_and_validate(args, variable_values={**DEFAULTS, "TZ": "UTC 😀 \\😀",
                                                                                 "CLUSTER": "𐀀"})
    assert report.errors == []
    texts = json.dumps([o.data for o in objects], ensure_ascii=False)
    assert '"UTC 😀 \\\\😀"' in texts and "-in-cluster-context-name=𐀀" in texts

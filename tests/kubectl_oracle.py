"""kubectl itself as the oracle of how a manifest decodes.

kubectl 1.37 (tests/layer_binaries) reads each text with `create --dry-run=client
--validate=false -o json`, against the session's real control plane, which serves
the kind used: a `Probe` of a CustomResourceDefinition whose schema keeps every
field. What kubectl prints is what it would send; a text it refuses gives its
error. The toolkit reads the same text with kubeyaml; tests compare the two.
"""

import decimal
import json
import os
import re
import subprocess
import tempfile

from .layer_binaries import binary

GROUP = "oracle.k8s-toolkit.test"
CRD = f"""\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: probes.{GROUP}}}
spec:
  group: {GROUP}
  names: {{kind: Probe, plural: probes, singular: probe, listKind: ProbeList}}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
"""
HEADER = f"apiVersion: {GROUP}/v1\nkind: Probe\nmetadata:\n  name: {{name}}\n  namespace: oracle\n"


class Refused(str):
    """kubectl's (or the toolkit's) error for a text it does not take."""


class Kubectl:
    def __init__(self, plane):
        self.kubectl = binary("kubectl")
        self.kubeconfig = plane.kubeconfig
        self._run(["apply", "-f", "-"], stdin=CRD)
        self._run(["wait", "--for=condition=Established", f"crd/probes.{GROUP}", "--timeout=60s"])

    def _run(self, args, stdin=None, check=True):
        result = subprocess.run([self.kubectl, "--kubeconfig", self.kubeconfig, *args], input=stdin,
                                capture_output=True, text=True, timeout=120)
        if check:
            assert result.returncode == 0, result.stderr
        return result

    def decode(self, bodies):
        """What kubectl makes of each body (YAML text after the Probe's header and `spec:`):
        the decoded spec, or a Refused with kubectl's error. One kubectl run for all."""
        with tempfile.TemporaryDirectory() as folder:
            for n, body in enumerate(bodies):
                with open(os.path.join(folder, f"{n:05d}.yaml"), "w", encoding="utf-8", newline="") as f:
                    f.write(HEADER.format(name=f"p{n}") + body)
            result = self._run(["create", "--dry-run=client", "--validate=false", "-o", "json", "-f", folder],
                               check=False)
            found = {item["metadata"]["name"]: item.get("spec") for item in _objects(result.stdout)}
            errors = {}
            for line in result.stderr.splitlines():
                named = re.search(r"/(\d{5})\.yaml", line)
                if named:
                    errors.setdefault(int(named.group(1)), Refused(line))
        return [found[f"p{n}"] if f"p{n}" in found else errors.get(n, Refused(result.stderr.strip()))
                for n in range(len(bodies))]


def _objects(text):
    """The objects kubectl printed: JSON objects one after another, or Lists of them."""
    decoder, pos, found = json.JSONDecoder(), 0, []
    while (pos := len(text) - len(text[pos:].lstrip())) < len(text):
        value, pos = decoder.raw_decode(text, pos)
        found += value.get("items", []) if value.get("kind") == "List" else [value]
    return found


def toolkit(body):
    """What the toolkit makes of the same text: the decoded spec, or a Refused."""
    from k8s.core import kubeyaml
    from k8s.errors import UserError

    try:
        [document] = kubeyaml.load_all(HEADER.format(name="p") + body, "probe.yaml")
    except UserError as err:
        return Refused(str(err))
    except ValueError as err:  # more than one document
        return Refused(str(err))
    return (document.data or {}).get("spec")


def as_json(value):
    """A decoded value as kubectl would print it in JSON: an integral float below 1e21 is the
    integer (encoding/json), so 2.0 and 2 are one number there."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(decimal.Decimal(repr(value)))  # Go's shortest digits: 18446744073709552000
    if isinstance(value, list):
        return [as_json(v) for v in value]
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    return value


# What the toolkit refuses on purpose where kubectl reads on (the README says why): a key given
# twice (the API server's strict field validation refuses it too), and a tag that swallows
# the `,`, `[` or `]` after it.
DELIBERATE = ("duplicate key", "as one tag, flow characters included")


def same(ours, theirs):
    """Whether the toolkit's reading matches kubectl's: both refuse, the toolkit refuses on
    purpose (DELIBERATE), or the same JSON values (bool, number, string and null kept apart)."""
    if isinstance(ours, Refused) and not isinstance(theirs, Refused):
        return any(reason in ours for reason in DELIBERATE)
    if isinstance(ours, Refused) or isinstance(theirs, Refused):
        return isinstance(ours, Refused) and isinstance(theirs, Refused)
    return json.dumps(as_json(ours), sort_keys=True) == json.dumps(as_json(theirs), sort_keys=True)

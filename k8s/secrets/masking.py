"""Masking: Secret values never reach output, logs or errors.

Contract: `mask(obj)` returns a copy of an object whose Secret values read
`***` (keys kept), for `template`/`diff` output; a `Scrubber` remembers every
value a run has seen (and its base64 and decoded forms) and replaces them with
`***` in any text or UserError before it is shown. Nothing here prints.

Only the standard library is imported at module level (render.py --help stays fast).
"""

import base64

MASK = "***"
SECRET_FIELDS = ("data", "stringData")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"  # holds the values in clear


def mask(obj):
    """A copy of `obj` whose Secret values read `***` (keys kept); other objects as they are.

    Covers `data`, `stringData` and kubectl's last-applied-configuration
    annotation (which holds the values in clear); a `kind: List` is masked item
    by item. `obj` itself is not changed.
    """
    if not isinstance(obj, dict):
        return obj
    if obj.get("kind") == "List" and isinstance(obj.get("items"), list):
        return {**obj, "items": [mask(item) for item in obj["items"]]}
    if obj.get("kind") != "Secret":
        return obj
    out = dict(obj)
    for field in SECRET_FIELDS:
        if isinstance(out.get(field), dict):
            out[field] = {key: MASK for key in out[field]}
        elif out.get(field) is not None:
            out[field] = MASK
    metadata = out.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("annotations"), dict) \
            and LAST_APPLIED in metadata["annotations"]:
        out["metadata"] = {**metadata, "annotations": {**metadata["annotations"], LAST_APPLIED: MASK}}
    return out


class Scrubber:
    """Replaces every secret value seen so far (and its base64 form) in text with `***`.

    Values shorter than MIN_LENGTH are left alone (scrubbing "1" would garble every
    message); messages are built so that they never quote values in the first place.
    """

    MIN_LENGTH = 4

    def __init__(self):
        self.values = set()

    def add(self, value):
        if isinstance(value, bytes):
            forms = {base64.b64encode(value).decode()}
            try:
                forms.add(value.decode("utf-8"))
            except UnicodeDecodeError:
                pass
        elif isinstance(value, str):
            forms = {value, base64.b64encode(value.encode("utf-8")).decode()}
            try:  # a data value: its decoded text too
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
                if decoded.isprintable():
                    forms.add(decoded)
            except ValueError:
                pass
        else:
            return
        for form in forms:
            for part in [form] + form.splitlines():  # a multi-line value may be quoted line by line
                if len(part.strip()) >= self.MIN_LENGTH:
                    self.values.add(part.strip())

    def __call__(self, text):
        for value in sorted(self.values, key=len, reverse=True):
            text = text.replace(value, MASK)
        return text

    def error(self, err):
        """The UserError `err` with its message (and those it groups) scrubbed."""
        from ..errors import UserErrors

        if isinstance(err, UserErrors):
            return UserErrors([self.error(e) for e in err.errors])
        err.message = self(err.message)
        err.args = (err.message,)
        if err.obj:
            err.obj = self(err.obj)
        return err


def scrubbed(obj, text):
    """`text` without the values of `obj` if it is a Secret (a message about it from the server)."""
    if not isinstance(obj, dict) or obj.get("kind") != "Secret":
        return text
    scrub = Scrubber()
    for field in SECRET_FIELDS:
        for value in (obj.get(field) or {}).values() if isinstance(obj.get(field), dict) else ():
            scrub.add(value)
    return scrub(text)

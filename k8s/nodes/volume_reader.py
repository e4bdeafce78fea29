"""Typed access to the fields of a volumes/ file, with errors that name the line and variable.

`_load_document` renders one volumes/ file like a manifest (variables substituted)
and hands back its one mapping with a `_Reader`; the reader's checks collect
errors instead of raising, so every problem of a file is reported at once.
"""

import re

from ..errors import UserError
from .volume_layout import _OWNER, parse_quantity


class _Reader:
    """Typed access to one YAML document's fields, with errors that name the line."""

    def __init__(self, file, text, raw_text, doc_index, data=None):
        self.file, self.text, self.raw, self.doc_index = file, text, raw_text, doc_index
        self.data, self._unexpanded = data, False
        self.errors = []

    def line(self, path):
        from ..core import kubeyaml

        return kubeyaml.line_of(self.text, self.file, self.doc_index, self._text_path(path))

    def _text_path(self, path):
        """`path` (keys of the expanded data) as keys of `text`: a key with a variable
        (`kube1.$DOMAIN:`) is found by its position in its mapping."""
        if self._unexpanded is False:
            from ..core import kubeyaml

            try:
                docs = kubeyaml.load_all(self.text, self.file)
                self._unexpanded = next((d.data for d in docs if d.index == self.doc_index), None)
            except UserError:
                self._unexpanded = None
        node, raw, found = self.data, self._unexpanded, []
        for key in path:
            if isinstance(node, dict) and isinstance(raw, dict) and key in node and len(node) == len(raw):
                raw_key = list(raw)[list(node).index(key)]
                node, raw = node[key], raw[raw_key]
                found.append(raw_key)
            elif isinstance(node, list) and isinstance(raw, list) and isinstance(key, int) \
                    and 0 <= key < min(len(node), len(raw)):
                node, raw = node[key], raw[key]
                found.append(key)
            else:
                return found + list(path[len(found):])
        return found

    def error(self, path, message):
        self.errors.append(UserError(message, file=self.file, line=self.line(path)))

    def origin(self, path):
        """` (from $NAME)` when the line of `path` in the file refers to one variable, else ""."""
        from ..core import substitute

        line = self.line(path)
        lines = self.raw.splitlines()
        refs = substitute.references(lines[line - 1]) if line and line <= len(lines) else []
        return f" (from ${refs[0].name})" if len(refs) == 1 else ""

    def shown(self, value, path):
        """`value` as an error shows it, and the variable it came from."""
        return _show(value) + self.origin(path)

    def mapping(self, value, path, what, allowed):
        """`value` if it is a mapping of `allowed` keys only, else None (and the errors)."""
        if not isinstance(value, dict):
            self.error(path, f"{what} must be a mapping, got {_type(value)}")
            return None
        unknown = [key for key in value if key not in allowed]
        for key in unknown:
            self.error(path + [key], f"{what}: unknown field {key!r} (known: {', '.join(allowed)})")
        return None if unknown else value

    def string(self, value, path, what, required=True):
        if value is None and not required:
            return None
        if value == "":
            self.error(path, f"{what} is empty{self.origin(path)}")
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            self.error(path, f"{what} must be a string, got {_type(value)}{self.origin(path)}")
            return None
        return str(value)

    def words(self, value, path, what):
        """A list of strings, or one string of space-separated words."""
        if isinstance(value, str):
            return value.split()
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return [w for v in value for w in v.split()]
        self.error(path, f"{what} must be a list of names or a string of space-separated names, "
                         f"got {_type(value)}{self.origin(path)}")
        return None

    def count(self, value, path, what):
        """A decimal count: `30`, or `"0030"` (as `seq` read the original POOL_NUM_SMALL)."""
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip(), 10)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.error(path, f"{what} must be a whole number, got {self.shown(value, path)}")
            return None
        return value

    def quantity(self, value, path, what):
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        amount = parse_quantity(value)
        if amount is None:
            self.error(path, f"{what}: size {self.shown(value, path)} is not a Kubernetes quantity "
                             "such as 500Mi, 8Gi or 1Ti")
            return None
        if amount <= 0:
            self.error(path, f"{what}: size must be more than zero, got {self.shown(value, path)}")
            return None
        return value

    def mode(self, value, path, what):
        """Permission bits: `0700` unquoted (YAML reads it as octal) or a string of octal digits."""
        if value is None:
            return None
        if isinstance(value, str) and re.fullmatch(r"0?[0-7]{3,4}", value):
            return int(value, 8)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0o777:
            written = self._written_number(path)
            if written and written[0] != "0":  # `mode: 500` is decimal 500, 0764: never what was meant
                self.error(path, f"{what}: mode {written}{self.origin(path)} is the decimal number {value} "
                                 f"(0{value:o}); write permission bits in octal, such as 0{written}")
                return None
            return value
        hint = f"; write 0{value} or \"0{value}\"" if isinstance(value, int) and \
            re.fullmatch(r"[0-7]{3}", str(value)) else ""
        self.error(path, f"{what}: mode {self.shown(value, path)} is not octal permission bits such as "
                         f"0700{hint}")
        return None

    def _written_number(self, path):
        """The digits a number at `path` is written with in the file, if they can be found."""
        line = self.line(path)
        lines = self.text.splitlines()
        if not path or not line or line > len(lines):
            return None
        match = re.search(rf"(?:^|[\s{{,]){re.escape(str(path[-1]))}:\s*([0-9][0-9_]*)\b", lines[line - 1])
        return match and match.group(1)

    def owner(self, value, path, what):
        """`user`, `user:group` or `:group`; names or numeric ids."""
        if value is None:
            return None
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if isinstance(text, str):
            user, _, group = text.partition(":")
            if (user or group) and all(not part or _OWNER.fullmatch(part) for part in (user, group)):
                return text
        self.error(path, f"{what}: owner {self.shown(value, path)} is not user, user:group or :group")
        return None


def _type(value):
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "nothing"}.get(type(value), type(value).__name__)


def _show(value):
    """A value as an error message shows it: "text", 42, true, nothing, [...]."""
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _load_document(path, variables):
    """The one mapping a volumes/ file holds, with its reader; None if the file is empty."""
    from ..core.files import read_text
    from ..core.render import render_file

    try:
        raw = read_text(path)
    except OSError as err:
        raise UserError(f"cannot read it: {err.strerror}", file=path) from None
    docs, text, _ = render_file(path, variables)
    docs = [d for d in docs if d.data is not None]
    if len(docs) > 1:
        raise UserError("expected one YAML document, found several", file=path, line=docs[1].line)
    if not docs:
        return None, _Reader(path, text, raw, 0)
    return docs[0].data, _Reader(path, text, raw, docs[0].index, docs[0].data)

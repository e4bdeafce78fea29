"""Read `Makefile.vars` (and an optional per-cluster overlay) exactly as GNU make 4.3 does.

The Makefile reads the same files, so each rule below mirrors make's reader (read.c) and
expander (expand.c) for what we accept: assignments, optionally after `export`, and
`export NAME...`. Anything else (`$(shell ...)` and other functions, conditionals,
includes, rules) is refused, never executed. tests/core/test_variables.py uses make as oracle.
"""

import functools
import os
from dataclasses import dataclass

from ..errors import UserError, raise_all

_BLANK = " \t"  # make's ISBLANK: may separate a name from its operator
_SPACE = " \t\n\v\f\r"  # make's ISSPACE: stripped around values, separates words
_TO_BLANK = str.maketrans(_SPACE, " " * len(_SPACE))
_REFUSED_MODIFIERS = ("define", "undefine", "unexport", "override", "private")  # besides `export`
_DIRECTIVES = {"include", "-include", "sinclude", "ifdef", "ifndef", "ifeq", "ifneq", "else", "endif",
               "endef", "vpath", "load", "-load", *_REFUSED_MODIFIERS}  # fmt: skip
# Variables make defines itself (`make -p -f /dev/null`), besides `.NAME` ones: we do
# not know their values, so a vars file may only set them with `=` or `:=`.
_MAKE_OWN = {"CURDIR", "MAKE", "MAKECMDGOALS", "MAKEFILE_LIST", "MAKEFILES", "MAKEFLAGS", "MAKELEVEL",
             "MAKE_COMMAND", "MAKE_HOST", "MAKE_VERSION", "MFLAGS", "GNUMAKEFLAGS", "SHELL", "SUFFIXES",
             "AR", "ARFLAGS", "AS", "CC", "CO", "COFLAGS", "CPP", "CTANGLE", "CWEAVE", "CXX", "F77",
             "F77FLAGS", "FC", "GET", "LD", "LEX", "LINT", "M2C", "MAKEINFO", "OBJC", "OUTPUT_OPTION",
             "PC", "RM", "TANGLE", "TEX", "TEXI2DVI", "WEAVE", "YACC"}  # fmt: skip
_ONLY = "; only variable assignments are supported"
_SET_IT = " is not supported; set the value directly"


@dataclass(frozen=True)
class Variable:
    """A variable once both vars files are read.

    Parameters:
        name: the variable's name.
        value: its fully expanded value; an environment variable's value is verbatim,
            as make passes it to recipes (and envsubst saw it).
        origin: "environment"; "environment (overrides Makefile.vars:12)" when it beat
            a `?=`; else its last assignment, "Makefile.vars:12" or "overlay prod.vars:3"
            (paths as given).
    """

    name: str
    value: str
    origin: str


@dataclass
class _Var:
    value: str  # unexpanded text if `recursive`, else the final text
    recursive: bool
    origin: str
    file: str | None = None  # None: from the environment
    line: int | None = None

    def error(self, name, message):
        if self.file:
            return UserError(message, file=self.file, line=self.line)
        return UserError(message, obj=f"environment variable {name}")


def load_variables(path="Makefile.vars", overlay=None, environ=None) -> dict[str, Variable]:
    """Read the files like the Makefile's `-include $(VARS_FILE)` then `include Makefile.vars`.

    Parameters:
        path: the main vars file.
        overlay: a vars file read *before* `path`, so its values beat `?=` defaults in
            `path`; defaults to `environ["VARS_FILE"]`. A missing overlay is an error
            (make's `-include` would skip it silently).
        environ: the environment, default `os.environ`. `?=` yields to it; `=`, `:=`
            and `+=` override it (make without `-e`).

    Returns every variable: those the files assign or `?=`-default, in file order, then
    the rest of the environment, because the renderer sees all of it.
    """
    environ = os.environ if environ is None else environ
    overlay = overlay or environ.get("VARS_FILE") or None
    reader = _Reader(environ)
    if overlay:
        # Named as the user set it: `VARS_FILE=/dev/zero: not a regular file`.
        shown = f"VARS_FILE={overlay}" if str(overlay) == environ.get("VARS_FILE") else str(overlay)
        reader.read(str(overlay), f"overlay {overlay}", "overlay file (VARS_FILE) not found", shown)
    reader.read(str(path), str(path), "vars file not found")
    return reader.result()


def shown(variables, names=None) -> list[Variable]:
    """The Variables `render.py vars [NAME...]` shows.

    Parameters:
        variables: what `load_variables` returned (its order is kept).
        names: the variables to show, in order; None shows the files' variables and
            environment overrides of them, not the rest of the environment.
    """
    if names is None:
        return [v for v in variables.values() if v.origin != "environment"]
    raise_all([UserError(f"unknown variable {n!r}") for n in names if n not in variables])
    return [variables[n] for n in names]


def describe(variables, names=None) -> list[str]:
    """Lines `NAME=value  (origin)` of the variables `shown` picks."""
    # One line per variable, even for an environment value holding a newline.
    return [f"{v.name}={v.value}".replace("\n", "\\n") + f"  ({v.origin})" for v in shown(variables, names)]


class _Reader:
    """make's variable table while the files are read, and its expander."""

    def __init__(self, environ):
        # make imports the environment as recursive variables: a reference to one
        # also expands the references inside its value.
        self.table = {k: _Var(v, True, "environment") for k, v in environ.items()}
        self.touched = {}  # names the files assign or `?=`-default, in file order
        self.memo = {}  # expansions, valid until the table changes
        self.active = set()  # variables being expanded, to catch cycles

    def read(self, path, label, missing, shown=None):
        """Run the statements of file `path`; `shown` names it in errors about the file itself."""
        from .files import read_bytes

        data = read_bytes(path, "vars", name=shown if shown and os.path.lexists(path) else path,
                          missing=missing)  # a regular file of at most 1 MiB
        try:
            text = data.decode("utf-8").removeprefix("\ufeff")  # make skips a BOM
        except UnicodeDecodeError as e:
            raise UserError("not valid UTF-8", file=path, line=data.count(b"\n", 0, e.start) + 1) from None
        if "\0" in text:  # make ends the line there and glues the next one on: never what was meant
            raise UserError("a NUL byte: make would cut this line there and read the next one as its rest; "
                            "remove it", file=path, line=text.count("\n", 0, text.index("\0")) + 1)
        for lineno, line in _logical_lines(text):
            try:
                self._statement(line, (f"{label}:{lineno}", path, lineno))
            except UserError as e:
                if e.file:
                    raise
                raise UserError(e.message, file=path, line=lineno, obj=e.obj) from None

    def _statement(self, raw, where):
        line = raw.lstrip(_SPACE)
        # read.c's parse_var_assignment: a modifier word counts only if the line is not
        # already an assignment, so `export = 1` sets a variable named `export`.
        while line and (found := _split_definition(line)) is None:
            word, line = _first_word(line)
            if word in _REFUSED_MODIFIERS:
                raise UserError(f"make directive '{word}' is not supported{_ONLY}")
            if word != "export" or not line:
                return self._not_assignment(raw, where)
        if not line:
            return
        name_text, op, value = found
        if op == "!=":
            raise UserError(f"shell assignment '!='{_SET_IT}")
        name = self.expand(_parse(name_text))  # make expands names: `$(ENV)_HOST = x`
        if not name:
            raise UserError("empty variable name")
        if any(ch in name for ch in _SPACE):  # make would accept it, but nothing could use it
            raise UserError(f"variable name {name!r} contains whitespace")
        parts = _parse(value)  # refuse functions even in a value that is never used
        old = self.table.get(name)
        if name.startswith(".") or (op in ("?=", "+=") and _make_own(name, old)):
            raise UserError(f"'{op}' on make's own variable {name} is not supported")
        if op == "?=" and old:
            if old.origin == "environment":
                # Under make the environment already holds the file's own value:
                # then the file, not the environment, is where it came from.
                old.origin = where[0] if self._default_equals(parts, old.value) else \
                    f"environment (overrides {where[0]})"
                self.touched.setdefault(name)
        elif op in (":=", "::="):
            self._set(name, _Var(self.expand(parts), False, *where))
        elif op == "+=" and old:
            # Appending keeps the flavour, so a simple variable gets the new text
            # expanded now. Appending nothing changes nothing, not even the origin.
            more = value if old.recursive else self.expand(parts)
            if more:
                self._set(name, _Var(f"{old.value} {more}" if old.value else more, old.recursive, *where))
        else:  # `=`, and `?=`/`+=` of an undefined variable: expanded at each use
            self._set(name, _Var(value, True, *where))

    def _default_equals(self, parts, value):
        try:
            return self.expand(parts) == value
        except UserError:  # the default would fail when used; the environment value stands
            return False

    def _not_assignment(self, raw, where):
        line = raw.lstrip(_SPACE)
        word, rest = _first_word(line)
        if word == "export":  # `export A B` defines undefined names as empty, like make
            for name in self.expand(_parse(rest)).translate(_TO_BLANK).split(" "):
                if name and name not in self.table:
                    if _make_own(name, None):
                        raise UserError(f"exporting make's own variable {name}{_SET_IT}")
                    self._set(name, _Var("", False, *where))
        elif word in _DIRECTIVES:
            raise UserError(f"make directive '{word}' is not supported{_ONLY}")
        elif raw.startswith("\t"):
            raise UserError(f"recipe lines (starting with a tab) are not supported{_ONLY}")
        elif ":" in line or ":" in (expanded := self.expand(_parse(line))):
            raise UserError(f"rule lines (target: prerequisites) are not supported{_ONLY}")
        elif expanded.strip(_SPACE):  # make ignores a line expanding to nothing
            raise UserError("not a variable assignment (expected NAME = value)")

    def _set(self, name, var):
        self.table[name] = var
        self.touched.setdefault(name)
        self.memo.clear()

    def expand(self, parts):
        """Expand text parsed by `_parse` against the current table."""
        out = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
                continue
            name = self.expand(part)
            if ":" in name and part != (name,):  # a computed name make may read as `$(A:b=c)`
                raise UserError(f"substitution reference $({name}){_SET_IT}")
            out.append(self._lookup(name))
        return "".join(out)

    def _lookup(self, name):
        var = self.table.get(name)
        if _make_own(name, var):
            raise UserError(f"make's own variable $({name}){_SET_IT}")
        if var is None or not var.recursive:
            return var.value if var else ""  # undefined variables expand to nothing
        if name not in self.memo:
            if name in self.active:
                raise var.error(name, f"Recursive variable '{name}' references itself (eventually)")
            self.active.add(name)
            try:
                self.memo[name] = self.expand(_parse(var.value))
            except UserError as e:  # locate errors in this value; an error ends the load
                if e.file or e.obj:
                    raise
                raise var.error(name, e.message) from None
            self.active.discard(name)
        return self.memo[name]

    def result(self):
        order = list(self.touched) + [n for n in self.table if n not in self.touched]
        # Environment values go to recipes verbatim (make's target_environment).
        return {n: Variable(n, self._lookup(n) if v.file else v.value, v.origin)
                for n in order for v in [self.table[n]]}  # fmt: skip


def _make_own(name, var):
    """Whether `name` is one of make's own variables and the vars files did not set it."""
    return (name in _MAKE_OWN or name.startswith(".")) and not (var and var.file)


def _first_word(line):
    """(first word, the rest without leading whitespace), split at make's whitespace."""
    word = line.translate(_TO_BLANK).split(" ", 1)[0]
    return word, line[len(word) :].lstrip(_SPACE)


def _backslashes_before(line, end):
    return end - len(line[:end].rstrip("\\"))


def _logical_lines(text):
    """Yield (first line number, line) for each logical line, as read.c builds them."""
    lines = text.split("\n")
    lines[:-1] = [ln.removesuffix("\r") for ln in lines[:-1]]  # the last had no LF: its CR stays
    i = 0
    while i < len(lines):
        first, line = i + 1, lines[i]
        while _backslashes_before(lines[i], len(lines[i])) % 2 and i + 1 < len(lines):
            # An odd number of backslashes continues the line: half of them stay, and
            # the whitespace around the break becomes one space.
            i += 1
            n = _backslashes_before(line, len(line))
            line = line[: len(line) - (n + 1) // 2].rstrip(_BLANK) + " " + lines[i].lstrip(_BLANK)
        yield first, _strip_comment(line)  # after joining: a comment can be continued too
        i += 1


def _strip_comment(line):
    """Cut `line` at its first `#` outside a reference (`$#`, `$(A#B)`), like remove_comments."""
    i = 0
    while True:
        hash_at, dollar_at = line.find("#", i), line.find("$", i)
        if dollar_at != -1 and (hash_at == -1 or dollar_at < hash_at):
            i = dollar_at + 2
            if line[dollar_at + 1 : i] in ("(", "{") and (i := _matching_close(line, dollar_at + 1)) is None:
                return line
            continue
        if hash_at == -1:
            return line
        n = _backslashes_before(line, hash_at)  # halved; an odd count escapes the `#`
        kept = line[: hash_at - n] + "\\" * (n // 2)
        if n % 2 == 0:
            return kept
        line, i = kept + line[hash_at:], len(kept) + 1


def _split_definition(line):
    """(NAME, op, value) if `line` is `NAME op value`, else None, as parse_variable_definition."""
    i, name_end = 0, None
    while i < len(line):
        c, i = line[i], i + 1
        if c == "#":  # only a `\#` survives comment removal: not an assignment
            return None
        if c == "$":  # skip a reference: its `=`, `:` or spaces are part of the name
            if (i := _matching_close(line, i) if line[i : i + 1] in ("(", "{") else i + 1) is None:
                return None
            continue
        if c in _BLANK:  # the name has ended: only the operator may follow
            name_end, i = i - 1, len(line) - len(line[i:].lstrip(_SPACE))
            if i == len(line):
                return None
            c, i = line[i], i + 1
        if c in "=:+?!":
            op = next((op for op in ("=", ":=", "+=", "?=", "!=", "::=") if line.startswith(op, i - 1)), None)
            if op:
                return line[: i - 1 if name_end is None else name_end], op, line[i - 1 + len(op) :].lstrip(_SPACE)
            if c == ":":  # a rule, `target: prerequisites`
                return None
        if name_end is not None:
            return None
    return None


def _matching_close(text, i):
    """Index just past the bracket closing the one at `text[i]`, or None."""
    depth, close = 0, ")" if text[i] == "(" else "}"
    for j in range(i, len(text)):
        if text[j] == text[i]:
            depth += 1
        elif text[j] == close and (depth := depth - 1) == 0:
            return j + 1
    return None


@functools.lru_cache(maxsize=4096)
def _parse(text):
    """Split `text` as expand.c scans it: strings, and references as tuples of the parts
    that expand to their name (`$(A_$(B))` gives `(("A_", ("B",)),)`)."""
    parts, start = [], 0
    while (i := text.find("$", start)) != -1:
        parts.append(text[start:i])
        c, start = text[i + 1 : i + 2], i + 2
        if c in ("$", ""):  # `$$`, or a `$` ending the text, is a literal `$`
            parts.append("$")
        elif c in "({":
            name, start = _reference(text, i)
            parts.append(name)
        elif c.isascii():  # `$X` is `$(X)` for any single character X, even a space
            parts.append((c,))
        else:  # make would take the first byte of the UTF-8 sequence as the name
            raise UserError(f"'${c}' is not supported: write $$ for a literal $, $({c}...) for a variable")
    parts.append(text[start:])
    return tuple(p for p in parts if p)


def _reference(text, i):
    """Parse the `$(...)` or `${...}` at `text[i]`: (its name's parts, index past it)."""
    close = ")" if text[i + 1] == "(" else "}"
    end = text.find(close, i + 2)
    if end != -1 and "$" in text[i + 2 : end]:  # like make, count brackets only around a
        end = (_matching_close(text, i + 1) or 0) - 1  # reference: `$(A(B))` is `$(A(B)` + `)`
    if end == -1:
        raise UserError(f"unterminated variable reference {text[i:]}")
    body, ref = text[i + 2 : end], text[i : end + 1]
    word, _ = _first_word(body)
    if word != body and word and all(c in "abcdefghijklmnopqrstuvwxyz-" for c in word):
        raise UserError(f"make function {ref[:2]}{word} ...{close}{_SET_IT}")
    name = _parse(body) if "$" in body else (body,)
    top = "".join(p for p in name if isinstance(p, str))  # outside nested references
    if any(ch in top for ch in _SPACE + ","):
        raise UserError(f"variable reference {ref} is not supported: names cannot hold spaces or commas")
    if ":" in top:
        raise UserError(f"substitution reference {ref}{_SET_IT}")
    return name, end + 1

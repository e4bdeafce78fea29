"""Read `Makefile.vars` (and an optional per-cluster overlay) exactly as GNU make 4.3 does.

The vars files are shared with the project's Makefile, so every rule here mirrors
make's reader (read.c) and expander (expand.c) for the subset we accept: variable
assignments (`=`, `:=`, `::=`, `?=`, `+=`, optionally prefixed by `export`) and
`export NAME...` lines. Everything else make would do (functions such as
`$(shell ...)`, conditionals, includes, rules) is refused with a one-line
`UserError`, never executed. tests/test_variables.py checks the results against
/usr/bin/make itself.
"""

import functools
import os
from dataclasses import dataclass

from k8s.errors import UserError, raise_all

_BLANK = " \t"  # make's ISBLANK: separates a name from its operator
_SPACE = " \t\n\v\f\r"  # make's ISSPACE: stripped before a value, separates words
_DIRECTIVES = {
    "include", "-include", "sinclude", "ifdef", "ifndef", "ifeq", "ifneq", "else",
    "endif", "define", "endef", "undefine", "unexport", "override", "private",
    "vpath", "load", "-load",
}  # fmt: skip
_ONLY_ASSIGNMENTS = "; only variable assignments are supported"


@dataclass(frozen=True)
class Variable:
    """A variable after both vars files have been read.

    Parameters:
        name: the variable's name.
        value: its fully expanded value. An environment variable's value is
            verbatim, as make hands it to recipes (and envsubst saw it).
        origin: "environment", "environment (overrides Makefile.vars:12)" for an
            environment value that beat a `?=` default, "Makefile.vars:12" or
            "overlay cluster.vars:3" (paths as given) for the last assignment.
    """

    name: str
    value: str
    origin: str


@dataclass
class _Var:
    value: str  # unexpanded text if `recursive`, else final text
    recursive: bool
    origin: str
    file: str | None = None  # None: comes from the environment
    line: int | None = None


def load_variables(path="Makefile.vars", overlay=None, environ=None) -> dict[str, Variable]:
    """Read the vars files like the Makefile's `-include $(VARS_FILE)` then `include Makefile.vars`.

    Parameters:
        path: the main vars file.
        overlay: an optional vars file read *before* `path` (so its assignments beat
            `?=` defaults in `path`); defaults to `environ["VARS_FILE"]`. A missing
            overlay is an error (make would silently skip it).
        environ: the environment, default `os.environ`. `?=` yields to it; `=`,
            `:=` and `+=` override it, as in make without `-e`.

    Returns every variable, in order: those the files define or `?=`-mention (file
    order), then the rest of the environment (the renderer sees all of it).
    """
    environ = os.environ if environ is None else environ
    if overlay is None:
        overlay = environ.get("VARS_FILE") or None
    reader = _Reader(environ)
    if overlay:
        reader.read(str(overlay), f"overlay {overlay}", "overlay file (VARS_FILE) not found")
    reader.read(str(path), str(path), "vars file not found")
    return reader.result()


def describe(variables, names=None) -> list[str]:
    """Lines `NAME=value  (origin)` for `render.py vars [NAME...]`.

    Parameters:
        variables: the result of `load_variables` (its order is kept).
        names: variables to show, in that order; None shows those the files define
            and environment overrides of them, not the rest of the environment.
    """
    if names is None:
        chosen = [v for v in variables.values() if v.origin != "environment"]
    else:
        raise_all([UserError(f"unknown variable {n!r}") for n in names if n not in variables])
        chosen = [variables[n] for n in names]
    # One line per variable, even for an environment value holding a newline.
    return [f"{v.name}={v.value}".replace("\n", "\\n") + f"  ({v.origin})" for v in chosen]


class _Reader:
    """make's variable table while the files are read, and its expander."""

    def __init__(self, environ):
        # make imports the environment as recursive variables: `$(FOO)` expands
        # references inside FOO's environment value.
        self.table = {k: _Var(v, True, "environment") for k, v in environ.items()}
        self.touched = {}  # names the files assign or override, in file order
        self.memo = {}  # expansions valid until the table next changes
        self.active = set()  # variables being expanded, to catch cycles

    def read(self, path, label, missing):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise UserError(missing, file=path) from None
        except OSError as e:
            raise UserError(e.strerror or str(e), file=path) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise UserError("not valid UTF-8", file=path, line=data.count(b"\n", 0, e.start) + 1) from None
        for lineno, line in _logical_lines(text.removeprefix("\ufeff")):  # make skips a BOM
            try:
                self._statement(line.lstrip(_SPACE), f"{label}:{lineno}", path, lineno)
            except UserError as e:
                if e.file:
                    raise
                raise UserError(e.message, file=path, line=lineno) from None

    def _statement(self, line, origin, file, lineno):
        if not line:
            return
        assignment = _split_assignment(line)
        if assignment is None:
            word, rest = _first_word(line)
            if word == "export":  # `export A B` defines missing names as empty, as make does
                for name in _words(self.expand(_parse(rest))):
                    if name not in self.table:
                        self._set(name, _Var("", False, origin, file, lineno))
                return
            if word in _DIRECTIVES:
                raise UserError(f"make directive '{word}' is not supported" + _ONLY_ASSIGNMENTS)
            parts = _parse(line)  # name a function in the line (`$(info x)`) rather than its syntax
            if ":" in line:
                raise UserError("rule lines (target: prerequisites) are not supported" + _ONLY_ASSIGNMENTS)
            if self.expand(parts).strip(_SPACE):  # make ignores a line that expands to nothing
                raise UserError("not a variable assignment (expected NAME = value)")
            return

        modifiers, name_text, op, value = assignment
        for word in modifiers:
            if word != "export":
                raise UserError(f"make directive '{word}' is not supported" + _ONLY_ASSIGNMENTS)
        if op == "!=":
            raise UserError("shell assignment '!=' is not supported; set the value directly")
        name = self.expand(_parse(name_text))  # make expands names: `$(ENV)_HOST = x`
        if not name:
            raise UserError("empty variable name")
        if any(ch in name for ch in _SPACE):  # make would accept it, but nothing could use it
            raise UserError(f"variable name {name!r} contains whitespace")
        parts = _parse(value)  # refuse functions even in a value that is never used
        old = self.table.get(name)
        if op == "?=" and old is not None:
            if old.origin == "environment":
                old.origin = f"environment (overrides {origin})"
                self.touched.setdefault(name)
            return
        if op in (":=", "::="):
            self._set(name, _Var(self.expand(parts), False, origin, file, lineno))
        elif op == "+=" and old is not None:
            # Appending keeps the flavour; a simple variable gets the new text
            # expanded now. Appending nothing changes nothing, not even the origin.
            more = value if old.recursive else self.expand(parts)
            if more:
                joined = f"{old.value} {more}" if old.value else more
                self._set(name, _Var(joined, old.recursive, origin, file, lineno))
        else:  # `=`, `?=` and `+=` of an undefined variable are recursive: expanded at use
            self._set(name, _Var(value, True, origin, file, lineno))

    def _set(self, name, var):
        self.table[name] = var
        self.touched.setdefault(name)
        self.memo.clear()

    def expand(self, parts):
        """Expand parsed text (see `_parse`) against the current table."""
        out = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
                continue
            name = self.expand(part)
            if ":" in name and len(part) > 1:  # computed: make may read `$(VAR:a=b)`
                raise UserError(f"substitution reference $({name}) is not supported; set the value directly")
            out.append(self._lookup(name))
        return "".join(out)

    def _lookup(self, name):
        var = self.table.get(name)
        if var is None:
            return ""  # undefined variables expand to nothing, as in make
        if not var.recursive:
            return var.value
        if name in self.memo:
            return self.memo[name]
        if name in self.active:
            raise _located(var, name, f"Recursive variable '{name}' references itself (eventually)")
        self.active.add(name)
        try:
            try:
                parts = _parse(var.value)
            except UserError as e:
                raise _located(var, name, e.message) from None
            self.memo[name] = value = self.expand(parts)
        finally:
            self.active.discard(name)
        return value

    def result(self):
        order = list(self.touched) + [n for n in self.table if n not in self.touched]
        out = {}
        for name in order:
            var = self.table[name]
            # Environment values go to recipes verbatim (make's target_environment).
            value = self._lookup(name) if var.recursive and var.file else var.value
            out[name] = Variable(name, value, var.origin)
        return out


def _located(var, name, message):
    if var.file:
        return UserError(message, file=var.file, line=var.line)
    return UserError(f"environment variable {name}: {message}")


def _first_word(line):
    """(first word, rest with leading whitespace removed), splitting on make's whitespace."""
    end = 0
    while end < len(line) and line[end] not in _SPACE:
        end += 1
    return line[:end], line[end:].lstrip(_SPACE)


def _words(text):
    for ch in _SPACE[1:]:  # make splits on ASCII whitespace only
        text = text.replace(ch, " ")
    return [w for w in text.split(" ") if w]


def _logical_lines(text):
    """Yield (first line number, line) as make's reader sees each logical line.

    Mirrors read.c: a CR before LF is dropped; a line ending in an odd number of
    backslashes continues on the next one; comments go last, so a comment
    continues too.
    """
    lines = text.split("\n")
    for i in range(len(lines) - 1):  # the last piece had no LF: its CR stays
        if lines[i].endswith("\r"):
            lines[i] = lines[i][:-1]
    i = 0
    while i < len(lines):
        first, line = i + 1, lines[i]
        while _trailing_backslashes(lines[i]) % 2 and i + 1 < len(lines):
            i += 1
            # collapse_continuations: the newline keeps half of the backslashes
            # before it, and all whitespace around it becomes one space.
            n = _trailing_backslashes(line)
            line = line[: len(line) - (n + 1) // 2].rstrip(_BLANK) + " " + lines[i].lstrip(_BLANK)
        yield first, _strip_comment(line)
        i += 1


def _trailing_backslashes(line):
    return len(line) - len(line.rstrip("\\"))


def _strip_comment(line):
    """Cut `line` at its first unescaped `#` (make's remove_comments).

    Backslashes before a `#` are halved; an odd count escapes the `#`. Like make,
    a `#` inside a reference (`$(A#B)`, `$#`) does not start a comment.
    """
    i = 0
    while True:
        hash_at, dollar_at = line.find("#", i), line.find("$", i)
        if dollar_at != -1 and (hash_at == -1 or dollar_at < hash_at):
            if line[dollar_at + 1 : dollar_at + 2] in ("(", "{"):
                i = _matching_close(line, dollar_at + 1)
                if i is None:  # make searches no further than an unclosed `$(`
                    return line
            else:
                i = dollar_at + 2
            continue
        if hash_at == -1:
            return line
        n = len(line[:hash_at]) - len(line[:hash_at].rstrip("\\"))
        kept = line[: hash_at - n] + "\\" * (n // 2)
        if n % 2 == 0:
            return kept
        line, i = kept + line[hash_at:], len(kept) + 1


def _split_assignment(line):
    """Split `[modifier...] NAME op value` into (modifiers, NAME, op, value), or None.

    Mirrors read.c's parse_var_assignment: a modifier word is tried only when the
    line is not already an assignment, so `export = 1` sets a variable `export`.
    """
    modifiers = []
    while True:
        found = _split_definition(line)
        if found:
            return (modifiers, *found)
        word, line = _first_word(line)
        if word in ("define", "undefine"):
            raise UserError(f"make directive '{word}' is not supported" + _ONLY_ASSIGNMENTS)
        if word not in ("export", "unexport", "override", "private") or not line:
            return None
        modifiers.append(word)


def _split_definition(line):
    """Split `NAME op value` into (NAME, op, value), or None (read.c's parse_variable_definition)."""
    i, n, name_end = 0, len(line), None
    while i < n:
        c = line[i]
        i += 1
        if c == "#":  # only a `\#` survives comment removal: not an assignment
            return None
        if c == "$":  # skip a reference so its `=`, `:` or spaces do not count
            if i < n and line[i] in "({":
                i = _matching_close(line, i)
                if i is None:
                    return None
            else:
                i += 1
            continue
        if c in _BLANK:  # the name ended: only an operator may follow
            name_end = i - 1
            while i < n and line[i] in _SPACE:
                i += 1
            if i == n:
                return None
            c = line[i]
            i += 1
        op = None
        if c == "=":
            op = "="
        elif c in ":+?!" and line[i : i + 1] == "=":
            op = c + "="
        elif c == ":" and line[i : i + 2] == ":=":
            op = "::="
        elif c == ":" or name_end is not None:
            return None
        if op:
            start = i - 1
            end = start + len(op)
            name = line[: start if name_end is None else name_end]
            return name, op, line[end:].lstrip(_SPACE)
    return None


def _matching_close(text, i):
    """Index just past the bracket that closes the one at `text[i]`, or None."""
    open_, close = text[i], ")" if text[i] == "(" else "}"
    depth = 0
    for j in range(i, len(text)):
        if text[j] == open_:
            depth += 1
        elif text[j] == close:
            depth -= 1
            if depth == 0:
                return j + 1
    return None


@functools.lru_cache(maxsize=4096)
def _parse(text):
    """Split `text` into literal strings and references, scanning as make's expander does.

    A reference is a tuple of parts that expands to the variable's name, so
    `$(A_$(B))` is `(("A_", ("B",)),)`. Raises a location-less UserError for what
    we refuse: function calls, substitution references, unterminated references.
    """
    parts, start = [], 0
    while (i := text.find("$", start)) != -1:
        if i > start:
            parts.append(text[start:i])
        c = text[i + 1 : i + 2]
        if c in ("$", ""):  # `$$`, or a `$` ending the text, is a literal `$`
            parts.append("$")
            start = i + 2
        elif c in "({":
            name, start = _reference(text, i)
            parts.append(name)
        else:  # `$X` is `$(X)`, for any single character X, even a space
            parts.append((c,))
            start = i + 2
    if start < len(text):
        parts.append(text[start:])
    return tuple(parts)


def _reference(text, i):
    """Parse the `$(...)`/`${...}` at `text[i]`: (name parts, index past it)."""
    open_, close = text[i + 1], ")" if text[i + 1] == "(" else "}"
    end = text.find(close, i + 2)
    if end != -1 and "$" in text[i + 2 : end]:
        # Like make, count brackets only when the name holds a reference; `$(A(B))`
        # is the variable `A(B` followed by a literal `)`.
        end = (_matching_close(text, i + 1) or 0) - 1
    if end == -1:
        raise UserError(f"unterminated variable reference {text[i:]}")
    body, ref = text[i + 2 : end], text[i : end + 1]
    word, _ = _first_word(body)
    if word and word != body and all(c in "abcdefghijklmnopqrstuvwxyz-" for c in word):
        raise UserError(f"make function ${open_}{word} ...{close} is not supported; set the value directly")
    name = _parse(body) if "$" in body else (body,)
    top = "".join(p for p in name if isinstance(p, str))
    if any(ch in top for ch in _SPACE + ","):
        raise UserError(f"variable reference {ref} is not supported: names cannot hold spaces or commas")
    if ":" in top:
        raise UserError(f"substitution reference {ref} is not supported; set the value directly")
    return name, end + 1

"""Variable references in manifest text: `$NAME`, `${NAME}` and a few extensions.

The syntax is GNU `envsubst` (what the old Makefile piped every manifest
through), plus three shell-like extensions:

    $NAME, ${NAME}      the value of NAME.  NAME is `[A-Za-z_][A-Za-z0-9_]*`;
                        an unbraced name is as long as possible ("$AB" is AB).
    ${NAME:-default}    the value of NAME, or `default` when NAME is undefined
                        OR empty (like the shell).
    ${NAME:?message}    the value of NAME; when it is undefined or empty the
                        error "undefined variable NAME: message".
    $$                  a literal `$`, so `$$NAME` gives the text `$NAME`.

Differences from envsubst, all deliberate:

* An undefined variable is an error, never an empty string.  Every undefined
  reference of a text is reported at once, one `file:line:col: undefined
  variable NAME` line each (line and column 1-based, the column of the `$`,
  counted in characters: a tab or a non-ASCII character is one column; lines
  end at `\\n` only).  A variable defined as "" is fine and inserts nothing.
* `$$` is a literal `$` (envsubst outputs `$` and then looks at the second
  `$` afresh, so there `$$A` is `$` followed by the value of A).
* `${NAME:-...}` and `${NAME:?...}` are substituted (envsubst leaves them as
  they are).

The argument of `:-` / `:?` (the text up to the first `}`) is literal text:
references inside it are NOT expanded.  `$$` in it stands for one `$`; any
other `$` in it is an error ("nested references are not expanded"), so that
`${A:-${B}}` cannot silently turn into the text `${B}` followed by a stray
`}`.  The argument cannot contain `}` or a line break; such a text (and every
other form envsubst does not know, e.g. `${A-x}`, `${A:=x}`, `${A B}`, `${1}`,
`$1`, `$ `, an unterminated `${A`) is left literally, as envsubst does.
The argument is checked whether or not it is used, so whether a text is
valid never depends on the variables' values.

Substitution is a single pass: text inserted from a variable or a default is
never looked at again (a value `$B` stays `$B`), as in envsubst.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from ..errors import UserError, raise_all

__all__ = ["Reference", "expand", "expand_inert", "references", "is_inert", "used_values"]

# One `$` construct per match, left to right, exactly like envsubst's scanner:
# where nothing matches at a `$`, the regex engine moves on by one character,
# which is what envsubst does after printing `$` (and `{`) literally.  The
# possessive quantifiers (`*+`) keep a failed attempt linear.
#   group 1: `$$` escape; 2: braced name; 3: operator; 4: argument;
#   group 5: unbraced name.
_PATTERN = re.compile(
    r"\$(?:"
    r"(\$)"
    r"|\{([A-Za-z_][A-Za-z0-9_]*+)(?:(:[-?])([^}\n]*+))?\}"
    r"|([A-Za-z_][A-Za-z0-9_]*+)"
    r")"
)
# The same matches as one group, for `split`: the text between references, then each
# reference's whole text, so a file is substituted without a Python call per reference.
_REFERENCE = re.compile("(" + re.sub(r"\((?!\?)", "(?:", _PATTERN.pattern) + ")")

# An environment value with bytes that are not UTF-8 reaches Python as lone surrogates.
_SURROGATE = re.compile("[\ud800-\udfff]")

# Inside an argument: a `$$` pair, or a lone `$` (group 1, an error).
_ARG_DOLLAR = re.compile(r"\$\$|(\$)")


@dataclass(frozen=True, slots=True)
class Reference:
    """One variable reference in a text.

    Attributes:
        name: the variable's name.
        start: offset of the `$` in the text.
        end: offset just after the reference (`text[start:end]` is all of it).
        line: 1-based line of the `$`.
        col: 1-based column of the `$`, in characters.
        operator: None for `$NAME`/`${NAME}`, else ":-" or ":?".
        argument: the raw text after the operator (the default or the
            message, before `$$` is turned into `$`), else None.
        braced: whether the reference was written with braces.
    """

    name: str
    start: int
    end: int
    line: int
    col: int
    operator: str | None = None
    argument: str | None = None
    braced: bool = False

    @property
    def default(self) -> str | None:
        """The text `${NAME:-default}` falls back to (`$$` unescaped), else None."""
        if self.operator != ":-":
            return None
        return self.argument.replace("$$", "$")


def _positions(text: str, offsets: list[int], line: int = 1, col: int = 1) -> Iterator[tuple[int, int]]:
    """Yield (line, col) for each of the ascending `offsets` into `text`.

    `line`/`col` are the position of `text[0]`; `col` only shifts the columns
    of the first line.  Cost is linear in the text, whatever the number of
    offsets.
    """
    pos = 0
    line_start = 0
    first_line = True
    for offset in offsets:
        breaks = text.count("\n", pos, offset)
        if breaks:
            line += breaks
            line_start = text.rfind("\n", pos, offset) + 1
            first_line = False
        pos = offset
        yield line, offset - line_start + (col if first_line else 1)


def _bad_argument(argument: str) -> int | None:
    """Offset in `argument` of its first `$` that is not part of a `$$`, or None."""
    for m in _ARG_DOLLAR.finditer(argument):
        if m.group(1):
            return m.start()
    return None


def expand(
    text: str,
    variables: Mapping[str, str],
    filename: str = "<string>",
    *,
    line: int = 1,
    col: int = 1,
) -> str:
    """Substitute every reference; collect all undefined ones and raise them together.

    Parameters:
        text: any string: a whole file, or a single scalar's value.
        variables: variable name → value.  A name that is not a key is
            undefined; a value of "" is defined and empty.
        filename: reported in errors as the file the text comes from.
        line, col: the position of `text[0]` in that file (1-based), so that
            errors in a piece of a file point into the file; `col` only
            shifts positions on the text's first line.

    Returns:
        The text with every reference replaced (see the module docstring).

    Raises:
        UserError: one error, or `UserErrors` listing all of them in text
            order: each undefined reference ("undefined variable NAME"), each
            `${NAME:?message}` whose NAME is undefined or empty ("undefined
            variable NAME: message"), each argument with a lone `$`.
    """
    return _expand(text, variables, filename, line, col, None)


def expand_inert(text: str, variables: Mapping[str, str], filename: str = "<string>") -> tuple[str, bool]:
    """`expand(text, variables, filename)` and whether every value it inserted is inert
    (`is_inert`): one pass where `expand` and `used_values` would take two."""
    inserted: list[str] = []
    result = _expand(text, variables, filename, 1, 1, inserted)
    return result, all(map(is_inert, set(inserted)))


def _expand(text, variables, filename, line, col, inserted):
    """`expand`; each value inserted (not the `$` of `$$`) is added to `inserted` unless None.

    The text is split at its references (`_REFERENCE`) and each distinct one is resolved
    once: a file repeats a few references many times, and this spares a Python call for
    every one of them."""
    if "$" not in text:
        return text
    parts = _REFERENCE.split(text)  # [text, reference, text, ..., text]
    resolved = {reference: _resolved(reference, variables) for reference in set(parts[1::2])}
    if any(problem for _, problem in resolved.values()):
        problems, offset = [], 0  # (offset in text, message)
        for i, part in enumerate(parts):
            if i % 2 and (problem := resolved[part][1]):
                problems.append((offset + problem[0], problem[1]))
            offset += len(part)
        where = _positions(text, [at for at, _ in problems], line, col)
        raise_all([UserError(message, file=filename, line=ln, col=cl)
                   for (_, message), (ln, cl) in zip(problems, where)])
    if inserted is not None:
        inserted.extend(value for reference, (value, _) in resolved.items() if reference != "$$")
    parts[1::2] = [resolved[reference][0] for reference in parts[1::2]]
    return "".join(parts)


def _resolved(reference, variables):
    """(what the whole `reference`, a `_REFERENCE` match, inserts, None) or ("", (offset in
    the reference, the problem)): see `expand`."""
    escape, braced, operator, argument, bare = _groups(reference)
    if escape:
        return "$", None
    name = bare or braced
    value = variables.get(name)
    if operator is not None:
        if "$" in argument:  # checked whether or not the argument is used
            bad = _bad_argument(argument)
            if bad is not None:
                what = "default" if operator == ":-" else "message"
                return "", (len(name) + 4 + bad, f"`$` in the {what} of {name}: nested references are "
                                                 "not expanded (write $$ for a literal $)")
            argument = argument.replace("$$", "$")
        if not value:
            if operator == ":?":
                return "", (0, f"undefined variable {name}" + (f": {argument}" if argument else ""))
            value = argument
    elif value is None:
        return "", (0, f"undefined variable {name}")
    if not value.isascii() and _SURROGATE.search(value):  # isascii(): O(1) for most values
        return "", (0, f"variable {name} is not valid UTF-8 text")
    return value, None


@functools.lru_cache(maxsize=1024)  # a tree uses a few references again and again
def _groups(reference):
    return _PATTERN.fullmatch(reference).groups()


_MARK = re.compile("\\$\ue000(\\d+)\ue001")


def without_braces(text: str):
    """(text with each `${...}` reference written `$` + a private-use mark, a function that
    writes them back into a scalar's text): inside `[ ]` or `{ }`, YAML would read the braces
    of `${V}` as a flow mapping. The marks hold no YAML indicator, so the text parses to the
    structure the user meant; each scalar gets its references back before `expand`."""
    if "${" not in text or "\ue000" in text:
        return text, lambda scalar: scalar
    found = []

    def mark(m):
        if m.group(2) is None:  # `$$` or `$NAME`: as it is
            return m.group(0)
        found.append(m.group(0))
        return f"$\ue000{len(found) - 1}\ue001"

    marked = _PATTERN.sub(mark, text)
    return marked, lambda scalar: _MARK.sub(lambda m: found[int(m.group(1))], scalar) if "\ue000" in scalar else scalar


def references(text: str) -> list[Reference]:
    """Every variable reference in `text`, in order.

    Parameters:
        text: any string.

    Returns:
        One `Reference` per `$NAME`, `${NAME}`, `${NAME:-...}`, `${NAME:?...}`
        that `expand` would substitute.  `$$` escapes and text left literally
        are not references and are not listed.
    """
    if "$" not in text:
        return []
    matches = [m for m in _PATTERN.finditer(text) if not m.group(1)]
    return [
        Reference(
            name=m.group(5) or m.group(2),
            start=m.start(),
            end=m.end(),
            line=ln,
            col=cl,
            operator=m.group(3),
            argument=m.group(4),
            braced=m.group(2) is not None,
        )
        for m, (ln, cl) in zip(matches, _positions(text, [m.start() for m in matches]))
    ]


def used_values(text: str, variables: Mapping[str, str]) -> list[str]:
    """The values `expand(text, variables)` would insert, to call `is_inert` on.

    Parameters:
        text: any string.
        variables: as for `expand`.

    Returns:
        In text order, for each reference: the variable's value when it is
        used, or the default of `${NAME:-default}` when that is used.  A
        reference that would be an error inserts nothing and is skipped
        (`expand` raises for it).  The `$` inserted for `$$` is not listed
        (a lone `$` is always inert).
    """
    if "$" not in text:
        return []
    get = variables.get
    values = []
    for m in _PATTERN.finditer(text):
        escape, braced, operator, argument, bare = m.groups()
        if escape:
            continue
        value = get(bare or braced)
        if operator is None or value:
            if value is not None:
                values.append(value)
        elif operator == ":-":
            values.append(argument.replace("$$", "$"))
    return values


# Characters that are never inert, wherever they are: YAML line breaks (also
# \x85, \u2028, \u2029 for YAML 1.1 / PyYAML), tab, C0/C1 controls and DEL,
# surrogates, BOM, \ufffe/\uffff (not printable for YAML); quote characters and
# backslash (end or escape quoted scalars); `#` (comment after a space); flow
# indicators `,[]{}`; `?` (PyYAML ends a plain scalar at `?` inside a flow
# collection: `[a?b]` is a syntax error).
# Then: `: ` or a trailing `:` (mapping value), a leading or trailing space, a
# leading indicator (`:` is refused even when followed by a non-space: PyYAML
# cannot start a plain scalar with it inside a flow collection), `-` alone or
# followed by a space (block sequence entry), a trailing ` -` (yaml-rs
# rejects `[a -]` and `{k: a -}`: "plain scalar cannot start with '-' followed
# by ,[]{}"), `---`/`...` (document markers when at the start of a line).
_NOT_INERT = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff"
    "\"'\\\\#,\\[\\]{}?]"
    r"|: |:\Z|\A |[ ]\Z|\A[*&!|>%@`:]|\A-(?: |\Z)|[ ]-\Z|\A(?:---|\.\.\.)"
)

# A value of exactly one of these changes more than the characters: "" makes
# `[${A}, b]` a syntax error and `${A}: v` a null key; `<<` is a merge key;
# PyYAML's safe_load fails on a plain `=` ("tag:yaml.org,2002:value").
_NOT_INERT_VALUES = frozenset({"", "<<", "="})

# YAML limits implicit (`key: value`) keys to 1024 characters.
_MAX_INERT_LENGTH = 1024


@functools.lru_cache(maxsize=8192)  # the same few values recur in every file
def is_inert(value: str) -> bool:
    """True when `value` can be pasted as text into ANY YAML position (plain,
    single- or double-quoted scalar, block scalar, comment, mapping key, flow
    collection) and still land as exactly these characters inside the scalar
    it was pasted into, without changing the YAML structure.

    Used to decide whether plain text substitution of a file is safe (fast
    path) or the renderer must substitute scalar by scalar.  Most real values
    ("3", "registry.k8s.io/pause:3.10", "100m", "my-namespace",
    "10.244.0.0/16", "a b") are inert; how the scalar's type is resolved
    ("3" is an int in `replicas: ${R}`) is the same as with envsubst and is
    not this function's concern.

    Parameters:
        value: the text a reference would insert.

    Returns:
        False for: newline, CR, tab, other control characters and YAML line
        breaks (\\x85, \\u2028, \\u2029) or non-printables (surrogates, BOM);
        any of `"` `'` `\\` `#` `,` `[` `]` `{` `}` `?`; `: ` or a trailing
        `:`; a leading or trailing space; a leading `*` `&` `!` `|` `>` `%`
        `@` `` ` `` `:`; `-` alone or followed by a space; a trailing ` -`
        (yaml-rs cannot read `[a -]`); a `---` or `...`
        prefix; exactly "", "<<" or "="; more than 1024 characters.
        True otherwise.
    """
    return (
        len(value) <= _MAX_INERT_LENGTH
        and value not in _NOT_INERT_VALUES
        and _NOT_INERT.search(value) is None
    )

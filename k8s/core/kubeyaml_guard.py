"""The fast path's guard: whether yaml-rs (YAML 1.2) surely reads a text as kubectl does.

Why apart: the guard is a pile of patterns with one job and its own reasoning; it decides
only whether the fast path may be tried, never what a value is.

Contract: `is_fast(text)` is True only if nothing in `text` could read differently in
yaml-rs than in go-yaml v2 (YAML 1.1 scalars, tags, anchors, merges, flow oddities, empty
block scalars, tabs and control characters, excessive depth ...).  It may say False for a
safe text (the slow path then runs, merely slower), never True for an unsafe one.
"""

from __future__ import annotations

import re

import re2


# A plain scalar starts at the text's start, after "\n" + indentation (+ "- "), ": ", "[",
# "{" or ","; `_TOKEN` tells whether it may read differently in yaml-rs (YAML 1.2) or be a
# non-string key.  It may over-match (the slow path then runs), never under-match.
# The patterns are RE2's: one pass of a finite automaton over the text, whatever the number
# of lines, where Python's re tried every line start and every ": " in turn (3 times slower).
# A search only asks whether a match exists, so what follows a token is matched, not
# looked ahead at. A space is only ' ': a tab or a control character is unsafe by itself.
_END = r"(?: *(?:[\r\n,\]}#:]|\z))"  # the token is the whole plain scalar (or a key)
_NUMBER = (r"0[0-9xXoObB_]"  # 0644 0x1F 0o17 0b101 09
           # 1_000 1e3 1.5e3 1.0 2., number keys (8080:, 1.5:), digits enough for a float
           # to come out integral (1234567.00000001), beyond int64
           rf"|[0-9]+(?:[_eE]|\.[0-9]*[eE_]|\.0*{_END}|(?:\.[0-9]*)? *:(?:[\s,\]}}]|\z)|\.[0-9]{{8}})"
           r"|[0-9]{7,}\.|[0-9]{19}")
_DOT = r"\.[0-9_iInN.]|_[0-9_.]"  # .5 .inf .nan ... _1 ._5 (yaml-rs drops '_' in numbers)
# After `|` or `>`, what is not a block scalar's header ([-+]? spaces, a comment, a line
# break): yaml-rs reads `|` in a flow as text; _empty_block_scalar checks the block scalars.
_NO_HEADER = "|".join([
    r"[-+] *(?:#[^\r\n]*)?(?:\r(?:[^\n]|\z)|\z)", r"[-+] *[^ #\r\n]",  # with a chomping sign
    r" *(?:#[^\r\n]*)?(?:\r(?:[^\n]|\z)|\z)", r"[^-+ #\r\n]", r" +[^ #\r\n]"])  # without
_TOKEN = "|".join([
    _NUMBER, rf"-(?:{_DOT}|{_NUMBER})", r"\+[._0-9]", _DOT,  # +5 +.5
    rf"[yY](?:[eE][sS])?{_END}", rf"[nN](?:[oO]?{_END}|[uU][lL][lL] *:)", rf"[oO](?:[nN]|[fF][fF]){_END}",
    r"[tT][rR][uU][eE] *:", r"[fF][aA][lL][sS][eE] *:", r"~ *:",  # YAML 1.1 booleans, non-string keys
    # tags, anchors, aliases, merges, complex or empty keys, a leading ':' in a flow, reserved
    # indicators, directives
    r"[!&*?:%@`]", rf"[|>](?:{_NO_HEADER})", "<<"])
# A double-quoted scalar that ends right before `:x` (`"a":b`), which yaml-rs reads as a
# key and go-yaml rejects. A line is read as text and pairs of `"`: unsafe where the `"`
# before `:x` closes a pair; where one that opens a pair starts no scalar (after plain text,
# a closed pair, or a `-?:` without a space: it is text, and the pairs after it are off);
# where the quotes after it are even (odd in all); where a `'` or `#` before it or a `\`
# on its line makes pairs uncertain. `[":8080"]` is no such thing.
_TEXT = r'[^"\n]'
_PAIRS = rf'(?:\A|\n){_TEXT}*(?:"{_TEXT}*"{_TEXT}*)*'  # from a line's start, an even number of quotes
_CLOSING_QUOTE_COLON = [
    rf'{_PAIRS}"{_TEXT}*":[^ \r\n]',
    rf'{_PAIRS}(?:[^ \n"\[{{,\-?:] *|[\-?:]|"{_TEXT}*" *)"(?:[^\n]*")?:[^ \r\n]',
    rf'":(?:[^ \r\n"]{_TEXT}*|"{_TEXT}*"{_TEXT}*)(?:"{_TEXT}*"{_TEXT}*)*(?:\n|\z)',
    r'(?:\A|\n)[^\n]*[\'#\\][^\n]*":[^ \r\n]', r'":(?:[^ \r\n][^\n]*)?\\']
_UNSAFE = re2.compile("|".join([
    rf"(?:\A|\n) *(?:- +)* *(?:{_TOKEN}|\.\.\.)",  # "- " only follows indentation; ... ends a document
    rf"(?:: |[,\[{{]) *(?:{_TOKEN})",
    r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]",  # tabs, control characters (libyaml rejects some yaml-rs takes)
    # nesting deeper than any manifest: yaml-rs overflows its stack near 20000 levels, the
    # slow path refuses more than kubeyaml_decoder allows
    r"(?:\A|\n)[ -]{1000}",
    r"\r(?:[^\n]|\z)",  # a lone CR
    r"':[^ \r\n]",  # 'a':b
    *_CLOSING_QUOTE_COLON,
    # go-yaml v2 rejects the escape \/ and a surrogate's (\ud83d\ude00), which yaml-rs decodes
    r"\\/|\\u[dD][89a-fA-F]|\\U0000[dD][89a-fA-F]"]))

# A flow collection must close on its line, at most two deep, hold plain text (no '?'),
# quoted strings and ': ', have `key: value` entries if a mapping, and not be a key: yaml-rs
# reads multi-line ones, `[a:]`, `[a ::]`, `{1}` (an int key) ... its own way. (Python's re:
# RE2 has no look-ahead to say "not followed by".)
_Q = r"""|"[^"\\\n]*+(?:\\.[^"\\\n]*+)*+"|'[^'\n]*+(?:''[^'\n]*+)*+'"""
_KEY = r"""(?:[^\[\]{}"'\n\r:#,?]++""" + _Q + ")++"
_VALUE = r"""[^\[\]{}"'\n\r:#,?]++|:(?= )""" + _Q


def _flow(nest):
    """Patterns for what follows a `[` and a `{`; `nest` may occur in values."""
    value = f"(?:{_VALUE}{'|' + nest if nest else ''})*+"
    return rf"{value}(?:,{value})*+\]", rf"(?: *+{_KEY}: {value}(?:, *+{_KEY}: {value})*+,?)? *+}}"


_FLOW = _flow("|".join(re.escape(o) + rest for o, rest in zip("[{", _flow(""))))
# (the character that opens it, the pattern of one that is not well formed)
_BAD_FLOWS = [(o, re.compile(rf"{re.escape(o)}(?!{flow}(?! *:))")) for o, flow in zip("[{", _FLOW)]


def is_fast(text) -> bool:
    """Whether `load_all` may read `text` with yaml-rs: nothing YAML 1.2 reads differently."""
    # Beyond ASCII also a BOM and NEL/LS/PS (line breaks in YAML 1.1 only): isprintable()
    # is False for those and for every space but ' '.
    if not text.isascii() and not text.replace("\r", "").replace("\n", "").isprintable():
        return False
    return not (_UNSAFE.search(text.encode())
                or any(o in text and p.search(text) for o, p in _BAD_FLOWS)
                or _empty_block_scalar(text))


# What opens a block scalar after ": " or "- ": one pattern per indicator, as a literal
# first character lets re skip ahead ten times faster than the class [|>].
_BLOCK_HEADERS = [(c, re.compile(re.escape(c) + r"[-+]? *+(?:#[^\r\n]*+)?\r?\n")) for c in "|>"]
_LEAD = re.compile(r" *+(?:- +)*")


def _empty_block_scalar(text):
    """Whether a block scalar might be empty: yaml-rs reads an empty `|` as "\n", go-yaml as "".

    A block scalar is surely not empty when the line after its header is not blank and is
    indented deeper than the node that holds it (a `key:` or a `- `) starts.
    """
    for match in (m for c, p in _BLOCK_HEADERS if c in text for m in p.finditer(text)):
        start = text.rfind("\n", 0, match.start()) + 1
        before = text[start:match.start()].rstrip(" ")  # any number of spaces, or indentation
        if before and before[-1] not in ":-":
            continue  # inside a scalar, not a block scalar's header
        holder = _LEAD.match(text, start).end() - start
        end = text.find("\n", match.end())
        following = text[match.end():end if end >= 0 else len(text)].rstrip("\r")
        if not following.strip(" ") or len(following) - len(following.lstrip(" ")) <= holder:
            return True
    return False

"""go-yaml v2's scalar resolution and the JSON round trip kubectl puts every value through.

Why apart: these are pure functions of a scalar's text (and tag), with no parser in sight,
so both the slow decoder and the stream reader share them and they can be read against
go-yaml v2 resolve.go and encoding/json line by line.

Contract:
- `_resolve(value, tag)` gives (resolved tag, Go value) exactly as resolve.go does; a
  timestamp stays text, as decode.go keeps it.
- `_json_value(v)` is that Go value after json.Marshal and a PreserveInts read, and
  `_json_key(v)` is convertToJSONableObject's string for a map key; both raise ValueError
  exactly where kubectl fails.
- The tag constants (`_T`, `_STR`, `_INT`, ...) and `_INT64` are the names the other
  kubeyaml modules match tags and int64 bounds with.
"""

from __future__ import annotations

import decimal
import math
import re
import struct

# --- go-yaml v2 resolve.go ----------------------------------------------------------------

_T = "tag:yaml.org,2002:"
_STR, _BOOL, _INT, _FLOAT, _NULL, _TIMESTAMP, _BINARY, _MERGE = (
    _T + t for t in ("str", "bool", "int", "float", "null", "timestamp", "binary", "merge"))
_RESOLVABLE = {"", _STR, _BOOL, _INT, _FLOAT, _NULL, _TIMESTAMP}  # resolvableTag()
_INT64 = 1 << 63
# resolveTable: what the first character says a plain scalar may be
_HINT = {**dict.fromkeys("0123456789", "D"), "+": "S", "-": "S", ".": ".",
         **dict.fromkeys("yYnNtTfFoO~", "M")}
_WORDS = {"": (_NULL, None)}  # resolveMap
for _tag, _value, _words in [
        (_BOOL, True, "y Y yes Yes YES true True TRUE on On ON"),
        (_BOOL, False, "n N no No NO false False FALSE off Off OFF"),
        (_NULL, None, "~ null Null NULL"),
        (_FLOAT, math.nan, ".nan .NaN .NAN"),
        (_FLOAT, math.inf, ".inf .Inf .INF +.inf +.Inf +.INF"),
        (_FLOAT, -math.inf, "-.inf -.Inf -.INF")]:
    _WORDS.update(dict.fromkeys(_words.split(), (_tag, _value)))
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")  # yamlStyleFloat
# strconv.ParseUint(s, 0, 64) (Go atoi.go): 0b/0o/0x prefixes; a bare leading 0 means octal
_GO_UINT = re.compile(r"0[bB]([01]+)|0[oO]([0-7]+)|0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9][0-9]*)")
# strconv.ParseFloat on a '.'-led scalar (atof.go readFloat, underscoreOK)
_DOT_FLOAT = re.compile(r"\.[0-9_]+(?:[eE][-+]?[0-9][0-9_]*)?")
_BAD_UNDERSCORE = re.compile(r"[^0-9]_|_[^0-9]|_$")
# parseTimestamp's layouts: 2006-1-2T15:4:5.999999999Z07:00, "2006-1-2 15:4:5.999999999", 2006-1-2
_TIMESTAMP_RE = re.compile(r"(\d{4})-(\d\d?)-(\d\d?)(?:[Tt](\d\d?):(\d\d?):(\d\d?)(?:[.,]\d+)?"
                        r"(?:Z|[-+]\d\d:\d\d)| (\d\d?):(\d\d?):(\d\d?)(?:[.,]\d+)?)?")
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _is_timestamp(s):
    if not (m := _TIMESTAMP_RE.fullmatch(s)):
        return False
    y, mo, d, *hms = (int(g or 0) for g in m.groups())
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    return (1 <= mo <= 12 and 1 <= d <= _MONTH_DAYS[mo - 1] - (mo == 2 and not leap)
            and all(v < (24 if i % 3 == 0 else 60) for i, v in enumerate(hms)))


def _go_int(plain):
    """strconv.ParseInt(plain, 0, 64), else ParseUint(plain, 0, 64) (a uint64 is >= 2**63)."""
    sign = plain[:1] if plain[:1] in ("+", "-") else ""
    if not (m := _GO_UINT.fullmatch(plain[len(sign):])):
        return None
    b, o, x, octal, dec = m.groups()
    try:
        u = int(b, 2) if b else int(o, 8) if o else int(x, 16) if x else int(octal or dec, 8 if octal else 10)
    except ValueError:  # beyond Python's 4300 digits: far beyond 64 bits too
        return None
    if sign == "-":
        return -u if u <= _INT64 else None
    return u if u < _INT64 or (not sign and u < 1 << 64) else None


def _float(s):
    f = float(s.replace("_", ""))
    return None if math.isinf(f) else f  # Go's ParseFloat fails on overflow


def _resolve(value, tag=""):
    """resolve(tag, in): (resolved tag, Go value) of a scalar; a timestamp stays text."""
    hint = _HINT.get(value[:1]) if value else "N"
    if hint and tag != _STR:
        if value in _WORDS:
            return _WORDS[value]
        if hint == "." and _DOT_FLOAT.fullmatch(value) and not _BAD_UNDERSCORE.search(value):
            if (f := _float(value)) is not None:
                return _FLOAT, f
        elif hint in "DS":
            if tag in ("", _TIMESTAMP) and _is_timestamp(value):
                return _TIMESTAMP, value  # decode.go scalar() keeps the string
            plain = value.replace("_", "")
            if (i := _go_int(plain)) is not None:
                return _INT, i
            if _YAML_FLOAT.fullmatch(plain) and (f := _float(plain)) is not None:
                return _FLOAT, f
            if (i := _go_binary(plain)) is not None:
                return _INT, i
    return _STR, value


_SIGNED_BINARY = re.compile(r"([-+]?)([01]+)")


def _go_binary(plain):
    """resolve.go's last tries: "0b" + ParseInt(rest, 2) (a sign after the prefix: 0b-101 is
    -5) or ParseUint(rest, 2), and "-0b" + ParseInt("-" + rest, 2); None where they fail."""
    if plain.startswith("0b") and (m := _SIGNED_BINARY.fullmatch(plain, 2)):
        v = int(m.group(2), 2)
        if m.group(1) == "-":
            return -v if v <= _INT64 else None
        return v if v < _INT64 or (not m.group(1) and v < 1 << 64) else None
    if plain.startswith("-0b") and (m := _SIGNED_BINARY.fullmatch(plain, 3)) and not m.group(1):
        v = int(m.group(2), 2)
        return -v if v <= _INT64 else None
    return None


# --- sigs.k8s.io/yaml yaml.go, encoding/json, sigs.k8s.io/json ------------------------------

def _json_value(v):
    """A Go scalar after json.Marshal and a PreserveInts read; ValueError where Marshal fails."""
    if type(v) is float:
        if not math.isfinite(v):
            word = ".nan" if math.isnan(v) else "-.inf" if v < 0 else ".inf"
            raise ValueError(f"{word} cannot be represented in JSON (kubectl: json: unsupported value)")
        # encode.go floatEncoder writes an integral |v| < 1e21 as its shortest digits, without
        # '.' or exponent (2**60 as 1152921504606847000); PreserveInts reads those as an int
        # when they fit int64
        if v.is_integer() and abs(v) < 1e21:
            digits = int(decimal.Decimal(repr(v)))
            if -_INT64 <= digits < _INT64:
                return digits
    elif type(v) is int and v >= _INT64:
        return float(v)  # a uint64 does not fit int64, so it is read back as a float
    return v


def _float32_g(f):
    """strconv.FormatFloat(f, 'g', -1, 32), as convertToJSONableObject writes a float key."""
    if math.isnan(f):
        return ".nan"
    try:
        f32 = struct.unpack("<f", struct.pack("<f", f))[0]
    except OverflowError:
        f32 = math.copysign(math.inf, f)
    if math.isinf(f32) or f32 == 0:
        return {math.inf: ".inf", -math.inf: "-.inf"}.get(f32, "-0" if math.copysign(1, f32) < 0 else "0")
    for p in range(1, 10):  # the shortest digits that read back as the same float32
        digits, exp = f"{abs(f32):.{p - 1}e}".split("e")
        if struct.unpack("<f", struct.pack("<f", float(f"{digits}e{exp}")))[0] == abs(f32):
            break
    digits, exp, sign = digits.replace(".", "").rstrip("0") or "0", int(exp), "-" if f32 < 0 else ""
    if exp < -4 or exp >= 6:  # ftoa.go: %e when shortest and exp < -4 || exp >= 6
        mantissa = digits[0] + ("." + digits[1:] if digits[1:] else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp < 0:
        return f"{sign}0.{'0' * (-exp - 1)}{digits}"
    return sign + digits[:exp + 1].ljust(exp + 1, "0") + ("." + digits[exp + 1:] if digits[exp + 1:] else "")


def _json_key(v):
    """convertToJSONableObject's string for a key; ValueError where it fails."""
    if type(v) is str:
        return v
    if type(v) is bool:
        return "true" if v else "false"
    if type(v) is int and v < _INT64:
        return str(v)
    if type(v) is float:
        return _float32_g(v)
    raise ValueError(f"unsupported map key {'null' if v is None else f'{v} (a uint64)'}")

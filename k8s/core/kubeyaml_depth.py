"""How deep a YAML text may nest, for both of kubeyaml's paths.

Apart from the slow decoder so that the fast path's guard can ask without loading PyYAML.
"""

import re

_MAX_DEPTH = 5000  # libyaml's recursive composer crashes near 20000 levels, go-yaml stops at 10000
_DEEP = re.compile(rf"\n[ -]{{{_MAX_DEPTH}}}")  # led by a literal "\n": a fast scan
_DEEP_FIRST = re.compile(rf"[ -]{{{_MAX_DEPTH}}}")


def _too_deep(text):
    """Whether a line is indented (or "- " nested) `_MAX_DEPTH` deep."""
    return bool(_DEEP.search(text) or _DEEP_FIRST.match(text))

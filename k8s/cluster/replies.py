"""Replies: every 2xx answer is checked before anyone reads it, and parsed once.

`check_reply` (called for every request, k8s.cluster.connection) raises one
BadReply line naming the server and request when an answer is not JSON, not an
object, or lacks the fields the toolkit reads: discovery documents, /version,
TokenRequest, server-side apply answers, LISTs and objects each have a spec of
those fields. `document(response)` gives the parsed object afterwards.
"""

import json
import re

from ..errors import UserError


class BadReply(UserError):
    """A 2xx answer the toolkit cannot use: not JSON, not an object, or without the
    fields it reads. Never retried: the same request gets the same answer."""


# The fields of each discovery document that are read (a spec as OBJECT below).
_RESOURCES = [{"resource": str, "responseKind?": {"kind?": str}, "scope?": str, "verbs?": [str]}]
SHAPES = {
    "APIGroupDiscoveryList": {"items": [{"metadata?": {"name?": str},
                                         "versions": [{"version": str, "resources?": _RESOURCES}]}]},
    "APIVersions": {"versions": [str]},
    "APIGroupList": {"groups": [{"name": str, "versions": [{"groupVersion": str, "version": str}],
                                 "preferredVersion?": {"groupVersion": str, "version": str}}]},
    "APIGroup": {"name": str, "versions": [{"groupVersion": str, "version": str}],
                 "preferredVersion?": {"groupVersion": str, "version": str}},
    "APIResourceList": {"groupVersion?": str, "resources": [{"name": str, "kind": str, "namespaced?": bool,
                                                             "verbs?": [str]}]},
}
PATHS = [  # discovery path -> the kinds that answer it
    (re.compile(r"^/api/?$"), ("APIVersions", "APIGroupDiscoveryList")),
    (re.compile(r"^/apis/?$"), ("APIGroupList", "APIGroupDiscoveryList")),
    (re.compile(r"^/apis/[^/]+/?$"), ("APIGroup",)),
    (re.compile(r"^/(api/v1|apis/[^/]+/[^/]+)/?$"), ("APIResourceList",)),
]
VERSION = {"major": str, "minor": str, "gitVersion": str}


def discovery_spec(path, document):
    """The spec a 2xx answer to GET `path` must meet if it is a discovery document, a
    text saying why it is the wrong document, or None for any other path."""
    if path.rstrip("/") == "/version":
        return VERSION
    for pattern, kinds in PATHS:
        if pattern.match(path):
            kind = document.get("kind")
            if kind not in kinds:
                what = f"a {kind}" if isinstance(kind, str) and kind else "a document without a kind"
                return f"the reply is {what}, not {' or '.join(f'an {k}' for k in kinds)}"
            return SHAPES[kind]
    return None


# Fields of an answer that the toolkit and the client read, so an answer without them is
# refused before either does (a spec: a type; {key: spec}, a key ending in "?" optional;
# [spec], a list of those, null read as empty).
OBJECT = {"kind": str, "metadata": {"name?": str, "managedFields?": [dict], "labels?": dict,
                                    "annotations?": dict}}
APPLIED = {"kind": str, "metadata": {"name": str, "managedFields": [dict]}}  # a server-side apply's answer
LISTED = {"kind": str, "metadata?": dict, "items": [{"metadata": {"name": str, "labels?": dict}}]}
BY_PATH = [  # (method, path pattern, spec) of requests whose answers are read further
    ("POST", re.compile(r"/serviceaccounts/[^/]+/token$"), {"kind": str, "status": {"token": str}}),
]


def check_reply(server, method, path, response, headers):
    """Raise BadReply unless the body of a 2xx answer is a JSON object with the fields read.

    The parsed document is kept on the response for `document`."""
    data = response.read() if hasattr(response, "read") and getattr(response, "data", None) is None \
        else response.data
    data = data or b""
    kind_of_body = f"{(_header(response, 'Content-Type') or 'no content type').split(';')[0]}, {len(data)} bytes"

    def bad(problem):
        return BadReply(f"{server} {method} {path}: {problem}")

    if not data.strip():
        raise bad(f"the reply is empty ({kind_of_body})")
    media = (_header(response, "Content-Type") or "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise bad(f"the reply is not JSON ({kind_of_body})")
    try:
        document = json.loads(data)
    except UnicodeDecodeError:
        raise bad(f"the reply is not UTF-8 text ({kind_of_body})") from None
    except ValueError as err:
        message, pos = getattr(err, "msg", str(err)), getattr(err, "pos", 0)
        cut = pos >= len(data.rstrip()) or message.startswith("Unterminated string")
        problem = "cut short" if cut else f"{message} at byte {pos}"
        raise bad(f"the reply is not valid JSON: {problem} ({kind_of_body})") from None
    except RecursionError:
        raise bad(f"the reply is nested too deeply ({kind_of_body})") from None
    if not isinstance(document, dict):
        raise bad(f"the reply is {_a(document)}, not a JSON object ({kind_of_body})")
    spec = discovery_spec(path, document) if method == "GET" else None
    if isinstance(spec, str):
        raise bad(spec)
    if spec is None:
        spec = next((s for m, p, s in BY_PATH if m == method and p.search(path)), None)
    if spec is None and path.startswith(("/api/", "/apis/")):
        applying = str((headers or {}).get("Content-Type", "")).startswith("application/apply-patch")
        name = (document.get("metadata") or {}).get("name") if isinstance(document.get("metadata"), dict) else None
        kind = document.get("kind")
        if applying:
            spec = APPLIED
        elif isinstance(kind, str) and kind.endswith("List") and not name:
            spec = LISTED
        elif kind == "Status":
            spec = {"kind": str}
        else:
            spec = OBJECT
    problem = _shape_problem(document, spec or {}, "")
    if problem:
        raise bad(problem)
    target = getattr(response, "response", response)  # the urllib3 response the dynamic client returns
    try:
        target._k8s_document = document
    except AttributeError:
        pass


def document(response):
    """The JSON object of an answer that `_check_reply` passed (parsed once)."""
    found = getattr(response, "_k8s_document", None)
    return found if found is not None else json.loads(response.data)


def _header(response, name):
    headers = getattr(response, "headers", None) or {}
    return headers.get(name) if hasattr(headers, "get") else None


def _a(value):
    """"a list", "a string", ... (JSON's words for a value's type)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    for kind, word in ((dict, "an object"), (list, "a list"), (str, "a string"), ((int, float), "a number")):
        if isinstance(value, kind):
            return word
    return type(value).__name__


def _shape_problem(value, spec, where):
    """What is wrong with `value` against `spec` (see OBJECT), or None."""
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            return f"the reply's {where} is {_a(value)}, not an object" if where else \
                f"the reply is {_a(value)}, not a JSON object"
        for key, inner in spec.items():
            optional = key.endswith("?")
            key = key.rstrip("?")
            at = f"{where}.{key}" if where else key
            if value.get(key) is None:
                if optional or (isinstance(inner, list) and key in value):
                    continue
                return f"the reply has no {at}"
            problem = _shape_problem(value[key], inner, at)
            if problem:
                return problem
        return None
    if isinstance(spec, list):
        if not isinstance(value, list):
            return f"the reply's {where} is {_a(value)}, not a list"
        for number, item in enumerate(value):
            problem = _shape_problem(item, spec[0], f"{where}[{number}]")
            if problem:
                return problem
        return None
    if not isinstance(value, spec) or (spec is not bool and isinstance(value, bool)):
        return f"the reply's {where} is {_a(value)}, not {_a(spec())}"
    return None

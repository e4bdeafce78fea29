"""The request handler of the stand-in: a subclass of kmock's ``KubernetesEmulator``.

What is kept from kmock:
  * the aiohttp request-handler protocol and the DSL: reactions that a test adds
    with ``emulator[...] << payload`` take precedence over the built-in behaviour;
  * ``emulator.requests``-style recording (kmock ``Request`` objects, when the DSL is used);
  * ``emulator.resources`` (kmock's ``ResourcesArray``) as the discovery registry,
    pre-loaded from kmock's bundled built-in discovery documents;
  * ``emulator.objects`` (kmock's ``ObjectsArray``) as the object store, so every
    stored object keeps its full version history (``objects[res, ns, name].history``).

What is replaced, and why:
  * URL parsing: kmock's parser crashes on ``GET /api/v1/namespaces`` and reads
    ``/api/v1/namespaces/foo`` as "namespace foo" rather than "the Namespace foo";
  * the write semantics: kmock merges dicts and knows nothing of resourceVersion,
    generation, server-side apply, managedFields, conflicts, dry-run or Status bodies;
  * discovery rendering: kmock renders the core groupVersion as "/v1" and picks
    a random preferred version; here it follows the real server;
  * kmock's fallback reactions are not registered at all (see ``__attrs_post_init__``).
"""

import asyncio
import base64
import dataclasses
import datetime
import fnmatch
import hashlib
import json
import logging
import random
import re
import string
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp.web
import attrs
import yaml
from kmock import KubernetesEmulator, KubernetesError, resource
from kmock._internal import apps, enums, rendering

from . import fields as F
from .catalog import Catalog, join_api_version, split_api_version
from .faults import Faults, RequestRecord, Rule

log = logging.getLogger(__name__)

PUBLIC_PATHS = {"/version", "/healthz", "/livez", "/readyz"}
REASONS = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
    409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests",
    500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
}
# metadata fields owned by the server: never taken from clients, never tracked in managedFields
SERVER_METADATA = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                   "managedFields", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"}
WORKLOADS = {("apps", "deployments"), ("apps", "statefulsets"), ("apps", "daemonsets"),
             ("apps", "replicasets"), ("batch", "jobs")}
NS_KEY = resource("", "v1", "namespaces")
NODE_KEY = resource("", "v1", "nodes")
CRD_GROUP, CRD_PLURAL = "apiextensions.k8s.io", "customresourcedefinitions"
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class StatusError(Exception):
    """An error answered as a ``kind: Status`` body, as the real server does."""

    def __init__(self, code: int, message: str, details: dict[str, Any] | None = None, *,
                 reason: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason or REASONS.get(code, "Unknown")
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": self.message, "reason": self.reason}
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def not_found_path() -> StatusError:
    return StatusError(404, "the server could not find the requested resource", {})


class _DropConnection(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class Route:
    group: str
    version: str
    plural: str
    namespace: str | None
    name: str | None
    subresource: str | None


def parse_route(path: str) -> tuple[str, ...] | Route | None:
    """('apis',) | ('group', g) | ('version', g, v) | Route | None (not a Kubernetes API path)."""
    parts = [p for p in path.split("/") if p]
    if not parts or parts[0] not in ("api", "apis"):
        return None
    if parts[0] == "api":
        group, rest = "", parts[1:]
        if not rest:
            return ("group", "")
    else:
        if len(parts) == 1:
            return ("apis",)
        group, rest = parts[1], parts[2:]
        if not rest:
            return ("group", group)
    version, rest = rest[0], rest[1:]
    if not rest:
        return ("version", group, version)
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3 and not (group == "" and len(rest) == 3
                                                          and rest[2] in ("status", "finalize")):
        namespace, rest = rest[1], rest[2:]
    return Route(group, version, rest[0], namespace, rest[1] if len(rest) > 1 else None,
                 "/".join(rest[2:]) or None)


@dataclasses.dataclass
class Target:
    """A resolved resource request: what is served (group/version) and where it is stored."""
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    storage: resource
    has_status: bool
    has_generation: bool
    subresource: str | None = None

    @property
    def api_version(self) -> str:
        return join_api_version(self.group, self.version)

    @property
    def storage_api_version(self) -> str:
        return join_api_version(self.storage.group, self.storage.version)

    @property
    def qualified(self) -> str:  # as in messages: 'deployments.apps "web" not found'
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def kind_qualified(self) -> str:  # as in Invalid messages: 'Deployment.apps "web" is invalid'
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def details(self, name: str | None, **extra: Any) -> dict[str, Any]:
        details: dict[str, Any] = {"name": name} if name else {}
        if self.group:
            details["group"] = self.group
        details["kind"] = self.plural
        details.update(extra)
        return details


@dataclasses.dataclass
class Entry:
    """One managedFields entry, with the fields as a set of paths."""
    manager: str
    operation: str
    subresource: str | None
    api_version: str
    paths: set[F.Path]
    time: str | None = None
    original: frozenset[F.Path] | None = None  # None = a new entry

    @classmethod
    def load(cls, obj: dict[str, Any]) -> list["Entry"]:
        entries = []
        for mf in obj.get("metadata", {}).get("managedFields") or []:
            paths = F.paths_from_fields_v1(mf.get("fieldsV1") or {})
            entries.append(cls(mf.get("manager", ""), mf.get("operation", "Update"), mf.get("subresource"),
                               mf.get("apiVersion", ""), set(paths), mf.get("time"), frozenset(paths)))
        return entries

    def dump(self) -> dict[str, Any]:
        entry = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version,
                 "time": self.time, "fieldsType": "FieldsV1", "fieldsV1": F.fields_v1(self.paths)}
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


def find_entry(entries: list[Entry], manager: str, operation: str, subresource: str | None) -> Entry | None:
    for entry in entries:
        if (entry.manager, entry.operation, entry.subresource) == (manager, operation, subresource):
            return entry
    return None


def take_ownership(entries: list[Entry], manager: str, operation: str, subresource: str | None,
                   api_version: str, paths: set[F.Path]) -> None:
    """An Update-like write: the writer owns what it changed; the others lose those fields."""
    if not paths:
        return
    mine = find_entry(entries, manager, operation, subresource)
    if mine is None:
        mine = Entry(manager, operation, subresource, api_version, set())
        entries.append(mine)
    mine.paths |= paths
    mine.api_version = api_version
    for other in entries:
        if other is not mine:
            other.paths = {q for q in other.paths if not any(q[:len(p)] == p for p in paths)}


def parse_body(body: bytes, content_type: str | None, *, yaml_ok: bool = False) -> Any:
    if not body:
        return None
    text = body.decode("utf-8")
    try:
        return json.loads(text)
    except ValueError:
        if not yaml_ok:
            raise
    return yaml.safe_load(text)


def _quiet_body(body: bytes, content_type: str | None) -> Any:
    try:
        return parse_body(body, content_type, yaml_ok=True)
    except Exception:
        return body.decode("utf-8", errors="replace")


def _omit_zero(status: dict[str, Any]) -> dict[str, Any]:
    """Status integers are omitempty in the real API: 0 is absent."""
    return {k: v for k, v in status.items() if v != 0 or k == "observedGeneration"}


@attrs.define(kw_only=True, slots=False)
class ApiServerEmulator(KubernetesEmulator):
    """A kube-apiserver stand-in (see the package docstring for the public surface)."""

    version: str = "1.31.2"
    users: dict[str, str] = attrs.field(factory=dict)  # user name -> bearer token
    check_tokens: bool = False
    controller_delay: float = 0.05
    crd_delay: float = 0.05
    namespace_active_delay: float = 0.0
    namespace_delete_delay: float = 0.05
    nodes: int = 1
    system_namespaces: tuple[str, ...] = ("default", "kube-system", "kube-public", "kube-node-lease")

    def __attrs_post_init__(self) -> None:
        # Deliberately NOT calling super().__attrs_post_init__(): it registers kmock's fallback
        # reactions (simplistic CRUD and discovery). Here, only reactions that a test adds via
        # the kmock DSL are consulted first; everything else is served by _dispatch() below.
        self.catalog = Catalog(self.resources)
        self.catalog.load_builtin()
        self.faults = Faults()
        self.mutex = threading.RLock()
        self.log: list[RequestRecord] = []
        self.internal_errors: list[BaseException] = []
        self.rules: list[Rule] = []
        self.authorizer: Callable[..., bool] | None = None
        self.stalled: list[tuple[str, str, str]] = []  # (kind, namespace pattern, name pattern)
        self._rv = 0
        self._events: list[tuple[int, str, resource, dict[str, Any]]] = []
        self._waiters: set[asyncio.Event] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._stopping = False
        self._ip_counter = 10
        self.server_address = "127.0.0.1"

    # == lifecycle ==================================================================================

    def start(self, loop: asyncio.AbstractEventLoop, server_address: str) -> None:
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self.server_address = server_address
        with self.mutex:
            for ns in self.system_namespaces:
                self.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                          manager="kube-apiserver", status={"phase": "Active"})
            for i in range(1, self.nodes + 1):
                self.seed_node(f"node-{i}")

    def stop(self) -> None:
        self._stopping = True
        for timer in list(self._timers):
            timer.cancel()
        self._timers.clear()
        self._wake()

    def _schedule(self, delay: float, fn: Callable[..., None], *args: Any) -> None:
        if self._loop is None or self._stopping:
            return
        if threading.get_ident() != self._loop_thread:
            self._loop.call_soon_threadsafe(self._schedule, delay, fn, *args)
            return

        def run() -> None:
            self._timers.discard(handle)
            if self._stopping:
                return
            with self.mutex:
                try:
                    fn(*args)
                except Exception as e:  # a bug in the stand-in: surfaced at exit by ApiServer
                    log.exception("controller %s failed", fn.__name__)
                    self.internal_errors.append(e)

        handle = self._loop.call_later(delay, run)
        self._timers.add(handle)

    def _wake(self) -> None:
        if self._loop is None:
            return
        if threading.get_ident() != self._loop_thread:
            try:
                self._loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # loop closed
                pass
            return
        for waiter in self._waiters:
            waiter.set()

    # == HTTP entry point ==========================================================================

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        body = await raw.read()
        content_type = raw.headers.get("Content-Type")
        record = RequestRecord(id=0, method=raw.method.upper(), path=raw.path, query=dict(raw.query),
                               content_type=content_type, headers=dict(raw.headers),
                               body=_quiet_body(body, content_type))
        with self.mutex:
            record.id = len(self.log)
            self.log.append(record)
        started = time.monotonic()
        try:
            response = await self._process(raw, body, record)
        except _DropConnection:
            record.duration = time.monotonic() - started
            if raw.transport is not None:
                raw.transport.close()
            raise asyncio.CancelledError()  # aiohttp: "premature client disconnection", no response
        except StatusError as e:
            response = self._status_response(e)
        except KubernetesError as e:  # raised by a kmock DSL reaction of the test
            response = self._status_response(StatusError(e.status, e.message or "", reason=e.reason))
        except Exception as e:
            log.exception("stand-in failure on %s %s", raw.method, raw.path_qs)
            self.internal_errors.append(e)
            response = self._status_response(StatusError(500, f"stand-in failure: {e!r}",
                                                         {"causes": [{"message": traceback.format_exc()}]}))
        record.status = response.status
        record.duration = time.monotonic() - started
        return response

    async def _process(self, raw: aiohttp.web.BaseRequest, body: bytes,
                       record: RequestRecord) -> aiohttp.web.StreamResponse:
        delay = sum(f.seconds for f in self.faults.take("latency", record))
        if delay:
            await asyncio.sleep(delay)
        if self.faults.take("drop", record, first=True):
            record.fault = "drop"
            raise _DropConnection()
        errors = self.faults.take("error", record, first=True)
        if errors:
            record.fault = "error"
            raise self._fault_error(errors[0])

        user = self._authenticate(raw)
        record.user = user
        route = parse_route(raw.path)

        if self._payloads:  # reactions added by the test through the kmock DSL win
            try:
                return await apps.RawHandler._handle(self, self._kmock_request(raw, body, record, route))
            except NotImplementedError:
                pass
        return await self._dispatch(raw, body, record, user, route)

    def _kmock_request(self, raw: aiohttp.web.BaseRequest, body: bytes, record: RequestRecord,
                       route: Any) -> rendering.Request:
        action = None
        if isinstance(route, Route):
            if record.method == "GET":
                action = enums.action.WATCH if record.is_watch else (
                    enums.action.FETCH if route.name else enums.action.LIST)
            elif record.method == "POST" and route.name is None:
                action = enums.action.CREATE
            elif record.method in ("PATCH", "PUT"):
                action = enums.action.UPDATE
            elif record.method == "DELETE":
                action = enums.action.DELETE
        request = rendering.Request(
            id=len(self._requests), raw_request=raw, url=raw.url, method=raw.method,
            params=dict(raw.query), headers=dict(raw.headers), cookies=dict(raw.cookies),
            body=body, text=body.decode("utf-8", errors="replace"),
            data=record.body if isinstance(record.body, (dict, list)) else None,
            action=action,
            resource=resource(route.group, route.version, route.plural) if isinstance(route, Route) else None,
            namespace=route.namespace if isinstance(route, Route) else None,
            name=route.name if isinstance(route, Route) else None,
            subresource=route.subresource if isinstance(route, Route) else None,
        )
        self._requests.append(request)
        return request

    def _authenticate(self, raw: aiohttp.web.BaseRequest) -> str | None:
        header = raw.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else None
        user = next((u for u, t in self.users.items() if token is not None and t == token), None)
        if self.check_tokens and user is None and raw.path not in PUBLIC_PATHS:
            raise StatusError(401, "Unauthorized")
        return user

    def _fault_error(self, fault: Any) -> StatusError:
        code = fault.status
        message = fault.message or {
            429: "Too many requests, please try again later.",
            503: "the server is currently unable to handle the request",
        }.get(code, "Internal error occurred: injected fault" if code >= 500 else "injected fault")
        details: dict[str, Any] | None = None
        headers = {}
        if fault.retry_after is not None:
            details = {"retryAfterSeconds": fault.retry_after}
            headers["Retry-After"] = str(fault.retry_after)
        elif code == 500:
            details = {"causes": [{"message": "injected fault"}]}
        return StatusError(code, message, details, reason=fault.reason, headers=headers)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> aiohttp.web.Response:
        all_headers = {"Content-Type": "application/json", "Cache-Control": "no-cache, private",
                       "Audit-Id": str(uuid.uuid4())}
        all_headers.update(headers or {})
        return aiohttp.web.Response(status=status, body=json.dumps(payload).encode(), headers=all_headers)

    def _status_response(self, error: StatusError) -> aiohttp.web.Response:
        return self._json(error.code, error.status(), error.headers)

    # == routing ===================================================================================

    async def _dispatch(self, raw: aiohttp.web.BaseRequest, body: bytes, record: RequestRecord,
                        user: str | None, route: Any) -> aiohttp.web.StreamResponse:
        method, path = record.method, raw.path
        if path in ("/healthz", "/livez", "/readyz"):
            return aiohttp.web.Response(text="ok", content_type="text/plain")
        if not isinstance(route, Route):
            if method != "GET":
                raise StatusError(405, "the server does not allow this method on the requested resource", {})
            with self.mutex:
                return self._json(200, self._discovery(path, route))

        target = self._resolve(route)
        verb = self._verb(method, route, record)
        self._authorize(user, verb, route)
        if verb == "watch":
            return await self._watch(raw, target, route, record.query)
        with self.mutex:
            code, payload = self._serve(method, target, route, body, record.query, raw.headers)
        return self._json(code, payload)

    def _discovery(self, path: str, route: Any) -> dict[str, Any]:
        if path == "/version":
            return self.version_info()
        if path in ("", "/"):
            paths = {"/api", "/api/v1", "/apis", "/version", "/healthz", "/livez", "/readyz"}
            for group in self.catalog.groups():
                paths.add(f"/apis/{group}")
                paths |= {f"/apis/{group}/{v}" for v in self.catalog.versions_of(group)}
            return {"paths": sorted(paths)}
        if route == ("apis",):
            return self.catalog.api_group_list()
        if route == ("group", ""):
            return self.catalog.api_versions(self.server_address)
        if route is not None and route[0] == "group":
            doc = self.catalog.api_group(route[1])
            if doc is not None:
                return doc
        if route is not None and route[0] == "version":
            doc = self.catalog.api_resource_list(route[1], route[2])
            if doc is not None:
                return doc
        raise not_found_path()

    def version_info(self) -> dict[str, Any]:
        version = self.version.lstrip("v")
        major, minor = version.split(".")[:2]
        return {"major": major, "minor": minor, "gitVersion": f"v{version}",
                "gitCommit": hashlib.sha1(version.encode()).hexdigest(),
                "gitTreeState": "clean", "buildDate": "2024-10-22T20:28:14Z", "goVersion": "go1.22.8",
                "compiler": "gc", "platform": "linux/amd64"}

    def _resolve(self, route: Route) -> Target:
        with self.mutex:
            info = self.catalog.info(route.group, route.version, route.plural)
            if info is None:
                raise not_found_path()
            namespaced = bool(info.namespaced)
            if (not namespaced and route.namespace is not None) or \
                    (namespaced and route.name is not None and route.namespace is None):
                raise not_found_path()
            if route.subresource is not None and route.subresource not in info.subresources:
                raise not_found_path()
            if route.subresource not in (None, "status"):
                raise StatusError(404, f"the stand-in does not serve the {route.subresource} subresource", {})
            storage = self.catalog.storage_key(route.group, route.plural)
            assert storage is not None
            return Target(route.group, route.version, route.plural, info.kind or route.plural, namespaced,
                          storage, "status" in info.subresources,
                          self.catalog.has_generation(route.group, route.plural), route.subresource)

    def _target_for(self, storage: resource) -> Target:
        info = self.catalog.any_info(storage.group, storage.plural)
        if info is None:  # a CR whose CRD is gone: good enough for the final bookkeeping
            return Target(storage.group, storage.version, storage.plural, storage.plural, True, storage,
                          True, True)
        return Target(storage.group, storage.version, storage.plural, info.kind or storage.plural,
                      bool(info.namespaced), storage, "status" in info.subresources,
                      self.catalog.has_generation(storage.group, storage.plural))

    @staticmethod
    def _verb(method: str, route: Route, record: RequestRecord) -> str:
        if method == "GET":
            return "watch" if record.is_watch else ("get" if route.name else "list")
        if method == "DELETE":
            return "delete" if route.name else "deletecollection"
        return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())

    def _authorize(self, user: str | None, verb: str, route: Route) -> None:
        who = user or "system:anonymous"
        allowed = True
        if self.authorizer is not None:
            allowed = bool(self.authorizer(who, verb, route))
        if any(rule.denies(who, verb, route.group, route.plural, route.subresource, route.namespace)
               for rule in list(self.rules)):
            allowed = False
        if not allowed:
            res = f"{route.plural}/{route.subresource}" if route.subresource else route.plural
            qualified = f"{route.plural}.{route.group}" if route.group else route.plural
            subject = f'{qualified} "{route.name}"' if route.name else qualified
            scope = f'in the namespace "{route.namespace}"' if route.namespace else "at the cluster scope"
            details = {"name": route.name} if route.name else {}
            if route.group:
                details["group"] = route.group
            details["kind"] = route.plural
            raise StatusError(403, f'{subject} is forbidden: User "{who}" cannot {verb} resource "{res}" '
                                   f'in API group "{route.group}" {scope}', details)

    def _serve(self, method: str, t: Target, route: Route, body: bytes, params: dict[str, str],
               headers: Any) -> tuple[int, dict[str, Any]]:
        content_type = (headers.get("Content-Type") or "application/json").split(";")[0].strip().lower()
        manager = params.get("fieldManager") or (headers.get("User-Agent") or "unknown").split("/")[0]
        dry_run = "dryRun" in params
        if route.name is None:
            if method == "GET":
                return 200, self._list(t, route, params)
            if method == "POST":
                return self._create(t, route, self._json_body(body), manager, dry_run)
            if method == "DELETE":
                return 200, self._delete_collection(t, route, params, dry_run)
        else:
            if method == "GET":
                return 200, self._render(self._get(t, route), t)
            if method == "PUT":
                return self._replace(t, route, self._json_body(body), manager, dry_run)
            if method == "PATCH":
                if content_type == "application/apply-patch+yaml":
                    return self._apply(t, route, body, params, dry_run)
                return self._patch(t, route, body, content_type, manager, dry_run)
            if method == "DELETE":
                return 200, self._delete(t, route, params, body, dry_run)
        raise StatusError(405, "the server does not allow this method on the requested resource", {})

    @staticmethod
    def _json_body(body: bytes) -> dict[str, Any]:
        try:
            data = parse_body(body, "application/json")
        except ValueError as e:
            raise StatusError(400, f"the object provided is unrecognized: {e}") from None
        if not isinstance(data, dict):
            raise StatusError(400, "the object provided is unrecognized (expected a JSON object)")
        return data

    # == storage ===================================================================================

    def _key(self, t: Target, namespace: str | None, name: str) -> tuple[resource, str | None, str]:
        return (t.storage, namespace if t.namespaced else None, name)

    def _load(self, key: tuple[resource, str | None, str]) -> dict[str, Any] | None:
        if key in self._objects:
            obj = self._objects[key]
            if not obj.deleted:
                return F.clone(obj.raw)
        return None

    def _store(self, key: tuple[resource, str | None, str], obj: dict[str, Any]) -> None:
        if key in self._objects:
            self._objects[key].history.append(F.clone(obj))
        else:
            self._objects[key] = F.clone(obj)

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _emit(self, event_type: str, storage: resource, obj: dict[str, Any]) -> None:
        self._events.append((int(obj["metadata"]["resourceVersion"]), event_type, storage, F.clone(obj)))
        self._wake()

    def _live(self, storage: resource, namespace: str | None = None) -> list[tuple[tuple, dict[str, Any]]]:
        found = []
        for key, obj in list(self._objects.items()):
            if key[0] == storage and not obj.deleted and (namespace is None or key[1] == namespace):
                found.append((key, obj.raw))
        found.sort(key=lambda kv: (kv[0][1] or "", kv[0][2]))
        return found

    def _render(self, obj: dict[str, Any], t: Target, *, in_list: bool = False) -> dict[str, Any]:
        obj = F.clone(obj)
        if in_list and not self.catalog.is_custom(t.group, t.plural):
            obj.pop("apiVersion", None)  # the real server does not set these on built-in list items
            obj.pop("kind", None)
            return obj
        rendered = {"apiVersion": t.api_version, "kind": t.kind}
        rendered.update({k: v for k, v in obj.items() if k not in ("apiVersion", "kind")})
        return rendered

    # == reads =====================================================================================

    def _get(self, t: Target, route: Route) -> dict[str, Any]:
        obj = self._load(self._key(t, route.namespace, route.name or ""))
        if obj is None:
            raise StatusError(404, f'{t.qualified} "{route.name}" not found', t.details(route.name))
        return obj

    def _selectors(self, params: dict[str, str]) -> tuple[Callable, Callable]:
        try:
            return F.label_selector(params.get("labelSelector")), F.field_selector(params.get("fieldSelector"))
        except F.SelectorError as e:
            raise StatusError(400, str(e)) from None

    def _select(self, t: Target, route: Route, params: dict[str, str]) -> list[tuple[tuple, dict[str, Any]]]:
        by_labels, by_fields = self._selectors(params)
        return [(key, obj) for key, obj in self._live(t.storage, route.namespace)
                if by_labels(obj.get("metadata", {}).get("labels") or {}) and by_fields(obj)]

    def _list(self, t: Target, route: Route, params: dict[str, str]) -> dict[str, Any]:
        items = [obj for _, obj in self._select(t, route, params)]
        metadata: dict[str, Any] = {"resourceVersion": str(self._rv)}
        offset = 0
        if params.get("continue"):
            try:
                offset = json.loads(base64.b64decode(params["continue"]))["offset"]
            except Exception:
                raise StatusError(400, "continue key is not valid") from None
        limit = int(params.get("limit") or 0)
        page = items[offset:offset + limit] if limit else items[offset:]
        if limit and offset + limit < len(items):
            metadata["continue"] = base64.b64encode(json.dumps({"offset": offset + limit}).encode()).decode()
            metadata["remainingItemCount"] = len(items) - offset - limit
        return {"kind": f"{t.kind}List", "apiVersion": t.api_version, "metadata": metadata,
                "items": [self._render(obj, t, in_list=True) for obj in page]}

    # == writes ====================================================================================

    def _field_view(self, obj: dict[str, Any], t: Target) -> dict[str, Any]:
        """The part of an object that managedFields track for this (sub)resource."""
        if t.subresource == "status":
            return {"status": F.clone(obj["status"])} if "status" in obj else {}
        view = {k: F.clone(v) for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
        meta = {k: F.clone(v) for k, v in (obj.get("metadata") or {}).items() if k not in SERVER_METADATA}
        if meta:
            view["metadata"] = meta
        if t.has_status:
            view.pop("status", None)
        return view

    def _admit_namespace(self, t: Target, namespace: str, name: str) -> None:
        ns = self._load((NS_KEY, None, namespace))
        if ns is None:
            raise StatusError(404, f'namespaces "{namespace}" not found', {"name": namespace, "kind": "namespaces"})
        if ns["metadata"].get("deletionTimestamp") or ns.get("status", {}).get("phase") == "Terminating":
            message = f"unable to create new content in namespace {namespace} because it is being terminated"
            raise StatusError(403, f'{t.qualified} "{name}" is forbidden: {message}', t.details(name, causes=[
                {"reason": "NamespaceTerminating", "message": f"namespace {namespace} is being terminated",
                 "field": "metadata.namespace"}]))

    def _check_precondition(self, t: Target, name: str, old: dict[str, Any], wanted: Any) -> None:
        if wanted and str(wanted) != old["metadata"].get("resourceVersion"):
            raise StatusError(409, f'Operation cannot be fulfilled on {t.qualified} "{name}": the object has '
                                   f'been modified; please apply your changes to the latest version and try again',
                              t.details(name))

    def _invalid(self, t: Target, name: str, field: str, value: Any, message: str, *,
                 cause: str = "FieldValueInvalid") -> StatusError:
        shown = '""' if value is F.MISSING else json.dumps(value)
        text = f"Invalid value: {shown}: {message}" if cause == "FieldValueInvalid" else message
        return StatusError(422, f'{t.kind_qualified} "{name}" is invalid: {field}: {text}',
                           {"name": name, **({"group": t.group} if t.group else {}), "kind": t.kind,
                            "causes": [{"reason": cause, "message": text, "field": field}]})

    def _validate(self, t: Target, obj: dict[str, Any]) -> None:
        name = obj["metadata"].get("name", "")
        if (t.storage.group, t.storage.plural) == ("", "namespaces"):
            pattern, what = DNS_LABEL, "a lowercase RFC 1123 label"
        elif t.storage.group == "rbac.authorization.k8s.io":
            pattern, what = re.compile(r"^[^/%]+$"), "a valid path segment name"
        else:
            pattern, what = DNS_SUBDOMAIN, "a lowercase RFC 1123 subdomain"
        if not pattern.match(name) or len(name) > 253:
            raise self._invalid(t, name, "metadata.name", name, f"must be {what} (the stand-in checks names)")
        if (t.storage.group, t.storage.plural) == (CRD_GROUP, CRD_PLURAL):
            spec = obj.get("spec") or {}
            names = spec.get("names") or {}
            expected = f"{names.get('plural')}.{spec.get('group')}"
            if name != expected:
                raise self._invalid(t, name, "metadata.name", name, f'must be spec.names.plural+"."+spec.group')
            if not names.get("kind") or not spec.get("versions"):
                raise self._invalid(t, name, "spec", F.MISSING, "Required value: names.kind and versions",
                                    cause="FieldValueRequired")
        fault = self.faults.take_invalid(F.clone(obj))
        if fault is not None:
            raise self._invalid(t, name, fault.field, F.get_path(obj, tuple(fault.field.split("."))),
                                fault.message or "injected validation failure")

    def _commit(self, t: Target, key: tuple, old: dict[str, Any] | None, new: dict[str, Any], *,
                entries: list[Entry], dry_run: bool, validate: bool = True,
                deletion: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """Finalize server-managed fields, validate, store when really changed; -> (HTTP code, object)."""
        now = now_rfc3339()
        new["apiVersion"], new["kind"] = t.storage_api_version, t.kind
        meta = new.setdefault("metadata", {})
        meta["name"] = key[2]
        if t.namespaced:
            meta["namespace"] = key[1]
        else:
            meta.pop("namespace", None)
        if old is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now
            meta.pop("resourceVersion", None)
            if t.has_generation:
                meta["generation"] = 1
            else:
                meta.pop("generation", None)
            for field in ("deletionTimestamp", "deletionGracePeriodSeconds"):
                meta.pop(field, None)
        else:
            old_meta = old["metadata"]
            for field in ("uid", "creationTimestamp", "resourceVersion", "generation",
                          "deletionTimestamp", "deletionGracePeriodSeconds"):
                if field in old_meta:
                    meta[field] = old_meta[field]
                else:
                    meta.pop(field, None)
            if t.has_generation:
                spec_old = {k: v for k, v in old.items() if k not in ("metadata", "status")}
                spec_new = {k: v for k, v in new.items() if k not in ("metadata", "status")}
                meta["generation"] = int(old_meta.get("generation", 0) or 0) + (spec_old != spec_new)
            meta.update(deletion or {})
        for entry in entries:
            entry.paths = {p for p in entry.paths if F.get_path(new, p) is not F.MISSING}
        entries = [e for e in entries if e.paths]
        for entry in entries:
            if entry.original is None or entry.paths != entry.original or entry.time is None:
                entry.time = now
        if entries:
            meta["managedFields"] = [e.dump() for e in entries]
        else:
            meta.pop("managedFields", None)
        if validate:
            self._validate(t, new)
        if old is not None and old == new:
            return 200, old
        if dry_run:
            return (201 if old is None else 200), new
        meta["resourceVersion"] = self._next_rv()
        self._store(key, new)
        self._emit("ADDED" if old is None else "MODIFIED", t.storage, new)
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and \
                (t.storage.group, t.storage.plural) != ("", "namespaces"):
            return 200, self._remove(key, new)
        self._after_change(t, key, old, new)
        return (201 if old is None else 200), new

    def _create(self, t: Target, route: Route, obj: dict[str, Any], manager: str,
                dry_run: bool) -> tuple[int, dict[str, Any]]:
        if obj.get("kind") and obj["kind"] != t.kind:
            raise StatusError(400, f"the kind in the data ({obj['kind']}) does not match the expected kind ({t.kind})")
        meta = obj.setdefault("metadata", {})
        if t.namespaced:
            if meta.get("namespace") and route.namespace and meta["namespace"] != route.namespace:
                raise StatusError(400, "the namespace of the provided object does not match the namespace "
                                       "sent on the request")
            if route.namespace is None:
                raise not_found_path()
        name = meta.get("name")
        if not name and meta.get("generateName"):
            name = meta["generateName"] + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        if not name:
            raise self._invalid(t, "", "metadata.name", F.MISSING, "Required value: name or generateName is "
                                "required", cause="FieldValueRequired")
        if t.namespaced:
            self._admit_namespace(t, route.namespace, name)
        key = self._key(t, route.namespace, name)
        if self._load(key) is not None:
            raise StatusError(409, f'{t.qualified} "{name}" already exists', t.details(name), reason="AlreadyExists")
        new = F.clone(obj)
        if t.has_status:
            new.pop("status", None)
        for field in SERVER_METADATA - {"name", "namespace"}:
            new["metadata"].pop(field, None)
        entries: list[Entry] = []
        take_ownership(entries, manager, "Update", None, t.api_version, set(F.leaf_paths(self._field_view(new, t))))
        self._defaults(t, new)
        return self._commit(t, key, None, new, entries=entries, dry_run=dry_run)

    def _defaults(self, t: Target, obj: dict[str, Any]) -> None:
        """Fields a real apiserver fills in synchronously on create."""
        what = (t.storage.group, t.storage.plural)
        if what == ("", "namespaces"):
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            if self.namespace_active_delay <= 0:
                obj["status"] = {"phase": "Active"}
        elif what == ("", "services"):
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            if spec.get("type") != "ExternalName" and not spec.get("clusterIP"):
                self._ip_counter += 1
                ip = f"10.96.{self._ip_counter // 250}.{self._ip_counter % 250 + 1}"
                spec["clusterIP"], spec["clusterIPs"] = ip, [ip]

    def _replace(self, t: Target, route: Route, obj: dict[str, Any], manager: str,
                 dry_run: bool) -> tuple[int, dict[str, Any]]:
        name = route.name or ""
        body_name = (obj.get("metadata") or {}).get("name")
        if body_name and body_name != name:
            raise StatusError(400, f"the name of the object ({body_name}) does not match the name on the URL ({name})")
        key = self._key(t, route.namespace, name)
        old = self._load(key)
        if old is None:
            raise StatusError(404, f'{t.qualified} "{name}" not found', t.details(name))
        self._check_precondition(t, name, old, (obj.get("metadata") or {}).get("resourceVersion"))
        return self._update(t, key, old, self._written(t, old, F.clone(obj)), manager, dry_run)

    def _update(self, t: Target, key: tuple, old: dict[str, Any], new: dict[str, Any], manager: str,
                dry_run: bool, validate: bool = True,
                deletion: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        entries = Entry.load(old)
        changed = F.changed_paths(self._field_view(old, t), self._field_view(new, t))
        take_ownership(entries, manager, "Update", t.subresource, t.api_version, changed)
        return self._commit(t, key, old, new, entries=entries, dry_run=dry_run, validate=validate,
                            deletion=deletion)

    def _patch(self, t: Target, route: Route, body: bytes, content_type: str, manager: str,
               dry_run: bool) -> tuple[int, dict[str, Any]]:
        name = route.name or ""
        key = self._key(t, route.namespace, name)
        old = self._load(key)
        if old is None:
            raise StatusError(404, f'{t.qualified} "{name}" not found', t.details(name))
        if content_type not in ("application/merge-patch+json", "application/strategic-merge-patch+json",
                                "application/json-patch+json"):
            raise StatusError(415, "the body of the request was in an unknown format - accepted media types "
                                   "include: application/json-patch+json, application/merge-patch+json, "
                                   "application/apply-patch+yaml, application/strategic-merge-patch+json")
        try:
            patch = parse_body(body, content_type)
        except ValueError as e:
            raise StatusError(400, f"error decoding patch: {e}") from None
        if content_type in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            if not isinstance(patch, dict):
                raise StatusError(400, "the patch is not a JSON object")
            self._check_precondition(t, name, old, (patch.get("metadata") or {}).get("resourceVersion"))
            patched = F.merge_patch(old, patch)
        elif content_type == "application/json-patch+json":
            if not isinstance(patch, list):
                raise StatusError(400, "a JSON patch must be a list of operations")
            try:
                patched = F.json_patch(old, patch)
            except F.JsonPatchError as e:
                raise StatusError(422, f"the server rejected our request due to an error in our request: {e}",
                                  t.details(name)) from None
        if not isinstance(patched, dict):
            raise StatusError(400, "the patched object is not a JSON object")
        return self._update(t, key, old, self._written(t, old, patched), manager, dry_run)

    @staticmethod
    def _written(t: Target, old: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """What a PUT or PATCH of `body` stores: through /status only the status changes;
        otherwise everything but the status and managedFields, which the server keeps."""
        if t.subresource == "status":
            new = F.clone(old)
            if "status" in body:
                new["status"] = body["status"]
            else:
                new.pop("status", None)
            return new
        body.setdefault("metadata", {})["managedFields"] = old["metadata"].get("managedFields")
        if t.has_status:
            body.pop("status", None)
            if "status" in old:
                body["status"] = F.clone(old["status"])
        return body

    def _apply(self, t: Target, route: Route, body: bytes, params: dict[str, str],
               dry_run: bool) -> tuple[int, dict[str, Any]]:
        name = route.name or ""
        manager = params.get("fieldManager")
        if not manager:
            raise StatusError(422, 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                                   'is required for apply patch',
                              {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
                                  {"reason": "FieldValueRequired", "message": "Required value: is required for "
                                   "apply patch", "field": "fieldManager"}]})
        force = params.get("force", "").lower() in ("true", "1")
        try:
            cfg = parse_body(body, "application/apply-patch+yaml", yaml_ok=True)
        except (ValueError, yaml.YAMLError) as e:
            raise StatusError(400, f"error decoding YAML: {e}") from None
        if not isinstance(cfg, dict):
            raise StatusError(400, "the apply configuration is not an object")
        api_version, kind = cfg.get("apiVersion"), cfg.get("kind")
        if not api_version or not kind:
            raise StatusError(400, f"Object 'Kind' is missing in '{json.dumps(cfg)[:200]}'"
                              if not kind else "Object 'apiVersion' is missing")
        if split_api_version(api_version)[0] != t.group:
            raise StatusError(400, f"the API version in the data ({api_version}) does not match the expected "
                                   f"API version ({t.api_version})")
        if kind != t.kind:
            raise StatusError(400, f"the kind in the data ({kind}) does not match the expected kind ({t.kind})")
        meta = cfg.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise StatusError(400, f"the name of the object ({meta['name']}) does not match the name on the URL "
                                   f"({name})")
        if t.namespaced and meta.get("namespace") and meta["namespace"] != route.namespace:
            raise StatusError(400, "the namespace of the provided object does not match the namespace sent on "
                                   "the request")
        if meta.get("managedFields"):
            raise StatusError(400, "metadata.managedFields must be nil")

        applied_obj = self._field_view({**cfg, "metadata": meta}, t)
        applied_obj = _drop_nulls(applied_obj)
        applied = set(F.leaf_paths(applied_obj))
        key = self._key(t, route.namespace, name)
        old = self._load(key)
        if old is None:
            if t.subresource:
                raise StatusError(404, f'{t.qualified} "{name}" not found', t.details(name))
            if t.namespaced:
                self._admit_namespace(t, route.namespace or "", name)
            base: dict[str, Any] = {"metadata": {"name": name}}
            entries: list[Entry] = []
        else:
            self._check_precondition(t, name, old, meta.get("resourceVersion"))
            base = F.clone(old)
            entries = Entry.load(old)

        conflicts: list[tuple[Entry, F.Path]] = []
        for entry in entries:
            if entry.manager == manager or entry.subresource != t.subresource:
                continue
            for q in sorted(entry.paths):
                if any(F.related(p, q) for p in applied) and \
                        F.get_path(base, q) != F.get_path(applied_obj, q):
                    conflicts.append((entry, q))
        if conflicts and not force:
            raise self._conflict(t, name, conflicts)
        for entry, q in conflicts:
            entry.paths.discard(q)

        mine = find_entry(entries, manager, "Apply", t.subresource)
        previous = set(mine.paths) if mine else set()
        for entry in entries:  # the same manager's Update entries yield the fields it now applies
            if entry is not mine and entry.manager == manager:
                entry.paths = {q for q in entry.paths if not any(F.related(q, p) for p in applied)}
        others = [e for e in entries if e is not mine]
        for gone in sorted(previous - applied):
            if any(F.related(gone, p) for p in applied):
                continue  # replaced by a structurally different value: the merge handles it
            if any(F.related(gone, q) for e in others for q in e.paths):
                continue  # someone else still owns it
            F.del_path(base, gone)
        _merge_applied(base, applied_obj)
        if mine is None:
            mine = Entry(manager, "Apply", t.subresource, t.api_version, set())
            entries.append(mine)
        mine.paths = applied
        mine.api_version = t.api_version
        if old is None:
            self._defaults(t, base)
        return self._commit(t, key, old, base, entries=entries, dry_run=dry_run)

    def _conflict(self, t: Target, name: str, conflicts: list[tuple[Entry, F.Path]]) -> StatusError:
        by_manager: dict[str, list[str]] = {}
        labels: dict[str, str] = {}
        for entry, path in conflicts:
            label = f'"{entry.manager}"'
            if entry.api_version and entry.api_version != t.api_version:
                label += f" using {entry.api_version}"
            labels[entry.manager] = label
            by_manager.setdefault(entry.manager, []).append(F.path_str(path))
        if len(conflicts) == 1:
            manager, paths = next(iter(by_manager.items()))
            summary = f"Apply failed with 1 conflict: conflict with {labels[manager]}: {paths[0]}"
        else:
            parts = []
            for manager, paths in by_manager.items():
                if len(paths) == 1:
                    parts.append(f"conflict with {labels[manager]}: {paths[0]}")
                else:
                    parts.append(f"conflicts with {labels[manager]}:\n" + "\n".join(f"- {p}" for p in paths))
            summary = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(parts)
        causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {labels[e.manager]}",
                   "field": F.path_str(p)} for e, p in conflicts]
        return StatusError(409, summary, t.details(name, causes=causes), reason="Conflict")

    # == deletes ===================================================================================

    def _delete(self, t: Target, route: Route, params: dict[str, str], body: bytes,
                dry_run: bool) -> dict[str, Any]:
        name = route.name or ""
        key = self._key(t, route.namespace, name)
        old = self._load(key)
        if old is None:
            raise StatusError(404, f'{t.qualified} "{name}" not found', t.details(name))
        options: dict[str, Any] = {}
        if body:
            try:
                options = parse_body(body, "application/json") or {}
            except ValueError:
                raise StatusError(400, "the DeleteOptions body is not valid JSON") from None
        policy = params.get("propagationPolicy") or options.get("propagationPolicy")
        if policy not in (None, "Foreground", "Background", "Orphan"):
            raise StatusError(400, f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported '
                                   f'value: "{policy}"')
        if dry_run:
            return self._render(old, t)
        return self._render(self._delete_object(key, old, policy), t)

    def _delete_object(self, key: tuple, old: dict[str, Any], policy: str | None = None) -> dict[str, Any]:
        """Delete now, or mark for deletion (finalizers, namespaces); -> the resulting object."""
        t = self._target_for(key[0])
        is_namespace = (key[0].group, key[0].plural) == ("", "namespaces")
        if is_namespace or old["metadata"].get("finalizers"):
            if old["metadata"].get("deletionTimestamp"):
                return old  # already being deleted
            new = F.clone(old)
            if is_namespace:
                new.setdefault("status", {})["phase"] = "Terminating"
            deletion = {"deletionTimestamp": now_rfc3339(), "deletionGracePeriodSeconds": 0}
            _, result = self._update(t, key, old, new, "kube-apiserver", False, validate=False, deletion=deletion)
            if is_namespace:
                self._schedule(self.namespace_delete_delay, self._namespace_cleanup, key[2])
            return result
        return self._remove(key, old, policy)

    def _remove(self, key: tuple, obj: dict[str, Any], policy: str | None = None) -> dict[str, Any]:
        final = F.clone(obj)
        final["metadata"]["resourceVersion"] = self._next_rv()
        self._objects[key].delete()
        self._emit("DELETED", key[0], final)
        if (key[0].group, key[0].plural) == (CRD_GROUP, CRD_PLURAL):
            spec = final.get("spec") or {}
            group, plural = spec.get("group"), (spec.get("names") or {}).get("plural")
            self.catalog.remove_crd(key[2])
            for cr_key, cr in [(k, o.raw) for k, o in list(self._objects.items())
                               if not o.deleted and (k[0].group, k[0].plural) == (group, plural)]:
                self._remove(cr_key, cr)
        if policy != "Orphan":
            uid = final["metadata"].get("uid")
            for dep_key, dep in [(k, o.raw) for k, o in list(self._objects.items()) if not o.deleted]:
                owners = dep.get("metadata", {}).get("ownerReferences") or []
                if any(ref.get("uid") == uid for ref in owners):
                    self._delete_object(dep_key, F.clone(dep))
        return final

    def _delete_collection(self, t: Target, route: Route, params: dict[str, str],
                           dry_run: bool) -> dict[str, Any]:
        if t.namespaced and route.namespace is None:
            raise not_found_path()
        deleted = []
        for key, obj in self._select(t, route, params):
            deleted.append(F.clone(obj) if dry_run else self._delete_object(key, F.clone(obj),
                                                                                    params.get("propagationPolicy")))
        return {"kind": f"{t.kind}List", "apiVersion": t.api_version, "metadata": {"resourceVersion": str(self._rv)},
                "items": [self._render(o, t, in_list=True) for o in deleted]}

    # == watch =====================================================================================

    async def _watch(self, raw: aiohttp.web.BaseRequest, t: Target, route: Route,
                     params: dict[str, str]) -> aiohttp.web.StreamResponse:
        by_labels, by_fields = self._selectors(params)
        timeout = float(params["timeoutSeconds"]) if params.get("timeoutSeconds") else None
        since = params.get("resourceVersion")

        def wanted(obj: dict[str, Any]) -> bool:
            meta = obj.get("metadata", {})
            return (route.namespace is None or meta.get("namespace") == route.namespace) and \
                by_labels(meta.get("labels") or {}) and by_fields(obj)

        with self.mutex:
            if not since or since == "0":
                initial = [("ADDED", obj) for _, obj in self._live(t.storage, route.namespace) if wanted(obj)]
                index = len(self._events)
            else:
                try:
                    since_rv = int(since)
                except ValueError:
                    raise StatusError(400, f"invalid resource version: {since}") from None
                initial = []
                index = next((i for i, e in enumerate(self._events) if e[0] > since_rv), len(self._events))
        response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json",
                                                                   "Cache-Control": "no-cache, private"})
        response.enable_chunked_encoding()
        waiter = asyncio.Event()
        self._waiters.add(waiter)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        try:
            await response.prepare(raw)
            for event_type, obj in initial:
                await self._write_event(response, event_type, obj, t)
            while not self._stopping:
                waiter.clear()
                with self.mutex:
                    batch, index = self._events[index:], len(self._events)
                for _, event_type, storage, obj in batch:
                    if storage == t.storage and wanted(obj):
                        await self._write_event(response, event_type, obj, t)
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    break
                try:
                    await asyncio.wait_for(waiter.wait(), remaining)
                except asyncio.TimeoutError:
                    pass
            await response.write_eof()
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            pass
        finally:
            self._waiters.discard(waiter)
        return response

    async def _write_event(self, response: aiohttp.web.StreamResponse, event_type: str, obj: dict[str, Any],
                           t: Target) -> None:
        line = json.dumps({"type": event_type, "object": self._render(obj, t)}) + "\n"
        await response.write(line.encode())

    # == controllers ===============================================================================

    def _after_change(self, t: Target, key: tuple, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        what = (t.storage.group, t.storage.plural)
        generation_changed = old is None or old["metadata"].get("generation") != new["metadata"].get("generation")
        if what == ("", "namespaces") and old is None and "status" not in new:
            self._schedule(self.namespace_active_delay, self._namespace_activate, key[2])
        elif what in WORKLOADS and generation_changed:
            self._schedule(self.controller_delay, self._rollout, key)
        elif what == (CRD_GROUP, CRD_PLURAL) and generation_changed:
            self._schedule(self.crd_delay, self._establish, key)

    def _controller_status(self, key: tuple, status: dict[str, Any] | None = None,
                           mutate: Callable[[dict[str, Any]], None] | None = None) -> None:
        old = self._load(key)
        if old is None:
            return
        new = F.clone(old)
        if status is not None:
            new["status"] = status
        if mutate is not None:
            mutate(new)
        t = self._target_for(key[0])
        t.subresource = "status"
        self._update(t, key, old, new, "kube-controller-manager", False, validate=False)

    def _namespace_activate(self, name: str) -> None:
        ns = self._load((NS_KEY, None, name))
        if ns is not None and not ns["metadata"].get("deletionTimestamp"):
            self._controller_status((NS_KEY, None, name), {"phase": "Active"})

    def _namespace_cleanup(self, name: str) -> None:
        ns_key = (NS_KEY, None, name)
        ns = self._load(ns_key)
        if ns is None:
            return
        remaining = 0
        for key, obj in [(k, o.raw) for k, o in list(self._objects.items()) if not o.deleted and k[1] == name]:
            self._delete_object(key, F.clone(obj))
            if self._load(key) is not None:
                remaining += 1
        if remaining:
            self._schedule(self.namespace_delete_delay, self._namespace_cleanup, name)
        else:
            self._remove(ns_key, self._load(ns_key) or ns)

    def is_stalled(self, kind: str, namespace: str | None, name: str) -> bool:
        return any(k.lower() == kind.lower() and fnmatch.fnmatchcase(namespace or "", ns_pattern)
                   and fnmatch.fnmatchcase(name, name_pattern) for k, ns_pattern, name_pattern in list(self.stalled))

    def _rollout(self, key: tuple) -> None:
        obj = self._load(key)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return
        kind, name, namespace = obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace")
        stalled = self.is_stalled(kind, namespace, name)
        generation = obj["metadata"].get("generation", 1)
        spec = obj.get("spec") or {}
        replicas = spec.get("replicas", 1)
        ready = 0 if stalled else replicas
        now = now_rfc3339()
        revision = f"{name}-{hashlib.sha1(json.dumps(spec.get('template'), sort_keys=True).encode()).hexdigest()[:10]}"

        def condition(type_: str, status: bool, reason: str, message: str) -> dict[str, Any]:
            return {"type": type_, "status": "True" if status else "False", "lastUpdateTime": now,
                    "lastTransitionTime": now, "reason": reason, "message": message}

        if kind == "Deployment":
            status = _omit_zero({"observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
                                 "readyReplicas": ready, "availableReplicas": ready,
                                 "unavailableReplicas": replicas - ready})
            status["conditions"] = [
                condition("Available", not stalled or replicas == 0,
                          "MinimumReplicasUnavailable" if stalled else "MinimumReplicasAvailable",
                          "Deployment does not have minimum availability." if stalled
                          else "Deployment has minimum availability."),
                condition("Progressing", True, "ReplicaSetUpdated" if stalled else "NewReplicaSetAvailable",
                          f'ReplicaSet "{revision}" is progressing.' if stalled
                          else f'ReplicaSet "{revision}" has successfully progressed.'),
            ]
        elif kind == "StatefulSet":
            status = _omit_zero({"observedGeneration": generation, "replicas": replicas, "readyReplicas": ready,
                                 "currentReplicas": replicas, "updatedReplicas": replicas,
                                 "availableReplicas": ready})
            status.update(currentRevision=revision, updateRevision=revision, collisionCount=0)
        elif kind == "DaemonSet":
            nodes = len(self._live(NODE_KEY))
            ready = 0 if stalled else nodes
            status = {"currentNumberScheduled": nodes, "desiredNumberScheduled": nodes, "numberMisscheduled": 0,
                      "numberReady": ready, "observedGeneration": generation, "updatedNumberScheduled": nodes}
            if ready:
                status["numberAvailable"] = ready
            if nodes - ready:
                status["numberUnavailable"] = nodes - ready
        elif kind == "ReplicaSet":
            status = _omit_zero({"observedGeneration": generation, "replicas": replicas,
                                 "fullyLabeledReplicas": replicas, "readyReplicas": ready,
                                 "availableReplicas": ready})
        elif kind == "Job":
            completions = spec.get("completions", 1) or 1
            status = {"startTime": (obj.get("status") or {}).get("startTime", now), "ready": 0}
            if stalled:
                status["active"] = 1
            else:
                status.update(succeeded=completions, completionTime=now, terminating=0, conditions=[
                    {"type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": now,
                     "lastTransitionTime": now, "reason": "CompletionsReached", "message": "Reached expected "
                     "number of succeeded pods"},
                    {"type": "Complete", "status": "True", "lastProbeTime": now, "lastTransitionTime": now,
                     "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods"}])
        else:
            return
        self._controller_status(key, status)

    def _establish(self, key: tuple) -> None:
        crd = self._load(key)
        if crd is None or crd["metadata"].get("deletionTimestamp"):
            return
        spec = crd["spec"]
        names = dict(spec["names"])
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")
        now = now_rfc3339()
        stored = list((crd.get("status") or {}).get("storedVersions") or [])
        for version in spec.get("versions", []):
            if version.get("storage") and version["name"] not in stored:
                stored.append(version["name"])
        self.catalog.add_crd(crd)
        self._controller_status(key, {
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now, "reason": "NoConflicts",
                 "message": "no conflicts found"},
                {"type": "Established", "status": "True", "lastTransitionTime": now,
                 "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
            ],
            "acceptedNames": names,
            "storedVersions": stored,
        })

    def rerun_controllers(self, kind: str, namespace: str | None = None, name: str | None = None) -> None:
        for storage in self.catalog.find_kind(kind):
            for key, obj in self._live(storage, namespace):
                if name is None or key[2] == name:
                    self._schedule(self.controller_delay, self._rollout, key)

    # == direct access for tests ===================================================================

    def seed(self, obj: dict[str, Any], *, manager: str = "seed", status: dict[str, Any] | None = None) -> dict:
        """Store an object as if created through the API (all bookkeeping, controllers included)."""
        with self.mutex:
            group, version = split_api_version(obj["apiVersion"])
            plural = next((r.plural for r in self.resources if r.group == group and r.version == version
                           and self.resources[r].kind == obj["kind"]), None)
            if plural is None:
                raise ValueError(f"unknown kind {obj['apiVersion']}/{obj['kind']}")
            namespace = obj.get("metadata", {}).get("namespace")
            route = Route(group, version, plural, namespace, None, None)
            t = self._resolve(route)
            if not t.namespaced:
                route = dataclasses.replace(route, namespace=None)
            _, created = self._create(t, route, F.clone(obj), manager, False)
            if status is not None:
                key = self._key(t, route.namespace, created["metadata"]["name"])
                self._controller_status(key, status)
                created = self._load(key) or created
            return created

    def seed_node(self, name: str) -> dict:
        return self.seed({"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}}},
            manager="kubelet", status={"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                                       "message": "kubelet is posting ready status"}]})


def _drop_nulls(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _drop_nulls(v) for k, v in obj.items() if v is not None}
    return obj


def _merge_applied(base: dict[str, Any], applied: dict[str, Any]) -> None:
    """Merge an apply configuration: maps recursively, lists and scalars replaced."""
    F.deep_merge(base, applied)

"""``ApiServer``: runs the emulator over real HTTP on 127.0.0.1 in its own thread and event loop."""

import asyncio
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp.web
import yaml

from .fields import clone
from .emulator import ApiServerEmulator
from .faults import Faults, RequestRecord, Rule

ADMIN_USER, DEMO_USER = "kubernetes-admin", "demo-user"
ADMIN_CONTEXT, DEMO_CONTEXT = f"{ADMIN_USER}@kubernetes", f"{DEMO_USER}@kubernetes"
DEFAULT_USERS = {ADMIN_USER: "admin-token", DEMO_USER: "demo-token"}


def write_kubeconfig(path: str | os.PathLike[str], url: str, users: dict[str, str] | None = None, *,
                     current_context: str = ADMIN_CONTEXT, namespaces: dict[str, str] | None = None,
                     cluster: str = "kubernetes") -> str:
    """A kubeconfig with one cluster at `url`, one bearer-token user per entry of `users`
    (default: kubernetes-admin and demo-user) and a context "<user>@<cluster>" for each.
    `namespaces` optionally maps a context name to its default namespace."""
    users = users or DEFAULT_USERS
    namespaces = namespaces or {}
    contexts = []
    for user in users:
        name = f"{user}@{cluster}"
        context: dict[str, Any] = {"cluster": cluster, "user": user}
        if name in namespaces:
            context["namespace"] = namespaces[name]
        contexts.append({"name": name, "context": context})
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": url}}],
        "users": [{"name": user, "user": {"token": token}} for user, token in users.items()],
        "contexts": contexts,
        "current-context": current_context,
        "preferences": {},
    }
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return path


class ApiServer:
    """A kube-apiserver stand-in on http://127.0.0.1:<free port>.

        with ApiServer(version="1.31.2") as server:
            kubeconfig = server.kubeconfig(tmp_path / "kubeconfig")
            ...                                   # the code under test talks HTTP to server.url
            server.objects(kind="Deployment")     # what got stored
            server.writes()                       # which non-dry-run writes were received

    Delays are in seconds. ``strict`` makes ``__exit__`` fail the test if the stand-in itself
    crashed on a request (a bug here, not in the code under test).
    """

    def __init__(self, version: str = "1.31.2", *, users: dict[str, str] | None = None,
                 check_tokens: bool = False, nodes: int = 1, controller_delay: float = 0.05,
                 crd_delay: float = 0.05, namespace_active_delay: float | None = None,
                 namespace_delete_delay: float = 0.05, host: str = "127.0.0.1", port: int = 0,
                 strict: bool = True) -> None:
        self.version = version
        self.users = dict(users or DEFAULT_USERS)
        self.host = host
        self.strict = strict
        self._requested_port = port
        self._settings = dict(
            version=version, users=self.users, check_tokens=check_tokens, nodes=nodes,
            controller_delay=controller_delay, crd_delay=crd_delay,
            namespace_active_delay=controller_delay if namespace_active_delay is None else namespace_active_delay,
            namespace_delete_delay=namespace_delete_delay,
        )
        self.port: int | None = None
        self.emulator: ApiServerEmulator | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: aiohttp.web.ServerRunner | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> "ApiServer":
        self.start()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        errors = list(self.emulator.internal_errors) if self.emulator else []
        self.stop()
        if self.strict and exc_type is None and errors:
            raise AssertionError(f"the API server stand-in failed internally: {errors!r}") from errors[0]

    def start(self) -> "ApiServer":
        if self._thread is not None:
            raise RuntimeError("already started")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self._astart())
            except BaseException as e:
                failure.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._astop())
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="apiserver-stand-in", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("the API server stand-in did not start in time")
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    async def _astart(self) -> None:
        self.emulator = ApiServerEmulator(**self._settings)
        await self.emulator.__aenter__()  # kmock's own context (its DSL stream feeder, error lists)
        server = aiohttp.web.Server(self.emulator, handler_cancellation=True, access_log=None)
        self._runner = aiohttp.web.ServerRunner(server, shutdown_timeout=2.0, access_log=None)
        await self._runner.setup()
        site = aiohttp.web.TCPSite(self._runner, self.host, self._requested_port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.emulator.start(asyncio.get_running_loop(), f"{self.host}:{self.port}")
        self._forget_discovery_cache()

    async def _astop(self) -> None:
        assert self.emulator is not None
        self.emulator.stop()
        await asyncio.sleep(0)  # let streaming watches see the stop flag
        if self._runner is not None:
            await self._runner.cleanup()
        await self.emulator.__aexit__(None, None, None)

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._thread = None
        self._forget_discovery_cache()
        if hasattr(self, "_tmpdir"):
            self._tmpdir.cleanup()

    def _forget_discovery_cache(self) -> None:
        """kubernetes.dynamic caches discovery in $TMPDIR/osrcp-<md5(host)>.json unless given a cache_file:
        a file left by an earlier server on the same port would leak its kinds/version into this one."""
        digest = hashlib.md5(self.url.encode("utf-8"), usedforsecurity=False).hexdigest()
        try:
            os.unlink(os.path.join(tempfile.gettempdir(), f"osrcp-{digest}.json"))
        except FileNotFoundError:
            pass

    # -- connection details ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the server is not started")
        return f"http://{self.host}:{self.port}"

    def kubeconfig(self, path: str | os.PathLike[str], *, current_context: str = ADMIN_CONTEXT,
                   namespaces: dict[str, str] | None = None) -> str:
        """Write a kubeconfig for this server (contexts kubernetes-admin@kubernetes, demo-user@kubernetes)."""
        return write_kubeconfig(path, self.url, self.users, current_context=current_context, namespaces=namespaces)

    def token(self, user: str = ADMIN_USER) -> str:
        return self.users[user]

    def api_client(self, context: str = ADMIN_CONTEXT, *, kubeconfig: str | os.PathLike[str] | None = None):
        """A ``kubernetes.client.ApiClient`` configured through a kubeconfig file, as a user would do."""
        from kubernetes import config
        if kubeconfig is None:
            kubeconfig = os.path.join(self._scratch_dir(), "kubeconfig")
            self.kubeconfig(kubeconfig)
        return config.new_client_from_config(config_file=os.fspath(kubeconfig), context=context)

    def _scratch_dir(self) -> str:
        if not hasattr(self, "_tmpdir"):
            self._tmpdir = tempfile.TemporaryDirectory(prefix="apiserver-")
        return self._tmpdir.name

    # -- state -----------------------------------------------------------------------------------

    @property
    def _emu(self) -> ApiServerEmulator:
        if self.emulator is None:
            raise RuntimeError("the server is not started")
        return self.emulator

    @property
    def faults(self) -> Faults:
        return self._emu.faults

    def objects(self, kind: str | None = None, *, namespace: str | None = None, name: str | None = None,
                api_version: str | None = None) -> list[dict[str, Any]]:
        """Deep copies of the stored live objects (storage version), sorted by namespace/name.

        `kind` is a Kind ("Deployment"), a plural ("deployments"), "plural.group", or a short name.
        """
        emu = self._emu
        with emu.mutex:
            storages = emu.catalog.find_kind(kind, api_version) if kind else None
            found = []
            for (res, ns, obj_name), obj in list(emu.objects.items()):
                if obj.deleted or (storages is not None and res not in storages):
                    continue
                if (namespace is not None and ns != namespace) or (name is not None and obj_name != name):
                    continue
                found.append(((res.group, res.plural, ns or "", obj_name), clone(obj.raw)))
        return [obj for _, obj in sorted(found, key=lambda item: item[0])]

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        found = self.objects(kind, namespace=namespace, name=name)
        return found[0] if found else None

    def seed(self, *objs: dict[str, Any], manager: str = "seed") -> list[dict[str, Any]]:
        """Create objects directly (as `manager`, with an Update entry in managedFields)."""
        return [self._emu.seed(obj, manager=manager) for obj in objs]

    def add_node(self, name: str) -> dict[str, Any]:
        with self._emu.mutex:
            return self._emu.seed_node(name)

    @property
    def resource_version(self) -> int:
        return self._emu._rv

    # -- controllers -----------------------------------------------------------------------------

    def never_ready(self, kind: str, name: str = "*", namespace: str = "*") -> None:
        """Workloads matching (kind, fnmatch patterns) never become ready/complete."""
        with self._emu.mutex:
            self._emu.stalled.append((kind, namespace, name))

    def make_ready(self, kind: str, name: str = "*", namespace: str = "*") -> None:
        """Undo never_ready() and let the controller finish the rollout of matching workloads."""
        emu = self._emu
        with emu.mutex:
            emu.stalled[:] = [s for s in emu.stalled if s != (kind, namespace, name)]
            emu.rerun_controllers(kind, None if namespace == "*" else namespace, None if name == "*" else name)

    # -- authn/authz ------------------------------------------------------------------------------

    def check_tokens(self, enabled: bool = True) -> None:
        """Unknown or missing bearer tokens get 401 Unauthorized (except /version and health checks)."""
        self._emu.check_tokens = enabled

    def forbid(self, user: str | None = None, *, verbs: Iterable[str] | None = None,
               resources: Iterable[str] | None = None, namespaces: Iterable[str] | None = None) -> Rule:
        """403 Forbidden for matching requests. resources: plurals, "plural.group" or "plural/subresource"."""
        rule = Rule(user, frozenset(verbs) if verbs else None, frozenset(resources) if resources else None,
                    frozenset(namespaces) if namespaces else None)
        self._emu.rules.append(rule)
        return rule

    def authorize_with(self, authorizer: Callable[[str, str, Any], bool] | None) -> None:
        """A custom authorizer(user, verb, route) -> allowed; route has group/version/plural/namespace/name."""
        self._emu.authorizer = authorizer

    # -- request log -----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        with self._emu.mutex:
            return list(self._emu.log)

    def writes(self, **filters: Any) -> list[RequestRecord]:
        """Non-GET requests that were not dry-runs (whatever their outcome)."""
        return [r for r in self.find_requests(**filters) if r.is_write]

    def find_requests(self, method: str | None = None, path: str | None = None,
                      status: int | None = None) -> list[RequestRecord]:
        """Filter the log: method (case-insensitive), path (a substring or regex searched), status."""
        import re
        pattern = re.compile(path) if path is not None else None
        return [r for r in self.requests
                if (method is None or r.method == method.upper())
                and (pattern is None or pattern.search(r.path))
                and (status is None or r.status == status)]

    def clear_requests(self) -> None:
        with self._emu.mutex:
            self._emu.log.clear()

    # -- waiting ---------------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01) -> Any:
        """Poll `predicate` until it returns something truthy (returned) or fail after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout}s")
            time.sleep(interval)

"""A kube-apiserver stand-in over real HTTP for the apply-engine tests (built on kmock).

Start/stop::

    from tests.apiserver import ApiServer, ADMIN_CONTEXT, DEMO_CONTEXT

    with ApiServer(version="1.31.2") as server:          # http://127.0.0.1:<free port>, own thread+loop
        path = server.kubeconfig(tmp_path / "kubeconfig")  # contexts kubernetes-admin@kubernetes (current)
        ...                                                # and demo-user@kubernetes, one bearer token each
        api = server.api_client(DEMO_CONTEXT)              # or kubernetes.config.new_client_from_config(path)

Options: ``ApiServer(version, users={user: token}, check_tokens=False, nodes=1, controller_delay=0.05,
crd_delay=0.05, namespace_active_delay=<controller_delay>, namespace_delete_delay=0.05, strict=True)``.
``strict`` fails the test at exit when the stand-in itself crashed on a request.

Fixtures (import them into a test module or a conftest)::

    from tests.apiserver import apiserver, apiserver_factory  # noqa: F401

``apiserver`` is a started ``ApiServer()``; ``apiserver_factory(**options)`` starts one with options
(any number) and stops them all at teardown.

State::

    server.objects(kind="Deployment", namespace="demo")  # deep copies of stored objects (storage version)
    server.get("ConfigMap", "settings", "demo")           # one object or None
    server.seed(obj, manager="kubectl")                   # pre-existing objects, as if created via the API
    server.emulator.objects["apps/v1/deployments", "demo", "web"].history   # kmock: every stored version

Controllers: ``server.never_ready("Deployment", "web", namespace="demo")`` (fnmatch patterns; also
StatefulSet, DaemonSet, ReplicaSet, Job), ``server.make_ready(...)`` to undo, ``server.add_node(name)``.

Faults (thread-safe, at runtime; filters: method="PATCH" or a set, path=<regex searched in the URL
path>, when=<predicate over the RequestRecord>; ``times=None`` means forever)::

    server.faults.error(500, times=2, method="PATCH", path=r"/deployments/web$")
    server.faults.throttle(times=1, retry_after=1)        # 429 + "Retry-After: 1"
    server.faults.latency(0.02)                           # every request, forever
    server.faults.drop(times=1, method="POST")            # close the socket, no response
    server.faults.invalid(lambda obj: obj["kind"] == "Secret", field="data", message="...")  # 422
    fault.hits, fault.exhausted, fault.remove(), server.faults.clear()

Auth: ``server.check_tokens()`` (401 for unknown/missing tokens), ``server.forbid("demo-user",
verbs=["patch"], resources=["deployments.apps"], namespaces=["kube-system"])`` (403 with the real
message), or ``server.authorize_with(fn(user, verb, route) -> bool)``.

Request log: ``server.requests`` (RequestRecord: method, path, query, content_type, headers, body,
user, status (None if dropped), fault, duration, dry_run, is_write), ``server.writes()`` (non-GET,
non-dry-run), ``server.find_requests(method=, path=, status=)``, ``server.clear_requests()``.

kmock DSL: reactions added to ``server.emulator`` win over the built-in behaviour, e.g.
``server.emulator["get /version"] << {"gitVersion": "v9.9.9"}`` (static payloads only from the test
thread).
"""

import pytest

from .emulator import ApiServerEmulator, StatusError
from .faults import Fault, Faults, RequestRecord, Rule
from .server import ADMIN_CONTEXT, DEMO_CONTEXT, DEFAULT_USERS, ApiServer, write_kubeconfig

__all__ = [
    "ApiServer", "ApiServerEmulator", "StatusError", "Fault", "Faults", "RequestRecord", "Rule",
    "write_kubeconfig", "ADMIN_CONTEXT", "DEMO_CONTEXT", "DEFAULT_USERS", "apiserver", "apiserver_factory",
]


@pytest.fixture
def apiserver_factory():
    started: list[ApiServer] = []
    failures: list[BaseException] = []

    def factory(**kwargs) -> ApiServer:
        server = ApiServer(**kwargs).start()
        started.append(server)
        return server

    yield factory
    for server in reversed(started):
        errors = list(server.emulator.internal_errors) if server.emulator else []
        server.stop()
        if server.strict and errors:
            failures.extend(errors)
    if failures:
        raise AssertionError(f"the API server stand-in failed internally: {failures!r}") from failures[0]


@pytest.fixture
def apiserver(apiserver_factory) -> ApiServer:
    return apiserver_factory()

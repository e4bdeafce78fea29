"""Runtime-configurable fault injection and the request log of the stand-in.

Both are shared between the test thread (which configures/asserts) and the
server thread (which consumes), hence the locks.
"""

import dataclasses
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

READ_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclasses.dataclass
class RequestRecord:
    """One HTTP request as received by the stand-in (a snapshot; `status` is None if dropped)."""
    id: int
    method: str
    path: str
    query: dict[str, str]
    content_type: str | None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    body: Any = None  # parsed JSON/YAML body (or raw text if unparseable, None if empty)
    user: str | None = None  # the authenticated user (from the bearer token), if known
    status: int | None = None
    fault: str | None = None  # which injected fault answered it: "error", "drop", "invalid", ...
    duration: float = 0.0

    @property
    def dry_run(self) -> bool:
        return "dryRun" in self.query

    @property
    def is_write(self) -> bool:
        return self.method not in READ_METHODS and not self.dry_run

    @property
    def is_watch(self) -> bool:
        return self.query.get("watch") in ("true", "1")

    def __str__(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.query.items())
        return f"{self.method} {self.path}{'?' + query if query else ''} -> {self.status}"


def _methods(method: str | Iterable[str] | None) -> frozenset[str] | None:
    if method is None:
        return None
    if isinstance(method, str):
        return frozenset({method.upper()})
    return frozenset(m.upper() for m in method)


def _pattern(path: str | re.Pattern[str] | None) -> re.Pattern[str] | None:
    if path is None or isinstance(path, re.Pattern):
        return path
    return re.compile(path)


@dataclasses.dataclass(eq=False)
class Fault:
    """One injected fault. `times` is what is left (None = forever); `hits` counts the triggers."""
    kind: str  # "error" | "latency" | "drop" | "invalid"
    method: frozenset[str] | None = None
    path: re.Pattern[str] | None = None
    times: int | None = 1
    status: int = 500
    reason: str | None = None
    message: str | None = None
    retry_after: int | None = None
    seconds: float = 0.0
    predicate: Callable[[dict[str, Any]], bool] | None = None
    field: str = "metadata.name"
    when: Callable[[RequestRecord], bool] | None = None
    hits: int = 0
    _owner: "Faults | None" = dataclasses.field(default=None, repr=False)

    def matches(self, record: RequestRecord) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.method is not None and record.method.upper() not in self.method:
            return False
        if self.path is not None and not self.path.search(record.path):
            return False
        if self.when is not None and not self.when(record):
            return False
        return True

    def remove(self) -> None:
        if self._owner is not None:
            self._owner.remove(self)

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.times <= 0


class Faults:
    """The fault registry: ``server.faults.error(...)``, ``.throttle(...)``, ``.latency(...)``, ...

    All filters are optional: ``method`` ("PATCH" or {"PATCH", "POST"}), ``path`` (a regex searched
    in the URL path, e.g. r"/deployments/web$"), ``when`` (a predicate over the RequestRecord).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def _add(self, fault: Fault) -> Fault:
        fault._owner = self
        with self._lock:
            self._faults.append(fault)
        return fault

    def error(self, status: int = 500, *, times: int | None = 1, method: str | Iterable[str] | None = None,
              path: str | re.Pattern[str] | None = None, retry_after: int | None = None,
              reason: str | None = None, message: str | None = None,
              when: Callable[[RequestRecord], bool] | None = None) -> Fault:
        """Answer matching requests with an error Status (500 InternalError by default)."""
        return self._add(Fault("error", _methods(method), _pattern(path), times, status=status, reason=reason,
                               message=message, retry_after=retry_after, when=when))

    def throttle(self, *, times: int | None = 1, retry_after: int = 1, method: str | Iterable[str] | None = None,
                 path: str | re.Pattern[str] | None = None,
                 when: Callable[[RequestRecord], bool] | None = None) -> Fault:
        """Answer 429 TooManyRequests with a ``Retry-After: <retry_after>`` header (integer seconds)."""
        return self.error(429, times=times, method=method, path=path, retry_after=retry_after, when=when)

    def latency(self, seconds: float, *, times: int | None = None, method: str | Iterable[str] | None = None,
                path: str | re.Pattern[str] | None = None,
                when: Callable[[RequestRecord], bool] | None = None) -> Fault:
        """Delay matching requests by `seconds` before handling them (forever unless `times`)."""
        return self._add(Fault("latency", _methods(method), _pattern(path), times, seconds=seconds, when=when))

    def drop(self, *, times: int | None = 1, method: str | Iterable[str] | None = None,
             path: str | re.Pattern[str] | None = None,
             when: Callable[[RequestRecord], bool] | None = None) -> Fault:
        """Close the connection after reading the request, without any response."""
        return self._add(Fault("drop", _methods(method), _pattern(path), times, when=when))

    def invalid(self, predicate: Callable[[dict[str, Any]], bool], *, message: str = "injected validation failure",
                field: str = "metadata.name", times: int | None = None) -> Fault:
        """422 Invalid for writes (incl. dry-run) whose resulting object matches `predicate(obj)`."""
        return self._add(Fault("invalid", None, None, times, predicate=predicate, message=message, field=field))

    def remove(self, fault: Fault) -> None:
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def __iter__(self):
        with self._lock:
            return iter(list(self._faults))

    def __len__(self) -> int:
        with self._lock:
            return len(self._faults)

    # -- consumed by the server ------------------------------------------------------------

    def take(self, kind: str, record: RequestRecord, *, first: bool = False) -> list[Fault]:
        """Matching faults of this kind (only the first one if `first`); each taken one uses up one `times`."""
        taken = []
        with self._lock:
            for fault in self._faults:
                if fault.kind == kind and fault.matches(record):
                    if fault.times is not None:
                        fault.times -= 1
                    fault.hits += 1
                    taken.append(fault)
                    if first:
                        break
        return taken

    def take_invalid(self, obj: dict[str, Any]) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind == "invalid" and not fault.exhausted and fault.predicate is not None:
                    try:
                        matched = fault.predicate(obj)
                    except Exception:  # a predicate that trips over a partial object simply does not match
                        matched = False
                    if matched:
                        if fault.times is not None:
                            fault.times -= 1
                        fault.hits += 1
                        return fault
        return None


@dataclasses.dataclass
class Rule:
    """An authorization deny rule (None = any)."""
    user: str | None = None
    verbs: frozenset[str] | None = None
    resources: frozenset[str] | None = None  # plurals, "plural.group" or "plural/subresource"
    namespaces: frozenset[str] | None = None

    def denies(self, user: str | None, verb: str, group: str, plural: str, subresource: str | None,
               namespace: str | None) -> bool:
        if self.user is not None and user != self.user:
            return False
        if self.verbs is not None and verb not in self.verbs:
            return False
        if self.resources is not None:
            names = {plural, f"{plural}.{group}" if group else plural}
            if subresource:
                names |= {f"{n}/{subresource}" for n in list(names)}
            if not names & self.resources:
                return False
        if self.namespaces is not None and namespace not in self.namespaces:
            return False
        return True

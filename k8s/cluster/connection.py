"""Cluster: a connection to one kubeconfig context, through the official client.

Discovery is fetched once per run (the dynamic client's lazy discoverer with a
cache file private to this run). A server that is away (connection refused or
reset, a timeout, 429, 5xx) is waited out: every request is retried with
exponential backoff and full jitter for up to `retry_for` seconds in all
(K8S_TOOLKIT_RETRY_FOR, default 120), saying on stderr what it waits for. Every
answer is checked before anything reads it (`_check_reply`): a body that is not
JSON, not an object, or lacks the fields the toolkit reads is a `BadReply`
naming the server and the request. Every other failure becomes a one-line
UserError naming the server and context, or the object.
"""

import math
import os
import random
import shutil
import sys
import tempfile
import threading
import time

from . import kubeconfig as kubeconfig_file
from .clock import ServerClock
from .replies import BadReply, check_reply, document  # noqa: F401 (their home for callers)
from ..errors import UserError

RETRY_FOR = 120.0    # seconds a request is retried in all, unless K8S_TOOLKIT_RETRY_FOR says otherwise
RETRY_FOR_VARIABLE = "K8S_TOOLKIT_RETRY_FOR"
BACKOFF_START = 0.2  # seconds: the first pause is up to this, each later one up to twice the one before ...
BACKOFF_MAX = 4.0    # ... but never more than this (full jitter: a random pause from 0 to the bound)
RETRY_STATUS = {429, 500, 502, 503, 504}
PROGRESS_AFTER = 2.0  # seconds of failing before the first "waiting for" line
PROGRESS_EVERY = 5.0  # seconds between those lines (per server)
# (connect, read) seconds of every request: a server that takes connections and never
# answers must not hang a run. Nothing here streams: waits poll with short GETs.
REQUEST_TIMEOUT = (10, 30)


class ApiError(UserError):
    """The server refused a request for one object (4xx, or 5xx beyond the retries)."""

    def __init__(self, message, status, reason="", obj=None):
        super().__init__(message, obj=obj)
        self.status = status
        self.reason = reason


class Cluster:
    """One context of a kubeconfig: version, discovery and retried requests.

    Parameters:
        kubeconfig: path of the kubeconfig file (default: $KUBECONFIG or ~/.kube/config).
        context: context name (default: the kubeconfig's current context).
        pool_size: HTTP connections kept open, at least the number of parallel workers.
        retry_for: seconds a request that fails for a passing reason is retried in all
            (default: $K8S_TOOLKIT_RETRY_FOR, else RETRY_FOR).
        say: prints one progress line (default: to stderr).
    """

    def __init__(self, kubeconfig=None, context=None, pool_size=8, retry_for=None, say=None):
        from kubernetes import client

        path = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        path = path.split(os.pathsep)[0]
        self.retry_for = _retry_for(retry_for)
        kubeconfig_file.check(path, context)
        configuration = client.Configuration()
        kubeconfig_file.load(path, context, configuration)
        if not configuration.host.startswith(("https://", "http://")):
            named = context or kubeconfig_file.current_context(path)
            raise UserError(f"kubeconfig {path}: the server of context {named} is not a URL: "
                            f"{configuration.host!r}")
        configuration.retries = False  # retries are ours: bounded, with backoff, counted
        _throttle_refresh(configuration)
        configuration.connection_pool_maxsize = max(pool_size, 4)
        self.url = configuration.host
        self.context = context or kubeconfig_file.current_context(path)
        self.api = client.ApiClient(configuration)
        self.clock = ServerClock(self.url)
        self.say = say or (lambda line: print(line, file=sys.stderr, flush=True))
        self.answered = False          # whether the server answered anything yet in this run
        self._last_said = float("-inf")
        self._said_lock = threading.Lock()
        self._local = threading.local()  # the request each thread sent last (method, path)
        _observe(self)
        self._cache_dir = tempfile.mkdtemp(prefix="k8s-toolkit-discovery-")
        self._dynamic = None
        self._resources = {}
        self._index = None  # discovery.Index; False: the server has no aggregated discovery
        self._discovery_lock = threading.RLock()  # workers share one discovery

    def close(self):
        self.clock.record()
        shutil.rmtree(self._cache_dir, ignore_errors=True)
        self.api.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def dynamic(self):
        """The kubernetes DynamicClient; its discovery runs on first use, once per run."""
        with self._discovery_lock:
            if self._dynamic is None:
                from kubernetes.dynamic import DynamicClient

                self._dynamic = self.call(lambda: DynamicClient(
                    self.api, cache_file=os.path.join(self._cache_dir, "discovery.json")))
            return self._dynamic

    def version(self):
        """The server's Kubernetes version as "MAJOR.MINOR" (e.g. "1.31")."""
        info = self.dynamic.version["kubernetes"]
        minor = "".join(ch for ch in str(info.get("minor", "")) if ch.isdigit())
        return f"{info.get('major', '1')}.{minor}"

    def resource(self, api_version, kind):
        """The discovered API resource of `kind` in `api_version`, or None if not served."""
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        key = (api_version, kind)
        group, _, version = api_version.rpartition("/")
        with self._discovery_lock:
            if key not in self._resources:
                found = self._indexed(lambda index: index.get(group, version, kind))
                if found is None:
                    # Naming prefix and group keeps the lazy discoverer to this one group
                    # version; with either left out it fetches every group of the server.
                    where = {"prefix": "apis", "group": group} if group else {"prefix": "api"}
                    try:
                        found = self.call(lambda: self.dynamic.resources.get(api_version=version, kind=kind,
                                                                             **where))
                    except ResourceNotFoundError:
                        return None
                self._resources[key] = found
            return self._resources[key]

    def resource_of(self, group, kind):
        """The served resource of a group-kind in the group's preferred version, or None."""
        with self._discovery_lock:
            found = self._indexed(lambda index: index.preferred_of(group, kind))
            if found is not None:
                return found
            where = {"prefix": "apis", "group": group} if group else {"prefix": "api"}
            found = self.call(lambda: self.dynamic.resources.search(kind=kind, **where))
        found = [r for r in found if getattr(r, "kind", None) == kind and not r.name.count("/")]
        if not found:
            return None
        preferred = [r for r in found if getattr(r, "preferred", False)]
        return (preferred or found)[0]

    def _indexed(self, look):
        """`look(index)` on the aggregated discovery index, read again once when it misses
        (a CRD applied during the run); None without aggregated discovery."""
        from . import discovery

        fresh = self._index is None
        if fresh:
            self._index = discovery.fetch(self.dynamic, self.call) or False
        if self._index is False:
            return None
        found = look(self._index)
        if found is None and not fresh:  # a kind that may be new since the index was read
            self._index = discovery.fetch(self.dynamic, self.call) or False
            found = look(self._index) if self._index else None
        return found

    def call(self, request, obj=None):
        """Run `request()`, waiting out an absent or overloaded server; raise ApiError or
        UserError otherwise (BadReply for an answer that cannot be used).

        Connection refused or reset, timeouts, 429 (after its Retry-After) and 5xx are
        retried with exponential backoff and full jitter until `retry_for` seconds have
        passed since the first attempt. Writes are repeated as well: a server-side apply
        PATCH that got no answer is the same PATCH again (applying twice is applying
        once), a PUT carries its resourceVersion (a repeat that comes second is a 409),
        and a repeated POST of a TokenRequest only issues one more token.

        Parameters:
            request: a function making one HTTP request.
            obj: `kind/name` for error messages, if the request is about one object.
        """
        from kubernetes.client.exceptions import ApiException
        from kubernetes.dynamic.exceptions import DynamicApiError
        from urllib3.exceptions import HTTPError

        start, attempt = time.monotonic(), 0
        while True:
            hint = None
            try:
                return request()
            except (ApiException, DynamicApiError) as err:
                status = getattr(err, "status", None) or 0
                if status == 0 and _transient_tls(err):
                    why, away = "TLS connection broken", True
                elif status not in RETRY_STATUS:
                    raise self._api_error(err, status, obj, retried=None) from None
                else:
                    why, away, hint = f"{status} {getattr(err, 'reason', '') or ''}".strip(), False, _retry_after(err)
                    failure = err
            except (HTTPError, OSError) as err:
                why, away = _reason(err), True
                # Never answered yet in this run: most likely the kubeconfig names the wrong
                # place, not a server that is restarting. Say so after one retry.
                if attempt >= 1 and not self.answered and _refused(err):
                    raise UserError(f"cannot reach the API server {self.url} (context "
                                    f"{self.context}): {why}") from None
            waited = time.monotonic() - start
            left = self.retry_for - waited
            if left <= 0 or (hint is not None and hint > left):  # a Retry-After beyond the budget: now
                if away:
                    raise UserError(f"cannot reach the API server {self.url} (context {self.context}): "
                                    f"{why} (still failing after retrying for {_span(self.retry_for)})") from None
                raise self._api_error(failure, status, obj, retried=self.retry_for) from None
            self._waiting(why[:1].lower() + why[1:], waited)
            bound = min(BACKOFF_MAX, BACKOFF_START * 2 ** min(attempt, 16))
            time.sleep(hint if hint is not None else min(random.uniform(0, bound), left))
            attempt += 1

    def _waiting(self, why, waited):
        """One "waiting for" line once the server has been away a moment, then one every
        PROGRESS_EVERY seconds at most, whatever the number of threads waiting."""
        if waited < PROGRESS_AFTER:
            return
        with self._said_lock:
            if time.monotonic() - self._last_said < PROGRESS_EVERY:
                return
            self._last_said = time.monotonic()
        self.say(f"waiting for {self.url}: {why}, retrying for up to {_span(self.retry_for)} "
                 f"({int(waited)} s so far)")

    def _api_error(self, err, status, obj, retried):
        body = _status_body(err)
        message = body.get("message") or getattr(err, "reason", "") or str(err)
        reason = body.get("reason") or ""
        if status == 0:  # the client's word for "no HTTP answer": TLS refused, for one
            message = f"cannot reach the API server {self.url} (context {self.context}): {message}"
        elif status == 401:
            message = (f"the API server {self.url} rejected the credentials of context "
                       f"{self.context} (401 Unauthorized): {message}")
        elif status in RETRY_STATUS and retried is not None:
            message = f"{message} ({status}, still failing after retrying for {_span(retried)})"
            if obj is None:  # a read of the run's own (discovery, a LIST): name it
                message = f"{self.last_request()}: {message}"
        elif status == 409 and message.startswith("Apply failed"):
            message = f"{message} ({status} {reason}; --force-conflicts takes these fields over)"
        else:
            message = f"{message} ({status} {reason})".replace(" )", ")")
        return ApiError(" ".join(message.split()), status, reason, obj=obj)

    def last_request(self):
        """`https://server METHOD /path`, of the request this thread sent last."""
        method, path = getattr(self._local, "request", ("?", "?"))
        return f"{self.url} {method} {path}"


def _throttle_refresh(configuration, every=30.0):
    """Re-read the kubeconfig's credentials at most every `every` seconds.

    The client re-runs its whole kubeconfig loader before every request (about
    1.4 ms, a third of a request's own cost); an exec plugin or OIDC token still
    gets refreshed long before it can expire.
    """
    hook = configuration.refresh_api_key_hook
    if hook is None:
        return
    last = [float("-inf")]
    lock = threading.Lock()

    def refresh(config):
        with lock:
            if time.monotonic() - last[0] >= every:
                last[0] = time.monotonic()
                hook(config)

    configuration.refresh_api_key_hook = refresh


def _status_body(err):
    import json

    body = getattr(err, "body", None) or getattr(err, "summary", lambda: None)()
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        data = json.loads(body) if isinstance(body, str) else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _retry_after(err):
    """The seconds a 429 or 503 asks to wait (Retry-After), or None."""
    headers = getattr(err, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


def _refused(err):
    """Whether `err` says the server is not there (refused, unknown, or silent)."""
    text = str(err).lower()
    return any(word in text for word in ("refused", "name or service not known", "timed out",
                                         "name resolution"))


def _transient_tls(err):
    """Whether a TLS failure (the client's status 0) is a connection cut during the
    handshake, as while a server restarts, rather than a certificate or protocol mismatch."""
    text = str(getattr(err, "reason", "") or err)
    if "SSLError" not in text:
        return False
    return not any(word in text for word in ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed",
                                             "WRONG_VERSION_NUMBER", "wrong version number", "hostname"))


def _retry_for(value):
    """The seconds requests are retried in all: `value`, else $K8S_TOOLKIT_RETRY_FOR, else RETRY_FOR."""
    if value is None:
        text = os.environ.get(RETRY_FOR_VARIABLE, "").strip()
        if not text:
            return RETRY_FOR
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0:
            raise UserError(f"{RETRY_FOR_VARIABLE} must be a number of seconds (0 or more), got {text!r}")
    return float(value)


def _span(seconds):
    """120 -> "2m", 90 -> "1m30s", 2.5 -> "2.5s"."""
    if seconds < 60:
        return f"{seconds:g}s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest}s" if rest else f"{minutes}m"


def _observe(cluster):
    """Give every request REQUEST_TIMEOUT unless it names its own (the client's default:
    none), show every answer's Date to the cluster's clock, and check every 2xx answer
    (`_check_reply`) before the client or the toolkit reads it."""
    rest_client = cluster.api.rest_client
    request = rest_client.request
    host = cluster.url.rstrip("/")

    def observed(method, url, *args, _request_timeout=None, **kwargs):
        dry_run = "dryRun=" in url
        path = url[len(host):] if url.startswith(host) else url
        path = path.split("?", 1)[0] or "/"
        cluster._local.request = (method.upper(), path)
        response = request(method, url, *args, _request_timeout=_request_timeout or REQUEST_TIMEOUT, **kwargs)
        cluster.answered = True
        status = getattr(response, "status", None) or 200
        cluster.clock.saw(method, dry_run or status >= 300, getattr(response, "headers", None))
        if 200 <= status < 300:
            headers = kwargs.get("headers") or (args[0] if args else None) or {}
            check_reply(cluster.url, method.upper(), path, response, headers)
        return response

    rest_client.request = observed


def _reason(err):
    """The readable end of urllib3's wrapped OS error (`Connection refused`)."""
    import re

    text = str(getattr(err, "reason", None) or err)
    text = text.rsplit(": ", 1)[-1] if ": " in text else text
    return re.sub(r"^\[Errno -?\d+\] ", "", text.strip("')\""))

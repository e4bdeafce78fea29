"""Cluster: a connection to one kubeconfig context, through the official client.

Discovery is fetched once per run (the dynamic client's lazy discoverer with a
cache file private to this run), requests that fail for passing reasons (429,
5xx, a dropped connection) are retried with bounded exponential backoff, and
every other failure becomes a one-line UserError naming the server and
context, or the object.
"""

import os
import random
import shutil
import tempfile
import threading
import time

from .clock import ServerClock
from ..errors import UserError

RETRIES = 6          # attempts after the first one
BACKOFF_START = 0.1  # seconds; doubles each attempt
BACKOFF_MAX = 3.0
RETRY_STATUS = {429, 500, 502, 503, 504}
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
    """

    def __init__(self, kubeconfig=None, context=None, pool_size=8):
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        path = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        path = path.split(os.pathsep)[0]
        _check_kubeconfig(path)
        configuration = client.Configuration()
        try:
            config.load_kube_config(config_file=path, context=context,
                                    client_configuration=configuration, persist_config=False)
        except (ConfigException, OSError, TypeError, ValueError, KeyError, AttributeError) as err:
            text = str(err).strip()
            if "Expected object with name" in text:
                text = f"no context {context!r} (set ADMIN_CTX/USER_CTX or --context)"
            raise UserError(f"kubeconfig {path}: {text.splitlines()[0] if text else repr(err)}") from None
        if not configuration.host.startswith(("https://", "http://")):
            raise UserError(f"kubeconfig {path}: the server of context {context or _current_context(path)} "
                            f"is not a URL: {configuration.host!r}")
        configuration.retries = False  # retries are ours: bounded, with backoff, counted
        _throttle_refresh(configuration)
        configuration.connection_pool_maxsize = max(pool_size, 4)
        self.url = configuration.host
        self.context = context or _current_context(path)
        self.api = client.ApiClient(configuration)
        self.clock = ServerClock(self.url)
        _observe(self.api.rest_client, self.clock)
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
        """Run `request()`, retrying passing failures; raise ApiError or UserError otherwise.

        Parameters:
            request: a function making one HTTP request.
            obj: `kind/name` for error messages, if the request is about one object.
        """
        from kubernetes.client.exceptions import ApiException
        from kubernetes.dynamic.exceptions import DynamicApiError
        from urllib3.exceptions import HTTPError

        delay = BACKOFF_START
        for attempt in range(RETRIES + 1):
            last = attempt == RETRIES
            pause = None
            try:
                return request()
            except (ApiException, DynamicApiError) as err:
                status = getattr(err, "status", None) or 0
                if status not in RETRY_STATUS or last:
                    raise self._api_error(err, status, obj, retried=attempt) from None
                pause = _retry_after(err)
            except (HTTPError, OSError) as err:
                # A refused connection before any object is the server being away,
                # not a passing fault: say so after one retry, not six.
                if last or (attempt >= 1 and obj is None and _refused(err)):
                    raise UserError(f"cannot reach the API server {self.url} (context "
                                    f"{self.context}): {_reason(err)}") from None
            time.sleep(pause or delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, BACKOFF_MAX)

    def _api_error(self, err, status, obj, retried):
        body = _status_body(err)
        message = body.get("message") or getattr(err, "reason", "") or str(err)
        reason = body.get("reason") or ""
        if status == 0:  # the client's word for "no HTTP answer": TLS refused, for one
            message = f"cannot reach the API server {self.url} (context {self.context}): {message}"
        elif status == 401:
            message = (f"the API server {self.url} rejected the credentials of context "
                       f"{self.context} (401 Unauthorized): {message}")
        elif status in RETRY_STATUS and retried:
            message = f"{message} ({status}, still failing after {retried} retries)"
        elif status == 409 and message.startswith("Apply failed"):
            message = f"{message} ({status} {reason}; --force-conflicts takes these fields over)"
        else:
            message = f"{message} ({status} {reason})".replace(" )", ")")
        return ApiError(" ".join(message.split()), status, reason, obj=obj)


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


def _current_context(path):
    from kubernetes import config

    try:
        return config.list_kube_config_contexts(path)[1]["name"]
    except Exception:  # the load above already reported a broken file
        return "?"


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
    headers = getattr(err, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return min(float(value), BACKOFF_MAX * 2) if value else None
    except ValueError:
        return None


def _refused(err):
    """Whether `err` says the server is not there (refused, unknown, or silent)."""
    text = str(err).lower()
    return any(word in text for word in ("refused", "name or service not known", "timed out"))


def _observe(rest_client, clock):
    """Give every request REQUEST_TIMEOUT unless it names its own (the client's default:
    none), and show every answer's Date to `clock`."""
    from kubernetes.client.exceptions import ApiException

    request = rest_client.request

    def observed(method, url, *args, _request_timeout=None, **kwargs):
        dry_run = "dryRun=" in url
        try:
            response = request(method, url, *args, _request_timeout=_request_timeout or REQUEST_TIMEOUT,
                               **kwargs)
        except ApiException as err:
            clock.saw(method, True, err.headers)  # refused: nothing was written
            raise
        refused = (getattr(response, "status", None) or 200) >= 300
        clock.saw(method, dry_run or refused, getattr(response, "headers", None))
        return response

    rest_client.request = observed


def _check_kubeconfig(path):
    """A kubeconfig that is not a readable YAML mapping: one line saying so, before the
    client trips over it with a message about its own internals."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        return  # the client's own message names the file and the variables to set
    except OSError as err:
        raise UserError(f"kubeconfig {path}: cannot read: {err.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"kubeconfig {path}: not UTF-8 text") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise UserError(f"kubeconfig {path}{where}: invalid YAML: {getattr(err, 'problem', err)}") from None
    if data is not None and not isinstance(data, dict):
        raise UserError(f"kubeconfig {path}: not a kubeconfig (expected a mapping with clusters, "
                        "contexts and users)")


def _reason(err):
    """The readable end of urllib3's wrapped OS error (`Connection refused`)."""
    import re

    text = str(getattr(err, "reason", None) or err)
    text = text.rsplit(": ", 1)[-1] if ": " in text else text
    return re.sub(r"^\[Errno -?\d+\] ", "", text.strip("')\""))

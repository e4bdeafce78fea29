"""The API server's clock, as its responses tell it: what "written during this run" means.

Server-side apply stamps the toolkit's managedFields entry with the server's
time (whole seconds) only when the apply changed something; an apply that
changes nothing leaves the stamp alone. So an object was changed by this run
exactly when its stamp is at or after `began`, the second of the first answer
this run got from the server, provided no earlier toolkit write carries that
same second. `fence` makes sure of it: every run that wrote leaves its last
write's second in a small file per server (`record`), and a run that starts
within that very second waits for the next one before it writes anything.
Back-to-back runs from one machine are the case this covers; two runs at once
against one server may still see each other's writes.
"""

import email.utils
import hashlib
import os
import threading
import time
from datetime import datetime

WRITES = {"POST", "PUT", "PATCH"}


def _cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "k8s-toolkit", "last-write")


def http_second(value):
    """Epoch second of an HTTP Date header, or None."""
    try:
        return int(email.utils.parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError):
        return None


def stamp_second(value):
    """Epoch second of a managedFields time (RFC 3339, `2026-12-05T08:47:51Z`), or None."""
    try:
        return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


class ServerClock:
    """What one server's Date headers said during this run.

    Parameters:
        url: the server's URL (names its record of the last write).
    """

    _writes_in_process = {}  # url -> last write second, for several Clusters of one run

    def __init__(self, url):
        self.url = url
        self.began = None          # second of the first answer
        self._began_at = None      # time.monotonic() when it arrived
        self.last_write = None     # second of the last answered write
        self._fenced = False
        self._lock = threading.Lock()

    def saw(self, method, dry_run, headers):
        """Note one response: its method, whether it was a dry run, its headers."""
        second = http_second((headers or {}).get("Date"))
        if second is None:
            return
        with self._lock:
            if self.began is None:
                self.began, self._began_at = second, time.monotonic()
            if method.upper() in WRITES and not dry_run:
                self.last_write = max(self.last_write or second, second)

    def fence(self):
        """Before the first write: wait until the server's second is past every earlier
        toolkit write this machine knows of (at most about a second, and only when a
        run wrote within the second this one began)."""
        with self._lock:
            if self._fenced or self.began is None:
                return
            self._fenced = True
            earlier = max(self._recorded() or 0, self._writes_in_process.get(self.url) or 0)
            if earlier < self.began:
                return
            # The server was in second `began` when its answer left, so that second ends
            # at most one second after the answer arrived here.
            pause = (earlier - self.began + 1) - (time.monotonic() - self._began_at)
            time.sleep(min(max(pause, 0), 2.0))
            self.began = earlier + 1

    def changed_since_began(self, stamp):
        """Whether a managedFields time (`stamp`) was set during this run."""
        second = stamp_second(stamp)
        return second is None or self.began is None or second >= self.began

    def record(self):
        """Leave the last write's second for the next run (nothing if this run wrote nothing)."""
        if self.last_write is None:
            return
        self._writes_in_process[self.url] = max(self._writes_in_process.get(self.url) or 0, self.last_write)
        path = self._path()
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            temporary = f"{path}.{os.getpid()}"
            with open(temporary, "w", encoding="ascii") as f:
                f.write(str(max(self.last_write, self._recorded() or 0)))
            os.replace(temporary, path)
        except OSError:
            pass  # a read-only home: the next run may call a change from this one's second "configured"

    def _recorded(self):
        from ..core.files import read_bytes
        from ..errors import UserError

        try:  # a FIFO or a huge file put there is no record, not a hang
            return int(read_bytes(self._path(), "record").strip() or 0)
        except (UserError, ValueError):
            return None

    def _path(self):
        return os.path.join(_cache_dir(), hashlib.sha256(self.url.encode()).hexdigest()[:32])

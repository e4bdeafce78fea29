"""The server clock that tells a change from no change: its parsing, its record, its fence."""

import time

import pytest

from k8s.cluster import clock
from k8s.cluster.clock import ServerClock

DATE = "Sat, 05 Dec 2026 08:47:51 GMT"
SECOND = 1796460471  # that moment, in epoch seconds


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(ServerClock, "_writes_in_process", {})


def test_dates_and_stamps_read_as_the_same_second():
    assert clock.http_second(DATE) == SECOND
    assert clock.stamp_second("2026-12-05T08:47:51Z") == SECOND
    assert clock.http_second("not a date") is None and clock.stamp_second("yesterday") is None


def test_a_stamp_from_the_run_is_a_change_and_an_older_one_is_not():
    seen = ServerClock("https://a:6443")
    seen.saw("GET", False, {"Date": DATE})
    assert seen.changed_since_began("2026-12-05T08:47:51Z")
    assert seen.changed_since_began("2026-12-05T08:48:00Z")
    assert not seen.changed_since_began("2026-12-05T08:47:50Z")
    assert seen.changed_since_began(None)  # no stamp: say changed rather than hide a change


def test_only_real_writes_are_recorded_for_the_next_run():
    first = ServerClock("https://a:6443")
    first.saw("GET", False, {"Date": DATE})
    first.saw("PATCH", True, {"Date": "Sat, 05 Dec 2026 08:47:59 GMT"})  # a dry run
    first.record()
    assert first._recorded() is None
    first.saw("PATCH", False, {"Date": "Sat, 05 Dec 2026 08:47:52 GMT"})
    first.record()
    assert first._recorded() == SECOND + 1
    assert ServerClock("https://b:6443")._recorded() is None  # one record per server


def test_a_record_that_is_a_fifo_or_huge_is_no_record_and_no_hang():
    import os

    fifo, huge = ServerClock("https://a:6443"), ServerClock("https://b:6443")
    os.makedirs(os.path.dirname(fifo._path()), exist_ok=True)
    os.mkfifo(fifo._path())  # a read would block forever
    with open(huge._path(), "wb") as f:
        f.truncate(2 << 20)
    assert fifo._recorded() is None and huge._recorded() is None


def test_a_run_that_begins_in_the_second_of_the_last_write_waits_for_the_next():
    before = ServerClock("https://a:6443")
    before.saw("PATCH", False, {"Date": DATE})
    before.record()
    after = ServerClock("https://a:6443")
    after.saw("GET", False, {"Date": DATE})
    start = time.monotonic()
    after.fence()
    assert 0.9 <= time.monotonic() - start <= 1.2
    assert after.began == SECOND + 1
    assert not after.changed_since_began("2026-12-05T08:47:51Z")  # the earlier run's write

    later = ServerClock("https://a:6443")
    later.saw("GET", False, {"Date": "Sat, 05 Dec 2026 08:47:52 GMT"})
    start = time.monotonic()
    later.fence()
    assert time.monotonic() - start < 0.1

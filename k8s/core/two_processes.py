"""Two processes for one job: half of it in a forked child, half in this process.

Why: rendering, validating and writing thousands of documents is CPU-bound Python,
and the machines it runs on have cores to spare. Decoded objects cost as much to
send between processes as to decode, so each process takes its half from file to
output text, and only texts and small facts cross.

`run(parts, work)` runs `work(parts[0])` here and `work(parts[1])` in a child made
by fork. `work` is a generator function: each `yield value` is a meeting where both
halves hand over a value, and each gets back the pair (first half's, second half's);
what it returns is its result. `run` returns the pair of results, or None when a
half raised, the child died, the halves met a different number of times, or no
second process is to be had: the caller then does the whole job in this process,
which also reports any problem exactly as a one-process run does.
"""

import os
import pickle
import signal
import sys


def available():
    """Whether a second process can help: fork exists, a second CPU is ours, and no other
    thread runs (a thread's locks would be copied into the child held)."""
    threading = sys.modules.get("threading")  # not loaded: no thread was started from Python
    return (hasattr(os, "fork") and (threading is None or threading.active_count() == 1)
            and len(os.sched_getaffinity(0)) >= 2)


def run(parts, work):
    """(result of work(parts[0]), result of work(parts[1])), or None: see the module."""
    if not available():
        return None
    to_parent = os.pipe()
    to_child = os.pipe()
    _widen(to_parent[1])
    sys.stdout.flush()  # else what is buffered is written twice
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(to_parent[0])
            os.close(to_child[1])
            _child(work(parts[1]), os.fdopen(to_child[0], "rb"), os.fdopen(to_parent[1], "wb"))
        finally:
            os._exit(0)  # never back into the caller's code, no atexit, no flush
    os.close(to_parent[1])
    os.close(to_child[0])
    results = None
    try:
        with os.fdopen(to_parent[0], "rb") as inbox, os.fdopen(to_child[1], "wb") as outbox:
            results = _parent(work(parts[0]), inbox, outbox)
    except Exception:  # EOFError among them: the child died
        results = None  # the whole job again, in one process, says what went wrong
    finally:
        if results is None:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return results


def _widen(fd):
    """A pipe that holds a MiB (Linux): a half's outputs cross in a few writes, not one per
    64 KiB, each waiting for the other process to wake up and read."""
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
    except (ImportError, AttributeError, OSError):
        pass  # a smaller pipe is only slower


def _advance(half, received):
    """("meet", value) at the half's next `yield`, or ("done", result) when it returned."""
    try:
        return "meet", (next(half) if received is None else half.send(received))
    except StopIteration as done:
        return "done", done.value


def _parent(half, inbox, outbox):
    ours = _advance(half, None)
    while True:
        theirs = pickle.load(inbox)  # the child sends first: no two writes wait on each other
        if theirs[0] != ours[0]:
            return None
        if ours[0] == "done":
            return ours[1], theirs[1]
        pickle.dump(ours[1], outbox, protocol=pickle.HIGHEST_PROTOCOL)
        outbox.flush()
        ours = _advance(half, (ours[1], theirs[1]))


def _child(half, inbox, outbox):
    try:
        ours = _advance(half, None)
        while True:
            pickle.dump(ours, outbox, protocol=pickle.HIGHEST_PROTOCOL)
            outbox.flush()
            if ours[0] == "done":
                return
            ours = _advance(half, (pickle.load(inbox), ours[1]))
    except BaseException:  # noqa: B036 (the parent sees the pipe close and does the job alone)
        return

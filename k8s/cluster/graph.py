"""Run components as a graph: each starts once every component it depends on is ready.

Independent components run at the same time (at most `parallel`); a component
whose dependency failed or was skipped is skipped itself, naming it ("needs
metrics-server, which failed"), and every other component still runs to its
end. The order in which results arrive is the order components finished.
"""

from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass

READY, FAILED, SKIPPED = "ready", "failed", "skipped"


@dataclass
class Result:
    name: str
    state: str        # ready, failed or skipped
    reason: str = ""  # why it failed or was skipped

    def line(self):
        return f"{self.name}: {self.state}" + (f" ({self.reason})" if self.reason else "")


def run(depends, work, parallel=4, on_done=None, fatal=()):
    """Run `work(name)` for every name of `depends`, dependencies first.

    Parameters:
        depends: {name: names it depends on}; names outside the dict are taken as
            satisfied (a component not in this run is assumed installed).
        work: name -> (ok, reason); an exception counts as a failure with its text.
        parallel: components under way at once.
        on_done: called with each Result as it is decided.
        fatal: exception types that end the whole run (a server whose answers cannot be
            used fails every component alike): nothing new starts, the components under
            way finish, then the first such exception is raised.
    Returns {name: Result}.
    """
    results = {}
    pending = dict(depends)

    def decide(result):
        results[result.name] = result
        if on_done:
            on_done(result)

    stop = []

    def attempt(name):
        try:
            ok, reason = work(name)
        except fatal as err:
            stop.append(err)
            return Result(name, FAILED, str(err))
        except Exception as err:  # noqa: BLE001 - one component's failure must not stop the others
            return Result(name, FAILED, str(err) or type(err).__name__)
        return Result(name, READY if ok else FAILED, "" if ok else reason)

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        running = {}
        while pending or running:
            if stop:
                pending.clear()
            progressed = False
            for name in sorted(pending):
                needs = [d for d in depends[name] if d in depends]
                blocked = [d for d in needs if d in results and results[d].state != READY]
                if blocked:
                    del pending[name]
                    d = blocked[0]
                    what = "failed" if results[d].state == FAILED else "was skipped"
                    decide(Result(name, SKIPPED, f"needs {d}, which {what}"))
                    progressed = True
                elif all(d in results for d in needs):
                    del pending[name]
                    running[pool.submit(attempt, name)] = name
            if not running:
                if pending and not progressed:  # only with a cycle, which component ordering refuses first
                    for name in sorted(pending):
                        decide(Result(name, SKIPPED, "dependency cycle"))
                    pending.clear()
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                del running[future]
                result = future.result()
                if not stop:
                    decide(result)
    if stop:
        raise stop[0]
    return results

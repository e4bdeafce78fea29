"""Install and delete: the selected components as a graph, each handled on its own.

A component starts once every component it `depends` on is ready; independent
ones are applied at the same time (`COMPONENTS_AT_ONCE`). Inside a component
the kind ranks and depends-on annotations still make tiers (`core.order`), and
the engine waits as the readiness table says. A component that fails fails
itself and its dependents only; the others finish. A depends-on annotation
that names an object of another component adds that component to the graph.
`delete` walks the same graph backwards: a component goes once every component
that depends on it is gone, and each waits for its namespaces and finalizers.
"""

import sys
import threading

from . import applyset, graph
from .apply import Outcome, Run
from .connection import BadReply
from ..core import order

COMPONENTS_AT_ONCE = 4
# An answer the toolkit cannot use is the server's fault, not one component's: the
# run ends with its one line instead of failing components one by one.
FATAL = (BadReply,)


def install(engine, components, objects, dry_run=False):
    """Apply `objects` of `components` (in dependency order) through `engine`; a Run whose
    `components` holds one graph.Result per component, in the order given."""
    run = Run()
    by_component = {c.name: [] for c in components}
    for obj in objects:
        by_component[obj.component].append(obj)
    depends = {c.name: [d for d in c.depends if d in by_component] for c in components}
    component_of = {id(o): o.component for o in objects}
    for obj, target in order.dependency_edges(objects):
        if component_of[id(target)] != obj.component and component_of[id(target)] not in depends[obj.component]:
            depends[obj.component].append(component_of[id(target)])

    def work(name):
        mine = by_component[name]
        others = [o for o in objects if o.component != name]
        if not dry_run:  # the set's inventory first: a run cut short still leaves every kind recorded
            _record(engine, name, mine)
        return engine.apply_tiers(order.tiers(mine, [name], elsewhere=others), run, dry_run, label=name)

    def done(result):
        engine.status(result.name, f"{result.state}" + (f" ({result.reason})" if result.reason else ""))
        if result.state != graph.READY:
            engine.say(result.line())

    results = graph.run(depends, work, parallel=COMPONENTS_AT_ONCE, on_done=done, fatal=FATAL)
    for c in components:
        if results[c.name].state == graph.SKIPPED:
            for obj in by_component[c.name]:
                run.outcomes.append(Outcome(obj, "not applied"))
                engine.say(run.outcomes[-1].line())
    run.components = [results[c.name] for c in components]
    return run


def delete(engine, components, objects, dry_run=False):
    """Delete `objects` of `components`, dependents first; a Run with a Result per component."""
    run, lock = Run(), threading.Lock()
    by_component = {c.name: [o for o in objects if o.component == c.name] for c in components}
    needed_by = {c.name: [] for c in components}
    for c in components:
        for dep in c.depends:
            if dep in needed_by:
                needed_by[dep].append(c.name)

    def work(name):
        others = [o for o in objects if o.component != name]
        done = engine.delete(order.tiers(by_component[name], [name], elsewhere=others), dry_run=dry_run)
        with lock:
            run.outcomes.extend(done.outcomes)
        failed = [o for o in done.outcomes if o.result == "failed"]
        if failed or done.stopped:
            return False, failed[0].line() if failed else done.stopped
        if not dry_run:
            applyset.forget(engine.cluster_for(name), name)
        return True, ""

    results = graph.run(needed_by, work, parallel=COMPONENTS_AT_ONCE, fatal=FATAL,
                        on_done=lambda r: r.state != graph.READY and engine.say(r.line()))
    run.components = [graph.Result(c.name, "deleted" if results[c.name].state == graph.READY
                                   else results[c.name].state, results[c.name].reason)
                      for c in reversed(components)]
    return run


def _record(engine, component, objects):
    """Write the component's ApplySet parent; a context that may not (403) or a server that
    will not goes on without it: prune then finds the set's objects by their labels alone."""
    from .connection import ApiError

    try:
        applyset.record(engine, component, objects)
    except ApiError as err:
        if err.status != 403:
            print(f"note: {component}: its ApplySet inventory was not written: {err.message}",
                  file=sys.stderr, flush=True)

"""`apply`, `install`, `delete` and `diff`: the rendered components against the cluster.

Each connects first, renders and validates for the server's version, and only
then writes (steps.connected_run); `install` and `diff` without components leave
out those whose required Secret does not exist yet.
"""

import sys

from .. import steps
from .options import cluster_options, dry_run


def register(commands):
    p = commands.add_parser("apply", help="apply components to the cluster (server-side apply)")
    p.add_argument("components", nargs="+", metavar="COMPONENT", help="component folder(s) under manifests/")
    cluster_options(p)
    dry_run(p)
    p.set_defaults(run=cmd_apply, wait=False)

    p = commands.add_parser("install", help="apply every install component, each once those it depends on "
                                            "are ready, waiting for readiness")
    cluster_options(p)
    dry_run(p)
    p.set_defaults(run=cmd_install, wait=True, components=[])

    p = commands.add_parser("delete", help="delete components from the cluster, dependents first")
    p.add_argument("components", nargs="+", metavar="COMPONENT", help="component folder(s) under manifests/")
    cluster_options(p, applying=False)
    dry_run(p)
    p.add_argument("-y", "--yes", action="store_true",
                   help="do not ask (YES=1 through make); without it a terminal is asked, anything else refused")
    p.set_defaults(run=cmd_delete)

    p = commands.add_parser("diff", help="show what applying would change (server-side dry run)")
    p.add_argument("components", nargs="*", metavar="COMPONENT",
                   help="default: what `install` would apply")
    p.add_argument("--exit-code", action="store_true",
                   help="for CI: exit 0 when nothing would change, 1 when something would, 2 on an error "
                        "(without it: 0 either way, 1 on an error)")
    cluster_options(p, applying=False)
    p.set_defaults(run=cmd_diff)


def _missing_secret(cluster, component, objects):
    """Why an install component must wait for its Secret, or None when it need not: the
    Secret comes with it from secrets/ or is on the cluster already."""
    from ..cluster.connection import ApiError

    if not component.requires_secret or any(
            o.component == component.name and o.kind == "Secret" and o.name == component.requires_secret
            for o in objects):
        return None
    path = f"/api/v1/namespaces/{component.namespace}/secrets/{component.requires_secret}"
    try:
        cluster.call(lambda: cluster.dynamic.request("get", path, serialize=False))
        return None
    except ApiError as err:
        if err.status != 404:
            raise
    return (f"{component.name}: skipped until Secret {component.namespace}/"
            f"{component.requires_secret} exists (create secrets/{component.requires_secret}.yml, "
            f"then make {component.name})")


def _ready_to_install(engine, clusters, selected, objects, left_out=None):
    """The install components whose required Secret exists, and their objects; the others
    go to `left_out` as (component, why)."""
    waiting = {c.name: _missing_secret(clusters(c.name), c, objects) for c in selected}
    for c in selected:
        if waiting[c.name]:
            engine.say(waiting[c.name])
            if left_out is not None:
                left_out.append((c.name, f"Secret {c.namespace}/{c.requires_secret} does not exist yet"))
    return ([c for c in selected if not waiting[c.name]],
            [o for o in objects if not waiting[o.component]])


def _apply(args, only_install=False):
    from ..cluster import board, graph, prune
    from ..cluster.install import install

    def work(clusters, selected, objects, left_out):
        engine = steps.engine(args, clusters)
        if only_install:
            selected, objects = _ready_to_install(engine, clusters, selected, objects, left_out)
        names = [c.name for c in selected]
        if board.wanted(engine.out):
            with board.Board(names, engine.out) as engine.board:
                run = install(engine, selected, objects, dry_run=bool(args.dry_run))
            engine.board = None
        else:
            run = install(engine, selected, objects, dry_run=bool(args.dry_run))
        run.components += [graph.Result(name, graph.SKIPPED, why) for name, why in left_out]
        if args.prune and not run.failed:
            run.outcomes.extend(prune.prune(engine, objects, names, dry_run=bool(args.dry_run)).outcomes)
        return steps.finish(args, run)

    return steps.connected_run(args, work, only_install=only_install,
                               preflight="install" if only_install else "apply")


def cmd_apply(args):
    return _apply(args)


def cmd_install(args):
    return _apply(args, only_install=True)


def cmd_delete(args):
    from ..cluster.install import delete

    def work(clusters, selected, objects, left_out):
        if not args.dry_run:
            _confirm_delete(args, clusters, selected, objects)
        engine = steps.engine(args, clusters)
        return steps.finish(args, delete(engine, selected, objects, dry_run=bool(args.dry_run)))

    return steps.connected_run(args, work, with_secrets=False)


def _confirm_delete(args, clusters, selected, objects):
    """Say what the delete takes with it, then go on only with --yes or a terminal's yes."""
    from ..core import components
    from ..errors import UsageError

    names = {c.name for c in selected}
    found = components.discover(args.manifests, steps.read_values(args))
    dependents = sorted(c.name for c in found if c.name not in names and names & set(c.depends))
    lines = [f"delete {', '.join(sorted(names))}: {len(objects)} objects"]
    if dependents:
        lines.append(f"  these components depend on it and stay, broken: {', '.join(dependents)}")
    for obj in objects:
        if obj.kind == "Namespace":
            claims = _bound_claims(clusters(obj.component), obj.name)
            if claims:
                lines.append(f"  namespace {obj.name} goes with its bound PersistentVolumeClaims: "
                             f"{', '.join(claims)}")
    print("\n".join(lines), file=sys.stderr)
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise UsageError("delete asks first: add --yes (YES=1 through make) to go on without a terminal")
    answer = input("delete? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise UsageError("nothing deleted")


def _bound_claims(cluster, namespace):
    """Names of the Bound PersistentVolumeClaims of a namespace (none if it does not exist)."""
    import json

    from ..cluster.connection import ApiError

    path = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims"
    try:
        response = cluster.call(lambda: cluster.dynamic.request("get", path, serialize=False))
    except ApiError as err:
        if err.status in (403, 404):
            return []
        raise
    return sorted(i["metadata"]["name"] for i in json.loads(response.data).get("items") or []
                  if (i.get("status") or {}).get("phase") == "Bound")


def cmd_diff(args):
    """The diff of each changed object; the exit code as --exit-code asks (see `register`)."""
    from ..errors import UserError

    try:
        changed, failed = steps.connected_run(args, lambda *run: _diff(args, *run), only_install=not args.components)
    except UserError as err:
        if args.exit_code:  # 1 means "changes" there
            err.exit_code = 2
        raise
    if failed:
        return 2 if args.exit_code else 1
    return 1 if changed and args.exit_code else 0


def _diff(args, clusters, selected, objects, left_out):
    """(number of changed objects, whether a dry run failed), the diffs printed as -o asks."""
    from ..cluster import diff
    from ..core import order

    engine = steps.engine(args, clusters)
    if not args.components:  # `make diff`: what `make install` would apply
        engine.out = sys.stderr  # notes about skipped components, not diff text
        selected, objects = _ready_to_install(engine, clusters, selected, objects)
    ordered = [o for tier in order.tiers(objects, [c.name for c in selected]) for o in tier]
    diffs, failures, notes = diff.diff(engine, ordered)
    if steps.structured(args):
        steps.print_data(args, {
            "changed": [{"kind": o.kind, "apiVersion": o.api_version, "namespace": o.namespace, "name": o.name,
                         "component": o.component, "diff": text} for o, text in diffs],
            "notes": notes, "errors": [outcome.line() for outcome in failures]})
    else:
        sys.stdout.write("".join(text for _, text in diffs))
    for note in notes:
        print(note, file=sys.stderr)
    for outcome in failures:
        print(f"error: {outcome.line()}", file=sys.stderr)
    if not failures:
        print(f"{len(diffs)} object{'s' if len(diffs) != 1 else ''} would change" if diffs
              else "no changes", file=sys.stderr)
    return len(diffs), bool(failures)

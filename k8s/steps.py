"""The steps every command takes: read the variables, pick and render the components,
validate them for the target version, open the clusters, report a run.

Commands (k8s/commands/) call these; nothing below this module imports it.
Nothing is written to a cluster unless every selected component rendered and
validated: `connected_run` renders for the server's version before `work` runs.
"""

import sys

from .core.settings import kube_version, load_variables, read_values, values  # noqa: F401 (the commands use them from here)



def check_known(names, found):
    """A UsageError naming the `names` no component of `found` has, with the known ones."""
    from .errors import UsageError

    unknown = sorted(set(names) - {c.name for c in found})
    if unknown:
        raise UsageError(f"unknown component {', '.join(unknown)} "
                         f"(known: {', '.join(sorted(c.name for c in found))})")


def select_components(args, variable_values, version):
    """The requested components (all by default) in dependency order, and those skipped."""
    from .core import components, order

    found = order.component_order(components.discover(args.manifests, variable_values))
    names = getattr(args, "components", None) or []
    check_known(names, found)
    wanted = [c for c in found if not names or c.name in names]
    return ([c for c in wanted if c.supports(version)],
            [c for c in wanted if not c.supports(version)])


def render_and_validate(args, check=True, variable_values=None, version=None, only_install=False):
    """Render the selected components and validate them; returns what the summary needs.

    The version is the server's when a cluster is at hand, else --kube-version or
    $KUBE_VERSION.
    """
    from .core import render, validate
    from .errors import raise_all

    selected, skipped, variable_values, version, vendor_root = _rendering(
        args, variable_values, version, only_install)
    objects = render.render_components(selected, variable_values, vendor_root=vendor_root)
    report = None
    if check:
        report = validate.validate([(o.data, o.source) for o in objects], version)
        raise_all(report.errors)
    return selected, skipped, objects, report, version


def render_and_finish(args, finish, join, check=True):
    """For `template` and `validate`: render and validate as `render_and_validate` does, and
    give the objects to `finish` (objects -> {name: output}); a large set is done in two
    processes (k8s.core.render_in_two), whose outputs `join` puts together. Returns the
    selected and skipped components, the objects per component, the report, the version
    and the outputs."""
    from .core import render_in_two

    selected, skipped, variable_values, version, vendor_root = _rendering(args, None, None, False)
    counts, report, finished = render_in_two.rendered(selected, variable_values, vendor_root, version,
                                                      check, finish, join)
    return selected, skipped, counts, report, version, finished


def _rendering(args, variable_values, version, only_install):
    """What a render needs: the selected and skipped components, the variables, the version
    and the vendor folder."""
    from .cluster.preflight import resolve_metrics_tls
    from .core import vendor

    if variable_values is None:
        variable_values = values(load_variables(args))
    resolve_metrics_tls(variable_values)  # offline `auto`; connected_run has resolved it already
    version = version or kube_version(args, variable_values)
    variable_values["KUBE_VERSION"] = version  # templates see the version they render for
    selected, skipped = select_components(args, variable_values, version)
    if only_install:
        selected = [c for c in selected if c.install]
    vendor_root = vendor.vendor_dir(args.manifests)
    if not getattr(args, "components", None):  # all of them: leave out those never vendored
        unvendored = [c for c in selected if vendor.not_vendored(c, vendor_root)]
        selected = [c for c in selected if c not in unvendored]
        skipped = skipped + unvendored
    return selected, skipped, variable_values, version, vendor_root


class Clusters:
    """The clusters of a run: one connection per kubeconfig context, made on first use."""

    def __init__(self, args, variable_values, components):
        self.args = args
        self.variables = variable_values
        self.context_of = {c.name: c.context for c in components}
        self.open = {}

    def context(self, component):
        if self.args.context:
            return self.args.context
        key = "USER_CTX" if self.context_of.get(component) == "user" else "ADMIN_CTX"
        return self.variables.get(key) or None

    def __call__(self, component):
        from .cluster.connection import Cluster

        context = self.context(component)
        if context not in self.open:
            self.open[context] = Cluster(self.args.kubeconfig, context, pool_size=self.args.parallel)
        return self.open[context]

    def close(self):
        for cluster in self.open.values():
            cluster.close()


def skip_reason(component, version):
    if component.supports(version):  # left out by render_and_validate: imports never vendored
        return "not vendored yet (make vendor)"
    bounds = " and ".join(b for b in (component.min_version and f">= {component.min_version}",
                                      component.max_version and f"<= {component.max_version}") if b)
    return f"skipped (needs Kubernetes {bounds})"


def connected_run(args, work, only_install=False, with_secrets=True, preflight=None):
    """Connect, learn the server version, render + validate for it, then
    `work(clusters, selected, objects, left_out)`; left_out is [(component, why)] of
    what `install` leaves out (version range, never vendored).

    with_secrets: add each selected component's own Secret from secrets/, decrypted in
    memory (secrets.bundled); `delete` has no use for them.
    preflight: "install" or "apply" runs that command's checks (k8s.cluster.preflight)
    after rendering: warnings go to stderr, an error stops the run before `work`.
    METRICS_SERVER_INSECURE_TLS=auto is resolved from the cluster before rendering.
    Nothing is written to the cluster unless every component rendered and validated.
    """
    from .cluster import preflight as checks
    from .core import components, order, validate
    from .errors import raise_all
    from .secrets.bundled import bundled_secrets

    variable_values = values(load_variables(args))
    found = components.discover(args.manifests, variable_values)
    check_known(args.components or [], found)  # a mistyped name before any connection
    clusters = Clusters(args, variable_values, found)
    try:
        first = (args.components or [c.name for c in order.component_order(found)] or [None])[0]
        version = args.kube_version or clusters(first).version()
        facts = checks.Facts(clusters(first))
        checks.resolve_metrics_tls(variable_values, facts,
                                   needed="metrics-server" in (args.components or [c.name for c in found]))
        selected, skipped, objects, report, version = render_and_validate(
            args, variable_values=variable_values, version=version, only_install=only_install)
        if with_secrets:  # apply, install, diff (a delete of what is not served finds it gone)
            # a kind neither the cluster serves nor a rendered CRD defines: refused before any write
            raise_all(validate.missing_kinds(objects, _Served(clusters(first))))
        if preflight:
            named = set(args.components or [])
            checks.enforce(checks.run(facts, variable_values, checks.Selection(
                selected, skipped, named, version, install=only_install), objects, preflight))
        if with_secrets:
            objects = objects + bundled_secrets(args, selected, version)
        left_out = []
        if only_install:  # install, and diff of everything: say what was left out
            for c in skipped:
                if c.supports(version):  # imports never vendored
                    print(f"{c.name}: not vendored yet (make vendor)", file=sys.stderr)
                reason = skip_reason(c, version)
                left_out.append((c.name, reason[len("skipped ("):-1] if reason.startswith("skipped (") else reason))
        return work(clusters, selected, objects, left_out)
    finally:
        clusters.close()


class _Served:
    """What a cluster serves, as validate.missing_kinds asks it: get(group, version, kind)."""

    def __init__(self, cluster):
        self.cluster = cluster

    def get(self, group, version, kind):
        return self.cluster.resource(f"{group}/{version}" if group else version, kind)


def engine(args, clusters):
    from .cluster.apply import Engine
    from .secrets.masking import scrubbed

    return Engine(clusters, parallel=args.parallel, force=getattr(args, "force_conflicts", False),
                  wait=getattr(args, "wait", False), timeout=args.timeout,
                  out=sys.stdout if args.output == "text" else None, applysets=True, scrub=scrubbed)


def structured(args):
    """True when the command's output is data (-o json or -o yaml), not text lines."""
    return getattr(args, "output", "text") in ("json", "yaml")


def print_data(args, data):
    """`data` (dicts, lists, strings) as -o asks: JSON, or YAML that decodes to the same data."""
    import json

    if args.output == "yaml":
        from .core import emit

        text = emit.to_yaml([data])
        sys.stdout.write(text[4:] if text.startswith("---\n") else text)  # one document: no marker
    else:
        print(json.dumps(data, indent=2))


def finish(args, run):
    if structured(args):
        import json

        print_data(args, json.loads(run.as_json()))
    else:
        print(run.summary())
    return 1 if run.failed else 0


def admin_cluster(args, variable_values):
    from .cluster.connection import Cluster

    return Cluster(args.kubeconfig, args.context or variable_values.get("ADMIN_CTX") or None)

"""Command line: parse arguments, call the pipeline stages, turn errors into exit codes.

Only argparse is imported at start-up so `render.py --help` stays fast; each
command imports the stages it needs. Input errors print one line each and
exit 1, usage errors exit 2, and a traceback appears only with `--debug`.
"""

import argparse
import os
import sys

DEFAULT_VARS = "Makefile.vars"
DEFAULT_MANIFESTS = "manifests"


def build_parser():
    parser = argparse.ArgumentParser(
        prog="render.py",
        description="Render, validate and apply the cluster's Kubernetes manifests.")
    parser.add_argument("--vars", default=DEFAULT_VARS, metavar="FILE",
                        help="variable defaults (default: %(default)s)")
    parser.add_argument("--vars-file", metavar="FILE",
                        help="per-cluster overlay on top of --vars (default: $VARS_FILE)")
    parser.add_argument("--manifests", default=DEFAULT_MANIFESTS, metavar="DIR",
                        help="folder with one folder per component (default: %(default)s)")
    parser.add_argument("--kube-version", metavar="X.Y",
                        help="target Kubernetes version when rendering offline (default: $KUBE_VERSION)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    p = commands.add_parser("template", help="render components, validate them, print or write them")
    p.add_argument("components", nargs="*", metavar="COMPONENT", help="default: all")
    p.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    p.add_argument("--out", metavar="DIR", help="write one file per component into DIR")
    p.add_argument("--no-validate", dest="validate", action="store_false",
                   help="skip schema validation")
    p.add_argument("--show-secrets", action="store_true",
                   help="print Secret values (masked as *** by default)")
    p.set_defaults(run=cmd_template)

    p = commands.add_parser("validate", help="render and validate components, print a summary")
    p.add_argument("components", nargs="*", metavar="COMPONENT", help="default: all")
    p.set_defaults(run=cmd_validate)

    p = commands.add_parser("apply", help="apply components to the cluster (server-side apply)")
    p.add_argument("components", nargs="+", metavar="COMPONENT")
    _cluster_options(p)
    p.set_defaults(run=cmd_apply, wait=False)

    p = commands.add_parser("install", help="apply every install component in order, waiting for rollouts")
    _cluster_options(p)
    p.set_defaults(run=cmd_install, wait=True, components=[])

    p = commands.add_parser("delete", help="delete components from the cluster, in reverse order")
    p.add_argument("components", nargs="+", metavar="COMPONENT")
    _cluster_options(p, applying=False)
    p.set_defaults(run=cmd_delete)

    p = commands.add_parser("diff", help="show what applying would change (server-side dry run); "
                                         "exit 1 when something would")
    p.add_argument("components", nargs="*", metavar="COMPONENT",
                   help="default: what `install` would apply")
    _cluster_options(p, applying=False)
    p.set_defaults(run=cmd_diff)

    p = commands.add_parser("kubeconfig", help="write a kubeconfig with `sudo` and `user@CLUSTER` "
                                               "contexts (mode 0600)")
    p.add_argument("--out", metavar="FILE", help="default: $KUBECONFIG_OUT")
    p.add_argument("--context", help="admin context (default: $ADMIN_CTX)")
    p.add_argument("--kubeconfig", help="admin kubeconfig (default: $KUBECONFIG or ~/.kube/config)")
    p.set_defaults(run=cmd_kubeconfig, parallel=1)

    p = commands.add_parser("untaint", help="let workloads run on a control-plane node")
    p.add_argument("node", metavar="NODE")
    p.add_argument("--context", help="admin context (default: $ADMIN_CTX)")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    p.set_defaults(run=cmd_untaint, parallel=1)

    p = commands.add_parser("admission-config", help="write the kubeadm Pod Security Admission "
                                                     "configuration into build/")
    p.add_argument("--out", metavar="DIR", default="build")
    p.set_defaults(run=cmd_admission_config)

    p = commands.add_parser("vars", help="print resolved variables and where each came from")
    p.add_argument("names", nargs="*", metavar="NAME")
    p.set_defaults(run=cmd_vars)

    p = commands.add_parser("components", help="list components with their dependencies")
    p.set_defaults(run=cmd_components)

    # Each of these imports only the standard library at first: --help stays fast.
    from .nodes import audit, labels as nodes
    from .commands import encryption as encryption_cli, secrets as secrets_cli, volumes as volumes_cli
    from .cluster import netpol
    from .core import vendor

    for module in (secrets_cli, volumes_cli, nodes, netpol, encryption_cli, audit, vendor):
        module.register(commands, _cluster_options)
    return parser


def _positive(kind):
    """An argparse type: a finite number above 0 of `kind` (int or float)."""
    import argparse
    import math

    def parse(text):
        try:
            number = kind(text)
        except ValueError:
            number = None
        if number is None or not math.isfinite(number) or number <= 0:
            raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
        return number

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _cluster_options(p, applying=True):
    p.add_argument("--context", help="kubeconfig context for every component "
                                     "(default: $ADMIN_CTX or $USER_CTX, per component)")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--parallel", type=_positive(int), default=8, metavar="N",
                   help="concurrent requests inside a tier (default: %(default)s)")
    p.add_argument("--timeout", type=_positive(float), default=300, metavar="SECONDS",
                   help="how long each tier's waits may take (default: %(default)s)")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    if applying:
        p.add_argument("--force-conflicts", action="store_true",
                       help="take over fields owned by other field managers")
        p.add_argument("--wait", dest="wait", action="store_true",
                       help="wait for DaemonSet, Deployment and StatefulSet rollouts")
        p.add_argument("--no-wait", dest="wait", action="store_false")
        p.add_argument("--prune", action="store_true",
                       help="delete objects this toolkit applied that are no longer rendered")


def main(argv=None):
    args = build_parser().parse_args(argv)
    from .errors import UserError

    if not args.debug:  # the kubernetes client logs to the root logger what we report as one line
        import logging

        logging.getLogger().addHandler(logging.NullHandler())

    try:
        return args.run(args) or 0
    except UserError as err:
        if args.debug:
            raise
        print(_error_text(err), file=sys.stderr)
        return err.exit_code
    except ImportError as err:
        if args.debug:
            raise
        print(f"missing Python package {err.name}: run `make .venv` and use .venv/bin/python",
              file=sys.stderr)
        return 1
    except RecursionError:  # what validation did not stop (--no-validate): an absurdly deep object
        if args.debug:
            raise
        print("error: an object is nested too deeply to process", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def write_files(folder, files):
    """Write {file name: text} into `folder` (made if need be); their paths, in order.
    What the system refuses (a file where the folder should be, no permission) is one line."""
    from .errors import UserError

    paths = []
    try:
        os.makedirs(folder, exist_ok=True)
        for name, text in files.items():
            paths.append(os.path.join(folder, name))
            with open(paths[-1], "w", encoding="utf-8") as f:
                f.write(text)
    except OSError as err:
        raise UserError(f"cannot write: {err.strerror}", file=err.filename or folder) from None
    return paths


def _error_text(err):
    return "\n".join(f"error: {line}" for line in str(err).splitlines())


# --- shared steps ---------------------------------------------------------

def load_variables(args):
    from .core import variables

    overlay = args.vars_file or os.environ.get("VARS_FILE") or None
    return variables.load_variables(args.vars, overlay=overlay)


def values(variable_map):
    return {name: v.value for name, v in variable_map.items()}


def kube_version(args, variable_values):
    from .core import validate

    from .errors import UserError

    for value, source in ((args.kube_version, "--kube-version"), (variable_values.get("KUBE_VERSION"), "KUBE_VERSION")):
        if value:
            if not validate.VERSION.fullmatch(value.strip()):
                raise UserError(f"{source}: invalid Kubernetes version {value!r}, expected MAJOR.MINOR like 1.31")
            return value
    return validate.supported_versions()[-1]


def select_components(args, variable_values, version):
    """The requested components (all by default) in dependency order, and those skipped."""
    from .core import components, order
    from .errors import UsageError

    found = order.component_order(components.discover(args.manifests, variable_values))
    names = getattr(args, "components", None) or []
    unknown = sorted(set(names) - {c.name for c in found})
    if unknown:
        raise UsageError(f"unknown component {', '.join(unknown)} "
                         f"(known: {', '.join(c.name for c in found)})")
    wanted = [c for c in found if not names or c.name in names]
    return ([c for c in wanted if c.supports(version)],
            [c for c in wanted if not c.supports(version)])


def render_and_validate(args, check=True, variable_values=None, version=None, only_install=False):
    """Render the selected components and validate them; returns what the summary needs.

    The version is the server's when a cluster is at hand, else --kube-version or
    $KUBE_VERSION.
    """
    from .core import render, validate, vendor
    from .errors import raise_all

    if variable_values is None:
        variable_values = values(load_variables(args))
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
    objects = render.render_components(selected, variable_values, vendor_root=vendor_root)
    report = None
    if check:
        report = validate.validate([(o.data, o.source) for o in objects], version)
        raise_all(report.errors)
    return selected, skipped, objects, report, version


def skip_reason(component, version):
    if component.supports(version):  # left out by render_and_validate: imports never vendored
        return "not vendored yet (make vendor)"
    bounds = " and ".join(b for b in (component.min_version and f">= {component.min_version}",
                                      component.max_version and f"<= {component.max_version}") if b)
    return f"skipped (needs Kubernetes {bounds})"


def summary(selected, skipped, objects, report, version, written=None):
    lines = []
    for c in selected:
        count = sum(1 for o in objects if o.component == c.name)
        target = f" -> {written[c.name]}" if written and c.name in written else ""
        lines.append(f"  {c.name}: {count} object{'s' if count != 1 else ''}{target}")
    lines += [f"  {c.name}: {skip_reason(c, version)}" for c in skipped]
    checked = f"valid for Kubernetes {version}" if report else "not validated"
    lines.append(f"{len(objects)} objects from {len(selected)} components, {checked}")
    if report and report.unvalidated:
        lines.append(f"{len(report.unvalidated)} custom resources without a CRD in the set were "
                     f"not validated: {', '.join(report.unvalidated)}")
    return "\n".join(lines)


# --- commands -------------------------------------------------------------

def cmd_template(args):
    from .core import emit
    from .secrets.files import mask

    selected, skipped, objects, report, version = render_and_validate(args, check=args.validate)
    dump = emit.to_json if args.output == "json" else emit.to_yaml
    shown = {id(o): o.data if args.show_secrets else mask(o.data) for o in objects}
    if not args.out:
        sys.stdout.write(dump([shown[id(o)] for o in objects]))
        for c in skipped:
            if c.name in (args.components or ()):  # asked for by name: say why it is not there
                print(f"note: {c.name}: {skip_reason(c, version)}", file=sys.stderr)
        return 0
    texts = {f"{c.name}.{args.output}": dump([shown[id(o)] for o in objects if o.component == c.name])
             for c in selected}
    written = dict(zip([c.name for c in selected], write_files(args.out, texts)))
    print(summary(selected, skipped, objects, report, version, written))
    return 0


def cmd_validate(args):
    print(summary(*render_and_validate(args)))
    return 0


def cmd_vars(args):
    from .core import variables

    for line in variables.describe(load_variables(args), args.names or None):
        print(line)
    return 0


def cmd_components(args):
    variable_values = values(load_variables(args))
    version = kube_version(args, variable_values)
    selected, skipped = select_components(args, variable_values, version)
    for c in selected + skipped:
        depends = ", ".join(c.depends) or "-"
        note = "" if c in selected else f"  (not for Kubernetes {version})"
        print(f"{c.name:<20} depends: {depends:<30} namespace: {c.namespace:<15} "
              f"context: {c.context}{note}")
    return 0


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


def _connected_run(args, work, only_install=False):
    """Connect, learn the server version, render + validate for it, then `work(...)`.

    Nothing is written to the cluster unless every component rendered and validated.
    """
    from .core import components, order

    variable_values = values(load_variables(args))
    found = components.discover(args.manifests, variable_values)
    clusters = Clusters(args, variable_values, found)
    try:
        first = (args.components or [c.name for c in order.component_order(found)] or [None])[0]
        version = args.kube_version or clusters(first).version()
        selected, skipped, objects, report, version = render_and_validate(
            args, variable_values=variable_values, version=version, only_install=only_install)
        if only_install:  # install, and diff of everything: say what was left out
            for c in skipped:
                if c.supports(version):  # imports never vendored
                    print(f"{c.name}: not vendored yet (make vendor)", file=sys.stderr)
        return work(clusters, selected, objects)
    finally:
        clusters.close()


def _engine(args, clusters):
    from .cluster.apply import Engine

    return Engine(clusters, parallel=args.parallel, force=getattr(args, "force_conflicts", False),
                  wait=getattr(args, "wait", False), timeout=args.timeout,
                  out=sys.stdout if args.output == "text" else None)


def _finish(args, run):
    if args.output == "json":
        print(run.as_json())
    else:
        print(run.summary())
    return 1 if run.failed else 0


def _missing_secret(cluster, component):
    """Why an install component must wait for its Secret, or None when it need not."""
    from .cluster.connection import ApiError

    if not component.requires_secret:
        return None
    path = f"/api/v1/namespaces/{component.namespace}/secrets/{component.requires_secret}"
    try:
        cluster.call(lambda: cluster.dynamic.request("get", path, serialize=False))
        return None
    except ApiError as err:
        if err.status != 404:
            raise
    return (f"{component.name}: skipped until Secret {component.namespace}/"
            f"{component.requires_secret} exists (make secrets/{component.requires_secret}, "
            f"then make {component.name})")


def _ready_to_install(engine, clusters, selected, objects):
    """The install components whose required Secret exists, and their objects."""
    waiting = {c.name: _missing_secret(clusters(c.name), c) for c in selected}
    for note in filter(None, waiting.values()):
        engine.say(note)
    return ([c for c in selected if not waiting[c.name]],
            [o for o in objects if not waiting[o.component]])


def _apply(args, only_install=False):
    from .core import order
    from .cluster import prune

    def work(clusters, selected, objects):
        engine = _engine(args, clusters)
        if only_install:
            selected, objects = _ready_to_install(engine, clusters, selected, objects)
        names = [c.name for c in selected]
        run = engine.apply(order.tiers(objects, names))
        if args.prune and not run.failed:
            run.outcomes.extend(prune.prune(engine, objects, names).outcomes)
        return _finish(args, run)

    return _connected_run(args, work, only_install=only_install)


def cmd_apply(args):
    return _apply(args)


def cmd_install(args):
    return _apply(args, only_install=True)


def cmd_delete(args):
    from .core import order

    def work(clusters, selected, objects):
        engine = _engine(args, clusters)
        return _finish(args, engine.delete(order.tiers(objects, [c.name for c in selected])))

    return _connected_run(args, work)


def cmd_diff(args):
    from .cluster import diff
    from .core import order

    everything = not args.components  # `make diff`: what `make install` would apply

    def work(clusters, selected, objects):
        engine = _engine(args, clusters)
        if everything:
            engine.out = sys.stderr  # notes about skipped components, not diff text
            selected, objects = _ready_to_install(engine, clusters, selected, objects)
        ordered = [o for tier in order.tiers(objects, [c.name for c in selected]) for o in tier]
        text, changed, failures = diff.diff(engine, ordered)
        sys.stdout.write(text)
        for outcome in failures:
            print(f"error: {outcome.line()}", file=sys.stderr)
        if failures:
            return 2
        print(f"{changed} object{'s' if changed != 1 else ''} would change" if changed
              else "no changes", file=sys.stderr)
        return 1 if changed else 0

    return _connected_run(args, work, only_install=everything)


def _admin_cluster(args, variable_values):
    from .cluster.connection import Cluster

    return Cluster(args.kubeconfig, args.context or variable_values.get("ADMIN_CTX") or None)


def cmd_kubeconfig(args):
    from .nodes import access
    from .core import emit

    from .errors import UserError

    v = values(load_variables(args))
    namespace = v.get("K8S_NAMESPACE")
    if not namespace:
        raise UserError("K8S_NAMESPACE is not set: the user's namespace (Makefile.vars)")
    account = f"{namespace}-user"
    with _admin_cluster(args, v) as cluster:
        if v.get("LONG_LIVED_USER_TOKEN") == "true":
            token = access.secret_token(cluster, namespace, f"{account}-token")
        else:
            token = access.request_token(cluster, namespace, account,
                                         access.token_seconds(v.get("USER_TOKEN_HOURS")))
        admin_path = (args.kubeconfig or os.environ.get("KUBECONFIG") or
                      os.path.expanduser("~/.kube/config")).split(os.pathsep)[0]
        config = access.user_kubeconfig(admin_path, cluster.context, v.get("CLUSTER", "kubernetes"),
                                        namespace, token)
    out = os.path.expanduser(args.out or v.get("KUBECONFIG_OUT") or "~/.kube/config.conf")
    access.write_private(out, emit.to_yaml([config]))
    print(f"wrote {out} (mode 0600): contexts sudo and user@{v.get('CLUSTER', 'kubernetes')}; "
          f"use it with: export KUBECONFIG={out}")
    print("keep it private: the sudo context holds the cluster admin's credentials")
    return 0


def cmd_untaint(args):
    from .nodes import access, labels as nodes
    from .errors import UsageError

    if problem := nodes.node_name_problem(args.node):
        raise UsageError(f"NODE: {problem}")
    v = values(load_variables(args))
    print(f"warning: pods on {args.node} can reach the control plane's credentials; "
          "only do this on a single-node cluster", file=sys.stderr)
    with _admin_cluster(args, v) as cluster:
        removed = access.untaint(cluster, args.node)
    print(f"node/{args.node} untainted: {', '.join(removed)}" if removed
          else f"node/{args.node} has no control-plane taint")
    return 0


def cmd_admission_config(args):
    from .core import emit, podsecurity

    v = values(load_variables(args))
    v["KUBE_VERSION"] = kube_version(args, v)
    api_version, api_server = podsecurity.kubeadm_api_server(kube_version=v["KUBE_VERSION"])
    config, fragment = write_files(args.out, {
        "admission-config.yaml": emit.to_yaml([podsecurity.admission_configuration(v)]),
        "kubeadm-admission.yaml": emit.to_yaml([{"apiVersion": api_version, "kind": "ClusterConfiguration",
                                                 "apiServer": api_server}])})
    print(f"wrote {config} and {fragment}")
    print(f"copy {config} to {podsecurity.DEFAULT_PATH} on every control-plane node and merge "
          f"{fragment} into kubeadm's ClusterConfiguration")
    return 0

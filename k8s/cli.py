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
    p.set_defaults(run=cmd_template)

    p = commands.add_parser("validate", help="render and validate components, print a summary")
    p.add_argument("components", nargs="*", metavar="COMPONENT", help="default: all")
    p.set_defaults(run=cmd_validate)

    p = commands.add_parser("vars", help="print resolved variables and where each came from")
    p.add_argument("names", nargs="*", metavar="NAME")
    p.set_defaults(run=cmd_vars)

    p = commands.add_parser("components", help="list components with their dependencies")
    p.set_defaults(run=cmd_components)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    from .errors import UserError

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
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _error_text(err):
    return "\n".join(f"error: {line}" for line in str(err).splitlines())


# --- shared steps ---------------------------------------------------------

def load_variables(args):
    from . import variables

    overlay = args.vars_file or os.environ.get("VARS_FILE") or None
    return variables.load_variables(args.vars, overlay=overlay)


def values(variable_map):
    return {name: v.value for name, v in variable_map.items()}


def kube_version(args, variable_values):
    from . import validate

    return args.kube_version or variable_values.get("KUBE_VERSION") or validate.supported_versions()[-1]


def select_components(args, variable_values, version):
    """The requested components (all by default) in dependency order, and those skipped."""
    from . import components, order
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


def render_and_validate(args, check=True):
    """Render the selected components and validate them; returns what the summary needs."""
    from . import render, validate
    from .errors import raise_all

    variable_values = values(load_variables(args))
    version = kube_version(args, variable_values)
    variable_values["KUBE_VERSION"] = version  # templates see the version they render for
    selected, skipped = select_components(args, variable_values, version)
    objects = render.render_components(selected, variable_values)
    report = None
    if check:
        report = validate.validate([(o.data, o.source) for o in objects], version)
        raise_all(report.errors)
    return selected, skipped, objects, report, version


def summary(selected, skipped, objects, report, version, written=None):
    lines = []
    for c in selected:
        count = sum(1 for o in objects if o.component == c.name)
        target = f" -> {written[c.name]}" if written and c.name in written else ""
        lines.append(f"  {c.name}: {count} object{'s' if count != 1 else ''}{target}")
    for c in skipped:
        bounds = " and ".join(b for b in (c.min_version and f">= {c.min_version}",
                                          c.max_version and f"<= {c.max_version}") if b)
        lines.append(f"  {c.name}: skipped (needs Kubernetes {bounds})")
    checked = f"valid for Kubernetes {version}" if report else "not validated"
    lines.append(f"{len(objects)} objects from {len(selected)} components, {checked}")
    if report and report.unvalidated:
        lines.append(f"{len(report.unvalidated)} custom resources without a CRD in the set were "
                     f"not validated: {', '.join(report.unvalidated)}")
    return "\n".join(lines)


# --- commands -------------------------------------------------------------

def cmd_template(args):
    from . import emit

    selected, skipped, objects, report, version = render_and_validate(args, check=args.validate)
    dump = emit.to_json if args.output == "json" else emit.to_yaml
    if not args.out:
        sys.stdout.write(dump([o.data for o in objects]))
        return 0
    os.makedirs(args.out, exist_ok=True)
    written = {}
    for c in selected:
        path = os.path.join(args.out, f"{c.name}.{args.output}")
        text = dump([o.data for o in objects if o.component == c.name])
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        written[c.name] = path
    print(summary(selected, skipped, objects, report, version, written))
    return 0


def cmd_validate(args):
    print(summary(*render_and_validate(args)))
    return 0


def cmd_vars(args):
    from . import variables

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

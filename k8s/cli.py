"""Command line: build the parser from the command families, run one, turn errors into exit codes.

Only argparse is imported at start-up so `render.py --help` stays fast; each
command imports the stages it needs. Input errors print one line each and
exit 1, usage errors exit 2, and a traceback appears only with `--debug`.
The commands live in k8s/commands/, one module per family.
"""

import argparse
import importlib
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

    from .commands import FAMILIES

    for family in FAMILIES:  # each imports only the standard library at first: --help stays fast
        importlib.import_module(f".commands.{family}", __package__).register(commands)
    return parser


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


def _error_text(err):
    return "\n".join(f"error: {line}" for line in str(err).splitlines())

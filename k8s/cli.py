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


# The make target that runs a command, for the hint when one of its arguments is missing.
MAKE_TARGETS = {"untaint": "untaint_master", "encryption rotate": "encryption_rotate",
                "encryption install": "encryption_install", "audit install": "audit_install",
                "persistent-dirs": "persistent_dirs", "secrets set": "secret_set",
                "secrets create": "secrets/NAME.yml"}
# The make variable that gives an argument, where it is not the argument's own name.
MAKE_VARIABLES = {"KEY=@FILE|KEY=-": 'SET="KEY=@FILE ..."'}


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors: the problem, and the make form when an argument a
    make variable gives is missing (`make untaint_master` without NODE)."""

    def parse_known_args(self, args=None, namespace=None):
        self.argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message):
        command = self.prog.partition(" ")[2]
        misplaced = None if command else _misplaced_option(self, getattr(self, "argv", ()))
        if misplaced:
            option, name = misplaced
            self.exit(2, f"error: {self.prog}: {option} is an option of {name}: give it after the command "
                         f"(render.py {name} {option} ...); only {', '.join(GLOBAL_OPTIONS)} go before it\n")
        hint = ""
        if "required" in message and command in MAKE_TARGETS:
            names = [a.metavar for a in self._actions if a.required and a.metavar and a.metavar.isupper()]
            if names:
                hint = (f" (through make: {' '.join(MAKE_VARIABLES.get(n, f'{n}=...') for n in names)} "
                        f"make {MAKE_TARGETS[command]})")
        self.exit(2, f"error: {self.prog}: {message}{hint}\n")


GLOBAL_OPTIONS = ("--vars", "--vars-file", "--manifests", "--kube-version", "--debug")


def _misplaced_option(parser, argv):
    """(option, command) when an option of the command comes before the command's name
    (`render.py --retry-for 5 apply`), which argparse reports as an unknown command "5"."""
    commands = next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})
    before = []
    for token in argv:
        if token in commands:
            sub = commands[token]
            for option in before:
                if option in sub._option_string_actions and option not in parser._option_string_actions:
                    return option, token
            return None
        if token.startswith("-"):
            before.append(token.partition("=")[0])
    return None


class _Version(argparse.Action):
    """--version: the installed package's version, read only when asked."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("k8s-toolkit")
        except PackageNotFoundError:
            found = "unknown (not installed: make .venv)"
        print(f"render.py (k8s-toolkit) {found}")
        parser.exit(0)


def _global_options(parser, later=False):
    """The options every command takes. `later`: the copy a command's own parser gets, so they
    also work after the command's name; it sets nothing unless given (argparse.SUPPRESS)."""
    def default(value):
        return argparse.SUPPRESS if later else value

    parser.add_argument("--vars", default=default(DEFAULT_VARS), metavar="FILE",
                        help=f"variable defaults (default: {DEFAULT_VARS})")
    parser.add_argument("--vars-file", default=default(None), metavar="FILE",
                        help="per-cluster overlay on top of --vars (default: $VARS_FILE)")
    parser.add_argument("--manifests", default=default(DEFAULT_MANIFESTS), metavar="DIR",
                        help=f"folder with one folder per component (default: {DEFAULT_MANIFESTS})")
    parser.add_argument("--kube-version", default=default(None), metavar="X.Y",
                        help="target Kubernetes version when rendering offline (default: $KUBE_VERSION)")
    parser.add_argument("--debug", action="store_true", default=default(False), help="show tracebacks")


def _commands(parser):
    """Every command parser under `parser`, nested ones (`secrets apply`) included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield sub
                yield from _commands(sub)


def build_parser(argv=None):
    """The parser of every command; with `argv`, of its command alone when it names a known
    one (a command family imports what its commands need: the others are left alone)."""
    from .commands import FAMILIES, FAMILY_OF

    parser = Parser(prog="render.py",
                    description="Render, validate and apply the cluster's Kubernetes manifests.")
    parser.add_argument("--version", action=_Version, help="print the toolkit's version and exit")
    _global_options(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    command = _command_in(argv) if argv is not None else None
    for family in ([FAMILY_OF[command]] if command in FAMILY_OF else FAMILIES):
        importlib.import_module(f".commands.{family}", __package__).register(commands)
    for command in _commands(parser):
        _global_options(command, later=True)
    return parser


def _command_in(argv):
    """The command `argv` names: its first word that is neither a global option nor its value."""
    words = iter(argv)
    for word in words:
        if word in ("--vars", "--vars-file", "--manifests", "--kube-version"):
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def script():
    """render.py as a process of its own: `main`, started without the cycle collector (what
    start-up makes lives as long as the process; `main` turns it on for all but the offline
    commands). An offline command ends without freeing what it made object by object: a
    render of 10,000 documents would spend 20 ms on that after its work is done."""
    import gc
    import os

    from .commands import FAMILY_OF

    gc.disable()
    argv = sys.argv[1:]
    code = main(argv)
    if FAMILY_OF.get(_command_in(argv)) == "render":
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:  # a closed pipe: what could be written was
            pass
        os._exit(code)
    return code


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    from .commands import FAMILY_OF
    from .errors import UserError

    offline = FAMILY_OF.get(args.command) == "render"
    if not offline:  # `script` starts without the cycle collector; a render is short and makes no cycles
        import gc

        gc.enable()
    # The kubernetes client logs to the root logger what we report as one line; the offline
    # commands never load it (nor logging, 10 ms of a render's start).
    if not args.debug and not offline:
        import logging

        logging.getLogger().addHandler(logging.NullHandler())

    if getattr(args, "retry_for", None):  # read by every connection the command opens
        import os

        os.environ["K8S_TOOLKIT_RETRY_FOR"] = str(args.retry_for)
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

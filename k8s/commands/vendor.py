"""`vendor`: download the upstream manifests components import, pinned in vendor/lock.yaml."""

from .. import steps
from ..core.vendor_download import DEFAULT_TIMEOUT
from ..errors import UsageError


def register(commands):
    """Add `vendor` to render.py's subcommands."""
    p = commands.add_parser("vendor", help="download the upstream manifests that components import "
                                           "into vendor/ and pin them in vendor/lock.yaml")
    p.add_argument("components", nargs="*", metavar="COMPONENT", help="default: all")
    p.add_argument("--update", action="store_true",
                   help="download every file again and accept changed upstream contents")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help="network timeout per connection and read (default: %(default)s)")
    p.set_defaults(run=cmd_vendor)
    return p


def cmd_vendor(args):
    """`render.py vendor`: vendor the named components (all by default), whatever their versions."""
    import math

    from ..core import components
    from ..core.vendor import vendor_dir
    from ..core.vendor_download import vendor

    if not (math.isfinite(args.timeout) and args.timeout > 0):
        raise UsageError(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    found = components.discover(args.manifests, steps.read_values(args))
    names = list(args.components or [])
    steps.check_known(names, found)
    selected = [c for c in found if not names or c.name in names]
    vendor(selected, vendor_dir(args.manifests), update=args.update, timeout=args.timeout,
           complete=not names)
    return 0

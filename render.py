#!/usr/bin/env python3
"""Entry point: `python render.py --help` from a checkout."""

import gc
import sys

from k8s.cli import main

if __name__ == "__main__":
    # Start-up makes objects that live as long as the process, which the collector would
    # only walk again and again; k8s.cli turns it back on for all but the offline commands.
    gc.disable()
    sys.exit(main())

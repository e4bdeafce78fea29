#!/usr/bin/env python3
"""Entry point: `python render.py --help` from a checkout."""

import sys

from k8s.cli import script

if __name__ == "__main__":
    sys.exit(script())

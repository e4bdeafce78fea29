"""A live board of an install on a terminal: one row per component and what it waits for.

Plain lines are the default (a pipe, a log, CI, `NO_COLOR`, `-o json`): the engine
prints each object's line and, every 10 s, a line per waiting component. On a
terminal the same lines scroll above a table that rich redraws a few times a
second, so the state of every component is on screen at once. The summary
printed after the run is the same either way.
"""

import os
import sys
import threading


def wanted(out):
    """Whether to draw a board on `out`: a terminal, and colour not turned off."""
    return out is not None and hasattr(out, "isatty") and out.isatty() and not os.environ.get("NO_COLOR") \
        and os.environ.get("TERM") != "dumb"


class Board:
    """Rows of component -> state, drawn by rich.live while the run lasts (a context manager)."""

    def __init__(self, components, out=sys.stdout):
        from rich.console import Console

        self.rows = {name: "waiting for its dependencies" for name in components}
        self.console = Console(file=out)
        self.lock = threading.Lock()
        self.live = None

    def __enter__(self):
        from rich.live import Live

        self.live = Live(self._table(), console=self.console, refresh_per_second=4, transient=True,
                         get_renderable=self._table)
        self.live.__enter__()
        return self

    def __exit__(self, *exc):
        self.live.__exit__(*exc)

    def print(self, text):
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def update(self, component, state):
        with self.lock:
            self.rows[component] = state

    def _table(self):
        from rich.table import Table

        table = Table(show_header=True, header_style="bold", box=None)
        table.add_column("component")
        table.add_column("state", overflow="fold")
        with self.lock:
            for name, state in self.rows.items():
                table.add_row(name, state)
        return table

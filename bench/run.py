"""`make bench`: every benchmark in bench/, each against its own baseline, in one run."""

import os
import runpy
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = ["render.py", "commands.py", "apply.py", "install.py", "requests.py", "persistent.py"]

if __name__ == "__main__":
    for name in BENCHMARKS:
        print(f"== bench/{name}")
        sys.stdout.flush()
        runpy.run_path(os.path.join(HERE, name), run_name="__main__")
        print()

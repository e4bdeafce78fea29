"""`template` and `validate` of a large set: render, validate and write in two processes.

The units of the render (k8s.core.render.units) are cut in two slices of about equal
bytes, each slice a run of consecutive units; each process renders its slice,
they swap their CustomResourceDefinitions (namespacing and validating a custom
resource need its CRD, wherever it is), and each validates and writes its own
objects. The first slice's text of a component comes before the second's, so a
component's output is its two texts joined: the same bytes as one process writes.

Only a success is taken from two processes. A problem anywhere (a bad file, an
invalid object, one identity in both slices) makes the whole job run again in one
process, which reports it as it always has.
"""

import os
from collections import Counter

from . import render, two_processes, validate as validation
from ..errors import UserError, raise_all

# Below this many bytes of manifests a second process costs more than it saves.
MIN_BYTES = 1 << 20
# The objects of the last render stay referenced: the command ends right after, and freeing
# them object by object (10 ms for 5,000 documents) would come before it can read the other
# process's outputs; render.py ends an offline command without freeing anything.
_LAST = []


def rendered(components, variables, vendor_root, version, check, finish, join):
    """(objects per component, ValidationReport or None, finished) of `components`.

    Parameters:
        check: validate for `version`; an invalid object raises (UserError).
        finish: objects -> {name: output} of their components (what `template` writes).
        join: (first slice's output, second's) -> the component's output.
    The report holds `unvalidated` (custom resources without a CRD in the set) and no
    `warnings` (those are for a connected run).
    """
    work = render.units(components)
    halves = _halves(work, vendor_root)
    if halves is not None:
        results = two_processes.run(halves, lambda part: _half(part, components, variables, vendor_root,
                                                               version, check, finish))
        if results is not None and not results[0]["keys"] & results[1]["keys"]:
            return _joined(*results, join)
    objects = render.render_components(components, variables, vendor_root)
    _LAST[:] = [objects]
    report = None
    if check:
        report = validation.validate([(o.data, o.source) for o in objects], version)
        raise_all(report.errors)
    return Counter(o.component for o in objects), report, finish(objects)


def _halves(work, vendor_root):
    """`work` cut where half its bytes are done, or None when it is too small to share.
    (Measured: a forked child takes a little longer for the same bytes, about what this
    process spends joining and writing after its slice, so halves are best.)"""
    sizes = [_size(component, path, vendor_root) for component, path in work]
    total = sum(sizes)
    if total < MIN_BYTES or len(work) < 2:
        return None
    done = 0
    for cut, size in enumerate(sizes):
        if done + size / 2 >= total / 2:
            break
        done += size
    cut = min(max(cut, 1), len(work) - 1)
    return work[:cut], work[cut:]


def _size(component, path, vendor_root):
    from . import vendor

    try:
        if path is not None:
            return os.path.getsize(path)
        return sum(os.path.getsize(vendor.local_path(vendor_root, rel)) for _, rel in vendor.planned(component))
    except (OSError, UserError):  # a guess only: the render says what is wrong
        return 0


def _half(work, components, variables, vendor_root, version, check, finish):
    """One slice, from files to output (a generator: see two_processes)."""
    with render.paused_gc():
        objects, ours = render.render_units(work, variables, vendor_root)
        _LAST[:] = [objects]
        first, second = yield ours
        crds = first + second
        keys = set(render.settle(objects, components, crds))
        report = None
        if check:
            report = validation.validate([(o.data, o.source) for o in objects], version, crds=crds)
            raise_all(report.errors)
        return {"keys": keys, "counts": Counter(o.component for o in objects),
                "report": report and (report.kube_version, report.unvalidated), "finished": finish(objects)}


def _joined(first, second, join):
    report = None
    if first["report"]:
        report = validation.ValidationReport(kube_version=first["report"][0],
                                             unvalidated=first["report"][1] + second["report"][1])
    finished = dict(first["finished"])
    for name, output in second["finished"].items():
        finished[name] = join(finished[name], output) if name in finished else output
    return first["counts"] + second["counts"], report, finished

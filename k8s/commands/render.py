"""`template`, `validate`, `vars`, `components` and `admission-config`: the offline commands.

They render and validate without a cluster, for `--kube-version` or `$KUBE_VERSION`.
"""

import os
import sys

from .. import steps
from .options import output


def register(commands):
    p = commands.add_parser("template", help="render components, validate them, print or write them")
    p.add_argument("components", nargs="*", metavar="COMPONENT", help="default: all")
    p.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml",
                   help="the objects as YAML (default) or JSON")
    p.add_argument("--out", metavar="DIR", help="write one file per component into DIR")
    p.add_argument("--no-validate", dest="validate", action="store_false",
                   help="skip schema validation")
    p.add_argument("--show-secrets", action="store_true",
                   help="print Secret values (masked as *** by default)")
    p.set_defaults(run=cmd_template)

    p = commands.add_parser("validate", help="render and validate components, print a summary")
    p.add_argument("components", nargs="*", metavar="COMPONENT", help="default: all")
    p.set_defaults(run=cmd_validate)

    p = commands.add_parser("admission-config", help="write the Pod Security Admission configuration "
                                                     "and the kubeadm patch into build/kubeadm/")
    p.add_argument("--out", metavar="DIR", default="build",
                   help="the kubeadm files go to DIR/kubeadm/ (default: %(default)s)")
    p.set_defaults(run=cmd_admission_config)

    p = commands.add_parser("vars", help="print resolved variables and where each came from")
    p.add_argument("names", nargs="*", metavar="NAME", help="default: every variable of the vars files")
    output(p)
    p.set_defaults(run=cmd_vars)

    p = commands.add_parser("components", help="list components with their dependencies")
    output(p)
    p.set_defaults(run=cmd_components)


def summary(selected, skipped, counts, report, version, written=None):
    """The lines `template` and `validate` print; `counts`: component name -> objects."""
    lines = []
    for c in selected:
        count = counts.get(c.name, 0)
        target = f" -> {written[c.name]}" if written and c.name in written else ""
        lines.append(f"  {c.name}: {count} object{'s' if count != 1 else ''}{target}")
    lines += [f"  {c.name}: {steps.skip_reason(c, version)}" for c in skipped]
    checked = f"valid for Kubernetes {version}" if report else "not validated"
    lines.append(f"{sum(counts.values())} objects from {len(selected)} components, {checked}")
    if report and report.unvalidated:
        lines.append(f"{len(report.unvalidated)} custom resources without a CRD in the set were "
                     f"not validated: {', '.join(report.unvalidated)}")
    return "\n".join(lines)


def _writer(args):
    """(finish, join) of `template`: objects -> their text, one per component with --out
    (else one for all, under ""), and how two texts of one component are put together."""
    import operator

    from ..core import emit
    from ..secrets.masking import mask

    dump = emit.to_json if args.output == "json" else emit.to_yaml

    def finish(objects):
        shown = [o.data if args.show_secrets else mask(o.data) for o in objects]
        if args.output != "json":  # a document only substituted is written as it is
            shown = [o.written(data) for o, data in zip(objects, shown)]
        if not args.out:
            return {"": dump(shown)}
        by_component = {}
        for o, data in zip(objects, shown):
            by_component.setdefault(o.component, []).append(data)
        return {name: dump(documents) for name, documents in by_component.items()}

    return finish, emit.join_json if args.output == "json" else operator.add


def cmd_template(args):
    """Print the rendered components, or write them into --out DIR (k8s.core.build_dir): all of
    them make DIR exactly this render, kubeadm/ included; named ones are added, nothing removed."""
    from ..core import build_dir, emit
    from ..nodes import kubeadm_patch

    finish, join = _writer(args)
    selected, skipped, counts, report, version, finished = steps.render_and_finish(
        args, finish, join, check=args.validate)
    if not args.out:
        sys.stdout.write(finished[""])
        for c in skipped:
            if c.name in (args.components or ()):  # asked for by name: say why it is not there
                print(f"note: {c.name}: {steps.skip_reason(c, version)}", file=sys.stderr)
        return 0
    empty = (emit.to_json if args.output == "json" else emit.to_yaml)([])
    texts = {f"{c.name}.{args.output}": finished.get(c.name, empty) for c in selected}
    every = not args.components  # only a render of every component is the whole of DIR
    kubeadm = {}
    if every:
        v = steps.read_values(args)
        kubeadm = kubeadm_patch.files(dict(v, KUBE_VERSION=version), version, args.out)
    paths, removed = build_dir.write(args.out, {**texts, **kubeadm}, prune=every,
                                     known=build_dir.component_names(args.manifests) | set(kubeadm))
    written = dict(zip([c.name for c in selected], paths))
    print(summary(selected, skipped, counts, report, version, written))
    if kubeadm:  # stdout is the components' summary; these are notes
        print(f"note: kubeadm: {os.path.join(args.out, kubeadm_patch.FOLDER)}/ "
              f"({', '.join(sorted(p.rpartition('/')[2] for p in kubeadm))}); "
              f"read its {kubeadm_patch.NOTES_FILE}", file=sys.stderr)
    if removed:
        print(f"note: removed what an earlier render wrote and this one did not: {', '.join(removed)}",
              file=sys.stderr)
    return 0


def cmd_validate(args):
    selected, skipped, counts, report, version, _ = steps.render_and_finish(
        args, lambda objects: {}, lambda first, second: first)
    print(summary(selected, skipped, counts, report, version))
    return 0


def cmd_vars(args):
    from ..core import variables

    found = steps.load_variables(args)
    if steps.structured(args):
        steps.print_data(args, [{"name": v.name, "value": v.value, "origin": v.origin}
                                for v in variables.shown(found, args.names or None)])
        return 0
    for line in variables.describe(found, args.names or None):
        print(line)
    return 0


def cmd_components(args):
    variable_values = steps.read_values(args)
    version = steps.kube_version(args, variable_values)
    selected, skipped = steps.select_components(args, variable_values, version)
    if steps.structured(args):
        steps.print_data(args, [{"name": c.name, "depends": c.depends, "namespace": c.namespace,
                                 "context": c.context, "install": c.install, "minVersion": c.min_version,
                                 "maxVersion": c.max_version, "supported": c in selected,
                                 "description": c.description} for c in selected + skipped])
        return 0
    for c in selected + skipped:
        depends = ", ".join(c.depends) or "-"
        note = "" if c in selected else f"  (not for Kubernetes {version})"
        print(f"{c.name:<20} depends: {depends:<30} namespace: {c.namespace:<15} "
              f"context: {c.context}{note}")
    return 0


def cmd_admission_config(args):
    from ..core import podsecurity
    from ..nodes import kubeadm_patch

    v = steps.read_values(args)
    version = steps.kube_version(args, v)
    podsecurity.admission_configuration(dict(v, KUBE_VERSION=version))  # before 1.23: an error, not a skip
    paths = kubeadm_patch.write(args.out, dict(v, KUBE_VERSION=version), version)
    folder = os.path.join(args.out, kubeadm_patch.FOLDER)
    print(f"wrote {', '.join(paths)} (Kubernetes {version})")
    print(f"copy {folder}/{kubeadm_patch.ADMISSION_FILE} to {podsecurity.DEFAULT_PATH} on every control-plane "
          f"node, then give kubeadm {folder}/{kubeadm_patch.PATCH_FILE}: {folder}/{kubeadm_patch.NOTES_FILE} "
          "says how")
    return 0

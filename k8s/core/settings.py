"""What every command reads from its arguments: the variables and the target Kubernetes version.

The variables are `--vars` (Makefile.vars) with the per-cluster overlay
`--vars-file` or `$VARS_FILE` on top; the version is `--kube-version`, else
`$KUBE_VERSION` from the variables, else the newest one there are schemas for.
Every value the vars files set is checked against its shape (k8s.core.shapes).
"""

import os


def load_variables(args):
    """{name: Variable} from the files `args` names, every value of the shape its
    variable needs (k8s.core.shapes): a bad value is a UserError before any command
    uses one."""
    from . import shapes, variables

    overlay = args.vars_file or os.environ.get("VARS_FILE") or None
    found = variables.load_variables(args.vars, overlay=overlay)
    if getattr(args, "namespace", None) is not None:  # -n/--namespace: this run's K8S_NAMESPACE
        found["K8S_NAMESPACE"] = variables.Variable("K8S_NAMESPACE", args.namespace, "-n/--namespace")
    shapes.check(found)
    return found


def values(variable_map):
    """{name: value} of a {name: Variable} map."""
    return {name: v.value for name, v in variable_map.items()}


def read_values(args):
    """{name: value} of the variables `args` names."""
    return values(load_variables(args))


def kube_version(args, variable_values):
    """The Kubernetes version to render for when no server says it ("1.37")."""
    from ..errors import UserError
    from . import validate

    for value, source in ((args.kube_version, "--kube-version"), (variable_values.get("KUBE_VERSION"), "KUBE_VERSION")):
        if value:
            if not validate.VERSION.fullmatch(value.strip()):
                raise UserError(f"{source}: invalid Kubernetes version {value!r}, expected MAJOR.MINOR like 1.31")
            return value
    return validate.supported_versions()[-1]

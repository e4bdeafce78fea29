"""A component's own Secret from secrets/, applied as part of that component.

A component that names a Secret (`requiresSecret` in its component.yaml, e.g.
data-sync's ssh keys) gets it from `secrets/NAME.yml` when that file exists:
decrypted in memory, checked like `render.py secrets apply` checks it, and
added to the component's objects, so the component's tiers put it after the
namespace and before the workloads that mount it. Without the file the
component relies on the Secret already on the cluster (`install` leaves the
component out until one of the two exists).

The Secret keeps the component label `secrets` that `render.py secrets apply`
gives it, and stays out of the component's ApplySet: a run on a machine
without the file, or without the key to decrypt it, must never prune it, and
the two commands write the same labels.

Only the standard library is imported at module level; each function imports what it needs.
"""

import os

from .files import SECRETS_DIR, _path_of

def file_of(component, directory=SECRETS_DIR):
    """secrets/NAME.yml (or .yaml) of the component's Secret, or None when it has none or no file."""
    if not component.requires_secret:
        return None
    for name in (component.requires_secret, f"{component.requires_secret}.yaml"):
        path = _path_of(directory, name)
        if os.path.isfile(path) or os.path.islink(path):  # a dangling link is an error below, not "no file"
            return path
    return None


def owners(components):
    """(namespace, Secret name) -> component name, for the components that own a Secret."""
    return {(c.namespace, c.requires_secret): c.name for c in components if c.requires_secret}


def bundled_secrets(args, components, version):
    """The Secret objects of `components` found in secrets/, decrypted in memory.

    Parameters:
        args: the command's arguments (variables, secrets folder, kubeconfig are read from them).
        components: the selected components.
        version: the Kubernetes version to validate the Secrets for.

    Each object's `component` is its owner's; its data is `data` (base64), as sent.
    A file that holds anything but the component's one Secret is a UserError naming it.
    """
    from ..errors import UserError
    from .objects import COMPONENT, as_data
    from .workspace import Workspace

    directory = getattr(args, "secrets_dir", None) or SECRETS_DIR
    wanted = [(c, file_of(c, directory)) for c in components]
    wanted = [(c, path) for c, path in wanted if path]
    if not wanted:
        return []
    ws = Workspace(args)
    loaded = ws.decode_all(ws.decrypt_all([path for _, path in wanted]), version)
    objects = []
    for (component, path), item in zip(wanted, loaded):
        found = [(o.kind, o.namespace, o.name) for o in item.objects]
        if found != [("Secret", component.namespace, component.requires_secret)]:
            raise UserError(f"component {component.name} takes its Secret {component.namespace}/"
                            f"{component.requires_secret} from this file, which holds "
                            f"{', '.join(f'{k} {n}/{m}' for k, n, m in found) or 'nothing'}", file=path)
        for obj in item.objects:
            obj.component = component.name
            obj.data = as_data(obj.data)
            obj.component_label = COMPONENT
            objects.append(obj)
    return objects

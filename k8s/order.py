"""Order: which component, and which object, goes first.

Components are ordered by the `depends` of their component.yaml (dependencies
first, ties by name so the order is stable); deleting runs the exact reverse.
"""

from .errors import UserError


def component_order(components):
    """`components` sorted so every component follows the ones it depends on.

    Parameters:
        components: Component objects; their `depends` name other components.

    A dependency cycle is a UserError naming the cycle (`a -> b -> a`).
    """
    by_name = {c.name: c for c in components}
    done, visiting, ordered = set(), [], []

    def visit(name):
        if name in done:
            return
        if name in visiting:
            cycle = visiting[visiting.index(name):] + [name]
            raise UserError(f"dependency cycle between components: {' -> '.join(cycle)}")
        visiting.append(name)
        for dep in sorted(by_name[name].depends):
            if dep in by_name:
                visit(dep)
        visiting.pop()
        done.add(name)
        ordered.append(by_name[name])

    for name in sorted(by_name):
        visit(name)
    return ordered


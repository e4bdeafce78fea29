"""Components: settings in component.yaml, dependency order, version bounds."""

import pytest

from k8s.core import components, order
from k8s.errors import UserError


def make(tmp_path, name, settings=None, files=("a.yaml",)):
    folder = tmp_path / name
    folder.mkdir(parents=True)
    for f in files:
        (folder / f).write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    if settings is not None:
        (folder / "component.yaml").write_text(settings)
    return folder


def test_settings_are_read_with_variables_and_defaults(tmp_path):
    make(tmp_path, "app", "depends: [base]\nnamespace: $NS\ncontext: user\nminVersion: 1.25\n",
         files=("b.yaml", "a.yaml.j2", "README.md"))
    make(tmp_path, "base")
    found = components.discover(str(tmp_path), {"NS": "apps", "K8S_NAMESPACE": "worker"})
    app, base = found
    assert (app.name, app.depends, app.namespace, app.context, app.min_version) == \
        ("app", ["base"], "apps", "user", "1.25")
    assert [f.rsplit("/", 1)[1] for f in app.files] == ["a.yaml.j2", "b.yaml"]
    assert (base.namespace, base.context, base.install) == ("worker", "admin", True)


def test_dependency_order_puts_dependencies_first_and_reverse_is_delete_order(tmp_path):
    make(tmp_path, "a", "depends: [c]\n")
    make(tmp_path, "b")
    make(tmp_path, "c", "depends: [b]\n")
    found = components.discover(str(tmp_path), {})
    assert [c.name for c in order.component_order(found)] == ["b", "c", "a"]


def test_a_dependency_cycle_names_the_cycle(tmp_path):
    make(tmp_path, "a", "depends: [b]\n")
    make(tmp_path, "b", "depends: [a]\n")
    with pytest.raises(UserError, match=r"^dependency cycle between components: a -> b -> a$"):
        order.component_order(components.discover(str(tmp_path), {}))


@pytest.mark.parametrize("settings, message", [
    ("colour: blue\n", "unknown setting 'colour'"),
    ("context: root\n", "context must be one of admin, user, not 'root'"),
    ("depends: base\n", "setting 'depends' must be a list"),
    ("depends: [ghost]\n", "depends on unknown component 'ghost'"),
    ("minVersion: one\n", "invalid Kubernetes version 'one'"),
])
def test_bad_settings_are_one_line_errors_naming_the_file(tmp_path, settings, message):
    folder = make(tmp_path, "app", settings)
    with pytest.raises(UserError) as err:
        components.discover(str(tmp_path), {})
    assert str(err.value).startswith(f"{folder}/component.yaml")
    assert message in str(err.value)


@pytest.mark.parametrize("version, supported", [("1.24", False), ("1.25", True), ("1.30", True),
                                                ("1.31", False)])
def test_version_bounds(tmp_path, version, supported):
    make(tmp_path, "app", 'minVersion: "1.25"\nmaxVersion: "1.30"\n')
    [app] = components.discover(str(tmp_path), {})
    assert app.supports(version) is supported

"""Render: manifest files plus variables -> Kubernetes objects.

`*.yaml` files take `$NAME`/`${NAME}` references (see `substitute`); the
values land inside the scalar they were written in and can never add YAML
structure. When every value a file uses is inert (no quotes, `#`, `: `,
newlines, ...), plain text substitution is exactly that and the fast parser
reads the result; otherwise the file is parsed first and each scalar is
substituted on its own. `*.yaml.j2` files are Jinja2 templates with
StrictUndefined. Documents decode as kubectl decodes them (`kubeyaml`).
"""

import contextlib
import gc
import re
from dataclasses import dataclass

from . import emit, kinds, kubeyaml, substitute
from .components import version_tuple
from .files import read_text
from ..errors import UserError, raise_all


@dataclass(slots=True)
class Source:
    """Where an object came from: file, document and its first line."""

    file: str
    line: int
    doc_index: int
    text: str  # the text the document was parsed from, to find field lines later
    within: tuple = ()  # the path of the object in its document: ("items", 2) in a List
    span: tuple | None = None  # (start, end) of its document in `text`, when that text is kept

    def locate(self, path):
        """Line of the field at JSON `path` (keys and list indexes), or None."""
        return kubeyaml.line_of(self.text, self.file, self.doc_index, [*self.within, *path])

    def item(self, index):
        """The source of item `index` (0-based) of the List this document is."""
        within = ("items", index)
        line = kubeyaml.line_of(self.text, self.file, self.doc_index, list(within)) or self.line
        return Source(self.file, line, self.doc_index, self.text, within, self.span)


@dataclass(slots=True)
class RenderedObject:
    """One Kubernetes object, its component and its source."""

    data: dict
    component: str
    source: Source
    default_namespace: str | None = None  # for kinds whose scope only the server knows
    # The component label it is written with when not its component's (a Secret from secrets/
    # keeps `secrets`): then it is in no ApplySet, and no prune of the component touches it.
    component_label: str | None = None
    # Whether `data` is still what its document's text decodes to: a `*.yaml` document that
    # only had its variables substituted, not a List, and changed by nothing since.
    as_written: bool = False

    def written(self, data=None):
        """What `template` writes for it: its document's text while that decodes to `data`
        (default: its own), else `data` for the YAML writer."""
        data = self.data if data is None else data
        if self.as_written and data is self.data:
            return emit.Kept(kubeyaml.document_text(self.source.text, self.source.span))
        return data

    @property
    def api_version(self):
        return self.data.get("apiVersion", "")

    @property
    def kind(self):
        return self.data.get("kind", "")

    @property
    def group(self):
        return self.api_version.rpartition("/")[0]

    @property
    def name(self):
        return (self.data.get("metadata") or {}).get("name", "")

    @property
    def namespace(self):
        return (self.data.get("metadata") or {}).get("namespace")

    @property
    def key(self):
        """Identity on the server: group, kind, namespace, name."""
        data = self.data  # the properties above, inlined: this runs for every object of a render
        meta = data.get("metadata") or {}
        return (data.get("apiVersion", "").rpartition("/")[0], data.get("kind", ""),
                meta.get("namespace") or "", meta.get("name", ""))

    @property
    def ref(self):
        """`Kind/name` for messages."""
        return f"{self.kind}/{self.name}"

    @property
    def display(self):
        """kubectl's `kind.group/name` (`deployment.apps/web`, `configmap/settings`)."""
        group = f".{self.group}" if self.group else ""
        return f"{self.kind.lower()}{group}/{self.name}"


def render_file(path, variables):
    """Documents of one manifest file, the text they were parsed from, and whether that
    text is as written but for its variables (each document's text decodes to it).

    Parameters:
        path: a `*.yaml` or `*.yaml.j2` file.
        variables: name -> value.
    """
    text, as_written, docs = _prepared(path, read_text(path), variables)
    return (kubeyaml.load_all(text, path) if docs is None else docs), text, as_written


def _prepared(path, text, variables):
    """(the text to decode, whether it is as written but for its variables, its documents
    when substituting had to decode them already, else None) of a manifest's `text`."""
    if path.endswith(".j2"):
        return render_jinja(text, path, variables), False, None
    expanded, inert = substitute.expand_inert(text, variables, path)  # raises on undefined names
    if inert:
        return expanded, True, None
    marked, unmark = substitute.without_braces(text)  # `[--x, ${V}]` is a list, not a mapping
    docs = kubeyaml.load_all_substituting(
        marked, path, lambda scalar: substitute.expand(unmark(scalar), variables, path))
    return marked, False, docs


def render_jinja(text, path, variables):
    """Jinja2 output of `text`; an undefined name is a UserError with its line."""
    import jinja2  # only when a component has templates: the import costs ~40 ms

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             autoescape=False)
    env.policies["json.dumps_function"] = _json_for_yaml  # what `tojson` writes
    context = dict(variables)
    if "KUBE_VERSION" in variables:  # `{% if kube_minor >= 25 %}`: numbers compare right
        context["kube_minor"] = version_tuple(variables["KUBE_VERSION"])[1]
    try:
        return env.from_string(text).render(**context)
    except jinja2.TemplateSyntaxError as err:
        raise UserError(f"template syntax: {err.message}", file=path, line=err.lineno)
    except jinja2.UndefinedError as err:
        raise UserError(f"undefined variable in template: {err.message}",
                        file=path, line=_template_line(err))
    except Exception as err:  # a filter or method failing on a value is still bad input
        raise UserError(f"template error: {err}", file=path, line=_template_line(err))


# A surrogate pair json.dumps escapes a character beyond U+FFFF as, its backslash not escaped itself.
_SURROGATE_PAIR = re.compile(r"(?<!\\)((?:\\\\)*)\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})")


def _json_for_yaml(value, **kwargs):
    """json.dumps for a template's `tojson`: JSON that is also a YAML (and kubectl) string.
    YAML refuses the escapes of a surrogate pair ("\\ud800\\udc00"), so a character beyond
    U+FFFF is written as itself, which JSON and YAML both read."""
    import json

    def itself(m):
        return m[1] + chr(0x10000 + (int(m[2], 16) - 0xD800 << 10) + int(m[3], 16) - 0xDC00)

    return _SURROGATE_PAIR.sub(itself, json.dumps(value, **kwargs))


def _template_line(err):
    """The template line of a Jinja2 runtime error (Jinja rewrites its traceback)."""
    line, tb = None, err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render_components(components, variables, vendor_root="vendor"):
    """Every object of `components`, in component, file and document order.

    Parameters:
        components: Component objects, already in the order wanted.
        variables: name -> value.
        vendor_root: the folder `make vendor` writes; a component's imports
            come first, as they are (never substituted), then its own files.

    All problems of all files are collected and raised together, so one run
    shows every undefined variable and every bad document.
    """
    with paused_gc():
        return _render_components(components, variables, vendor_root)


@contextlib.contextmanager
def paused_gc():
    """Decoded manifests are trees without reference cycles, kept until the command ends.
    While thousands are built the cycle collector only walks them again and again (a
    quarter of the time), and would walk them all once more when re-enabled: so it is
    paused, and what exists then is frozen out of every later collection (a long-lived
    process that renders again and again, like the test suite, may `gc.unfreeze()`)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _render_components(components, variables, vendor_root):
    objects, crds = render_units(units(components), variables, vendor_root)
    settle(objects, components, crds)
    return objects


def units(components):
    """The pieces of work of a render, in order: (component, None) for its imports, then
    (component, path) for each of its files. A run in parts gives each part a slice."""
    return [(c, path) for c in components for path in ([None] if c.imports else []) + list(c.files)]


def render_units(work, variables, vendor_root):
    """(objects, the CustomResourceDefinitions among them) of the `units` in `work`, images
    mirrored; not namespaced yet (that needs every CRD of the set, see `settle`). All
    problems of all files are raised together, in the order of the files.

    A step at a time over all the files (read every file, then substitute every one, then
    decode every one ...), not file after file: each step's code stays in the CPU's caches,
    which takes a tenth off the render of a large tree."""
    problems = {}  # the index of a unit in `work`: its errors

    def each(step, values):
        """step(unit, value) of each unit that has no problem yet, else None."""
        out = []
        for i, (unit, value) in enumerate(zip(work, values)):
            try:
                out.append(None if i in problems else step(unit, value))
            except UserError as err:
                problems[i] = getattr(err, "errors", [err])
                out.append(None)
        return out

    # An import (a unit without a path) is read and decoded as its objects are made.
    texts = each(lambda unit, _: unit[1] and read_text(unit[1]), work)
    prepared = each(lambda unit, text: unit[1] and _prepared(unit[1], text, variables), texts)
    undecoded = [i for i, ready in enumerate(prepared) if ready and ready[2] is None]
    decoded = kubeyaml.load_each([prepared[i][0] for i in undecoded], [work[i][1] for i in undecoded])
    for i, docs in zip(undecoded, decoded):
        prepared[i] = (*prepared[i][:2], docs)  # documents, or the UserError of the file
    objects, crds = [], []

    def make(unit, ready):
        component, path = unit
        if path is None:
            return _imported(component, vendor_root, crds)
        text, as_written, docs = ready
        if isinstance(docs, UserError):
            raise docs
        return _objects(docs, text, path, component.name, as_written, crds)

    for made in each(make, prepared):
        objects.extend(made or ())
    raise_all([error for i in sorted(problems) for error in problems[i]])
    _mirror_images(objects, variables.get("IMAGE_MIRROR", ""))
    return objects, crds


def settle(objects, components, crds):
    """Give each object its component's namespace (namespaced kinds only: `crds` are the
    set's CRDs, which say for their kinds), then refuse two objects with one identity.
    A cluster-scoped object must have no namespace (the server would drop it, and two
    such objects clash). One pass: the objects are many, and each is touched once.
    Returns the identities (`RenderedObject.key`) of the objects."""
    namespaces = {c.name: c.namespace for c in components}
    errors, duplicates, scopes, seen = [], [], {}, {}
    for obj in objects:
        obj.default_namespace = default = namespaces[obj.component]
        data = obj.data
        meta, api_version, kind = data["metadata"], data["apiVersion"], data["kind"]
        namespaced = scopes.get((api_version, kind), scopes)
        if namespaced is scopes:  # kinds.is_namespaced reads every CRD: once per kind
            namespaced = scopes[api_version, kind] = kinds.is_namespaced(api_version, kind, crds)
        namespace = meta.get("namespace")
        if namespace:
            if namespaced is False:
                errors.append(UserError(f"{kind} is cluster-scoped: remove metadata.namespace",
                                        file=obj.source.file, line=obj.source.line, obj=obj.ref))
        elif default and namespaced:
            meta["namespace"] = namespace = default
            obj.as_written = False
        first = seen.setdefault((api_version.rpartition("/")[0], kind, namespace or "", meta["name"]), obj)
        if first is not obj:
            duplicates.append(UserError(
                f"duplicate object, first defined at {first.source.file}:{first.source.line}",
                file=obj.source.file, line=obj.source.line, obj=obj.ref))
    raise_all(errors)
    raise_all(duplicates)
    return seen.keys()


def _imported(component, vendor_root, crds):
    """Objects of a component's vendored upstream files, checked against vendor/lock.yaml."""
    from . import vendor

    objects = []
    for path, text in vendor.documents(component, vendor_root):
        objects.extend(_objects(kubeyaml.load_all(text, path), text, path, component.name, crds=crds))
    return objects


def _mirror_images(objects, mirror):
    """IMAGE_MIRROR: workload images come from that registry (the rule is in k8s/images.py)."""
    if mirror:
        from . import images

        mirror = images.check_mirror(mirror)
        for obj in objects:
            if images.rewrite(obj.data, mirror):
                obj.as_written = False


def _objects(docs, text, path, component, as_written=False, crds=None):
    """The objects of a file's documents; the CRDs among them are added to `crds` too."""
    crds = [] if crds is None else crds
    if not path.endswith(".j2") and all(d.data is None for d in docs):
        # kubectl says "no objects passed to apply"; a template may render nothing.
        raise UserError("no Kubernetes objects in file", file=path)
    objects, errors = [], []
    for doc in docs:
        data = doc.data
        if data is None:
            continue  # empty documents are skipped, as kubectl does
        kept = as_written and doc.span is not None
        source = Source(path, doc.line, doc.index, text, (), doc.span if kept else None)
        for data, source in _flatten(data, source, errors):
            objects.append(RenderedObject(data, component, source, as_written=kept and not source.within))
            if data["kind"] == "CustomResourceDefinition":
                crds.append(data)
    raise_all(errors)
    return objects


def _flatten(data, source, errors):
    """(object, source) of one document: itself, or each item of a `kind: List`."""
    if not isinstance(data, dict):
        errors.append(UserError(f"document {source.doc_index + 1} is {_what(data)}, "
                                "expected a Kubernetes object", file=source.file, line=source.line))
        return []
    if data.get("kind") == "List" and data.get("apiVersion") == "v1":
        items = data.get("items") or []
        if not isinstance(items, list):
            errors.append(UserError(f"the items of a List must be a list, not {_what(items)}",
                                    file=source.file, line=source.line))
            return []
        sources = [source.item(n) for n in range(len(items))]
        return [(i, where) for n, (i, where) in enumerate(zip(items, sources), 1)
                if _is_object(i, where, errors, n)]
    return [(data, source)] if _is_object(data, source, errors) else []


def _is_object(data, source, errors, item=None):
    """Whether `data` has what every object needs; else an error naming what is wrong.

    `item`: its 1-based position when it is an item of a List."""
    where = f"item {item} of the List: " if item else ""
    if not isinstance(data, dict):
        errors.append(UserError(f"{where}{_what(data)}, expected a Kubernetes object",
                                file=source.file, line=source.line))
        return False
    meta = data.get("metadata")
    if (type(data.get("apiVersion")) is str and type(data.get("kind")) is str and type(meta) is dict
            and type(meta.get("name")) is str and data["apiVersion"] and data["kind"] and meta["name"]
            and type(meta.get("namespace", "")) is str):
        return True
    fields = {"apiVersion": data.get("apiVersion"), "kind": data.get("kind")}
    if isinstance(meta, dict):
        fields["metadata.name"] = meta.get("name")
        if meta.get("namespace") not in (None, ""):  # both mean "not set", as in kubectl
            fields["metadata.namespace"] = meta["namespace"]
    elif meta is not None:
        fields["metadata"] = meta
    else:
        fields["metadata.name"] = None
    missing = [f for f, v in fields.items() if v is None or v == ""]
    mistyped = [f"{f} must be {'a mapping' if f == 'metadata' else 'a string'}, not {_what(v)}"
                for f, v in fields.items() if v not in (None, "") and type(v) is not (dict if f == "metadata" else str)]
    problems = ([f"missing {', '.join(missing)}"] if missing else []) + mistyped
    kind, name = fields["kind"], fields.get("metadata.name")
    errors.append(UserError(where + "; ".join(problems), file=source.file, line=source.line,
                            obj=f"{kind if type(kind) is str and kind else '?'}/"
                                f"{name if type(name) is str and name else '?'}"))
    return False


def _what(value):
    return {list: "a list", str: "a string", dict: "a mapping", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)



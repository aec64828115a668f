"""Naming what the chain search found: each edge as Python would write it, the root in words, the graph.

Pure functions over live objects, no state: how a parent refers to a child (`.name`, `[key]`, `[3]`,
`(closure variable x)`), the steps of a path with attribute dicts folded into `.name`, the words a user
reads for each kind of root, and a show_backrefs-style Graphviz source of the neighbourhood. Loaded by the
backrefs probe under a private module name; stdlib only.
"""

from __future__ import annotations

import gc
import sys
import types
from collections import deque

GRAPH_NODES = 40
ELEMENT_SAMPLE = 50

# -- reading the target's objects without running its code -------------------------------------------------
# Attribute access runs the target's code: a metaclass's __getattribute__ or property for a class, a proxy's
# __getattr__ or `__class__` property for an instance (isinstance asks `obj.__class__`), `==` and hash() call
# __eq__ and __hash__, repr() calls __repr__. Everything below reads through CPython's own C descriptors,
# compares by identity, tests types with issubclass(type(obj), C) for exact-`type` classes C only, and calls
# repr() only on exact builtin types.
_TYPE_ATTR = type.__dict__
_T_MODULE = _TYPE_ATTR["__module__"].__get__
_T_QUALNAME = _TYPE_ATTR["__qualname__"].__get__
_T_NAME = _TYPE_ATTR["__name__"].__get__
_T_MRO = _TYPE_ATTR["__mro__"].__get__
_T_DICT = _TYPE_ATTR["__dict__"].__get__  # a read-only view of the class's own dict
_M_DICT = types.ModuleType.__dict__["__dict__"].__get__
_C_DESCRIPTORS = (types.GetSetDescriptorType, types.MemberDescriptorType)
_C_METHODS = (types.MethodDescriptorType, types.WrapperDescriptorType, types.BuiltinFunctionType)
_PLAIN = (str, int, float, bool, bytes, type(None))
_MAXLEN = deque.__dict__["maxlen"].__get__  # the deque's own C getter: its bound, or None


def type_module(tp):
    try:
        m = _T_MODULE(tp)
    except Exception:
        return ""
    return m if type(m) is str else ""


def type_name(tp):
    try:
        return _T_NAME(tp)
    except Exception:
        return "?"


def type_qualname(tp):
    try:
        q = _T_QUALNAME(tp)
    except Exception:
        return type_name(tp)
    return q if type(q) is str else type_name(tp)


def basic_size(tp):
    """The C size of one object of the type (its __basicsize__), read from the type's own getter."""
    try:
        size = _TYPE_ATTR["__basicsize__"].__get__(tp)
    except Exception:
        return 0
    return size if type(size) is int else 0


def type_mro(tp):
    try:
        return _T_MRO(tp)
    except Exception:
        return (tp,)


def class_dict(tp):
    """The class's own namespace (a mappingproxy), read without the metaclass's code."""
    try:
        return _T_DICT(tp)
    except Exception:
        return {}


def module_dict(module):
    if not issubclass(type(module), types.ModuleType):
        return None
    try:
        d = _M_DICT(module)
    except Exception:
        return None
    return d if type(d) is dict else None


def one_of(tp, classes):
    """`tp in classes` by identity: `in` would call a metaclass's __eq__."""
    return any(c is tp for c in classes)


def is_a(obj, cls):
    """isinstance without asking the object its __class__ (a proxy answers with its own code)."""
    return issubclass(type(obj), cls)


def _descriptor(tp, name):
    for klass in type_mro(tp):
        d = class_dict(klass)
        if name in d:
            return d[name]
    return None


def instance_dict(obj):
    """The object's __dict__ through the C descriptor, or None (no dict, or a class that overrides it)."""
    descr = _descriptor(type(obj), "__dict__")
    if not one_of(type(descr), _C_DESCRIPTORS):
        return None
    try:
        d = descr.__get__(obj)
    except Exception:
        return None
    return d if type(d) is dict else None


def slot_value(obj, name, default=None):
    """An attribute stored in a __slots__ slot or C member, or found in the instance dict; never computed."""
    descr = _descriptor(type(obj), name)
    if one_of(type(descr), _C_DESCRIPTORS):
        try:
            return descr.__get__(obj)
        except Exception:
            return default
    d = instance_dict(obj)
    return d.get(name, default) if d is not None else default


def c_size(value):
    """sys.getsizeof when the type computes it in C; None when it would run the target's Python code."""
    method = _descriptor(type(value), "__sizeof__")
    if method is not None and not one_of(type(method), _C_METHODS):
        return None
    try:
        return sys.getsizeof(value)
    except Exception:
        return None


def type_key(tp):
    module = type_module(tp)
    name = type_qualname(tp)
    return name if module == "builtins" else f"{module}.{name}"


def short(text, limit=40):
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def obj_repr(obj):
    tp = type(obj)
    try:
        if one_of(tp, (list, tuple, set, frozenset, dict)):
            return f"{type_name(tp)} of {len(obj)}"
        if tp is deque:
            # the bound is what the analysis reads: a deque with a maxlen fills and then stays that long
            maxlen = _MAXLEN(obj)
            return f"deque of {len(obj)}" + (f" (maxlen={maxlen})" if type(maxlen) is int else "")
        if is_a(obj, types.ModuleType):
            d = module_dict(obj) or {}
            name = d.get("__name__")
            return f"module {name if type(name) is str else '?'}"
        if is_a(obj, type):
            return f"class {type_key(obj)}"
        if tp is types.FunctionType:
            return f"function {obj.__qualname__}"
        if one_of(tp, _PLAIN):
            return short(repr(obj), 30 if tp is str or tp is bytes else 40)
        key = type_key(tp)
        text = f"<{short(key, 30)} at 0x{id(obj):x}>"
        if key.startswith("cachetools."):
            # its bound, as cachetools.Cache stores it (read from the instance dict, never computed)
            maxsize = (instance_dict(obj) or {}).get("_Cache__maxsize")
            if type(maxsize) is int:
                text += f" (maxsize={maxsize})"
        return text
    except Exception:
        return type_name(tp)


def key_text(key):
    if one_of(type(key), _PLAIN):
        return short(repr(key), 40)
    return f"<{type_name(type(key))}>"


def newest_elements(container):
    """The newest entries of a builtin container (at most ELEMENT_SAMPLE), for what it holds."""
    try:
        if type(container) is list:
            return container[-ELEMENT_SAMPLE:]
        if type(container) is dict:
            values = []
            for v in reversed(container.values()):
                values.append(v)
                if len(values) >= ELEMENT_SAMPLE:
                    break
            return values
        values = []
        for v in container:
            values.append(v)
            if len(values) >= ELEMENT_SAMPLE:
                break
        return values
    except RuntimeError:  # changed size while we looked
        return []


def edge_name(parent, child):
    """How `parent` refers to `child`, as it would be written in Python."""
    try:
        return _edge_unsafe(parent, child)
    except Exception:
        return "(reference)"


def _edge_unsafe(p, c):
    tp = type(p)
    if type_name(tp) == "_lru_cache_wrapper":
        d = instance_dict(p)
        if c is d:
            return "__dict__"
        if d is not None and c is d.get("__wrapped__"):
            return ".__wrapped__"
        return "(cache)" if type(c) is dict else "(internal)"
    if type_name(tp) == "_local" and type(c) is dict:
        return "(per-thread storage)"
    # Flags, not enumerate(): bools are singletons, so tracemalloc has nothing to trace per element.
    if is_a(p, dict):
        hits = [v is c for v in dict.values(p)]
        if True in hits:
            return f"[{key_text(list(dict.keys(p))[hits.index(True)])}]"
        return "(key)" if True in [k is c for k in dict.keys(p)] else "(value)"
    if is_a(p, (list, tuple)):
        hits = [v is c for v in (list.__iter__(p) if is_a(p, list) else tuple.__iter__(p))]
        if True in hits:
            return f"[{hits.index(True)}]"
    if is_a(p, (set, frozenset)):
        return "(member)"
    if tp is types.CellType:
        return ".cell_contents"
    if tp is types.MethodType:
        return ".__self__" if p.__self__ is c else ".__func__"
    if tp is types.FunctionType:
        if p.__closure__ is c:
            return ".__closure__"
        for name in ("__defaults__", "__kwdefaults__", "__dict__", "__globals__"):
            if getattr(p, name, None) is c:
                return "." + name
    if tp is types.FrameType:
        for k, v in p.f_locals.items():
            if v is c:
                return f"(local {k})"
        if p.f_back is c:
            return ".f_back"
    if tp is types.TracebackType:
        return ".tb_frame" if p.tb_frame is c else ".tb_next"
    if is_a(p, BaseException):
        for name in ("__traceback__", "__context__", "__cause__", "args"):
            if BaseException.__dict__[name].__get__(p) is c:
                return "." + name
    if is_a(p, type):
        own = class_dict(p)
        if type(c) is dict and c.get("__module__") is own.get("__module__"):
            return "__dict__"
        for k, v in own.items():
            if v is c:
                return "." + k
        for name in ("__mro__", "__bases__"):
            if _TYPE_ATTR[name].__get__(p) is c:
                return "." + name
    d = instance_dict(p)
    if d is c:
        return "__dict__"
    if d is not None:
        for k, v in d.items():
            if v is c:
                return f".{k}"
    for klass in type_mro(tp):
        slots = class_dict(klass).get("__slots__", ())
        for name in (slots,) if type(slots) is str else slots if one_of(type(slots), (tuple, list)) else ():
            if type(name) is str and slot_value(p, name) is c:
                return f".{name}"
    return "(reference)"


def path_steps(path, edges=None):
    """(edge, type, repr) from each node to the next; attribute dicts folded into `.name`.

    `edges`, when given, names each step already (a path followed by name, not found by identity).
    """
    if edges is not None:
        return [
            {"edge": edge, "type": type_key(type(c)), "repr": obj_repr(c)}
            for edge, c in zip(edges, path[1:])  # noqa: B905 (guest code for Python 3.8+)
        ]
    steps = []
    i = 0
    while i < len(path) - 1:
        p, c = path[i], path[i + 1]
        edge = edge_name(p, c)
        if edge == "__dict__" and i + 2 < len(path):
            inner = edge_name(c, path[i + 2])
            edge = "." + inner[2:-2] if inner.startswith("['") and inner.endswith("']") else inner
            i += 1
            c = path[i + 1]
        elif edge == ".__closure__" and i + 3 < len(path):
            idx = edge_name(c, path[i + 2])
            names = p.__code__.co_freevars
            try:
                edge = f"(closure variable {names[int(idx[1:-1])]})"
            except (ValueError, IndexError):
                edge = "(closure)"
            i += 2
            c = path[i + 1]
        elif edge == "(per-thread storage)" and i + 3 < len(path):
            inner = edge_name(path[i + 2], path[i + 3])
            edge = "." + inner[2:-2] if inner.startswith("['") else inner
            edge += " (in one thread)"
            i += 2
            c = path[i + 1]
        steps.append({"edge": edge, "type": type_key(type(c)), "repr": obj_repr(c)})
        i += 1
    return steps


def describe(kind, path, modules, frames, mode, edges=None):
    """The chain a user reads for `path` (root first): the root in words, then one step per edge."""
    root = path[0]
    steps = path_steps(path, edges)
    info = {}
    if kind == "module-global":
        module = modules[id(root)]
        attr = steps[0]["edge"] if steps else ""
        name = attr[2:-2] if attr.startswith("['") else attr
        words = f"module global {module}.{name}"
        head = f"module {module}"
        if steps:
            steps[0]["edge"] = "." + name
        info["module"] = module
        info["name"] = name
        found = dict.get(root, "__file__") if type(root) is dict else None  # the module's namespace
        if type(found) is str:
            info["file"] = found  # where the lines that add to it are read (analysis/keepers.py)
        if module == "gc" and name == "garbage":
            kind = "gc-garbage"
            words = "gc.garbage (objects the collector found in cycles but could not free)"
    elif kind == "class-attribute":
        cls = type_key(root)
        attr = steps[0]["edge"] if steps else ""
        words = f"class attribute {cls}{attr}"
        head = f"class {cls}"
    elif kind == "frame-local":
        name, function, thread, _, filename, line = frames["locals"][id(root)]
        words = f"local variable {name} of {function}() in {thread}"
        head = f"{function}() frame in {thread}"
        steps.insert(0, {"edge": f"(local {name})", "type": type_key(type(root)), "repr": obj_repr(root)})
        info.update(function=function, variable=name, thread=thread, file=filename, line=line)
    elif kind == "lru-cache":
        d = instance_dict(root) or {}
        wrapped = d.get("__wrapped__")
        qual = f"{_text(d.get('__module__'))}.{_text(d.get('__qualname__'))}"
        code = wrapped.__code__ if type(wrapped) is types.FunctionType else None
        first = code.co_varnames[0] if code is not None and code.co_argcount else ""
        try:
            maxsize, currsize = type(root).cache_info(root)[2:4]  # the C wrapper's own method
        except Exception:
            maxsize = currsize = None
        words = f"cache of functools.lru_cache on {qual}"
        head = f"lru_cache {qual}"
        info.update(function=qual, first_argument=first, maxsize=maxsize, currsize=currsize)
    elif kind == "thread-local":
        where = global_name(root, modules)
        words = f"thread-local {where}" if where else "a threading.local"
        head = words
        if steps:
            words += steps[0]["edge"].split(" ")[0]
    elif kind == "logger":
        name = _text(slot_value(root, "name"))
        attr = steps[0]["edge"] if steps else ""
        words = f"handlers of logger {name!r}" if attr == ".handlers" else f"logger {name!r}"
        head = f"logger {name!r}"
    else:  # closure
        # the closure's tuple is found among the cell's referrers: only inside the fence (see backrefs_probe)
        owner = cell_owner(root) if frames.get("tuples") else ""
        words = f"closure cell of {owner}" if owner else "a closure cell"
        head = words
    chain = [head] + [f"{s['edge']} ({s['type']})" for s in steps]
    if mode == "container":
        chain.append(last_element(path[-1]))
    return {"status": "rooted", "root": {"kind": kind, "words": words, **info}, "chain": chain, "steps": steps}


def _text(value):
    return value if type(value) is str else "?"


def last_element(container):
    """The step from a growing container to its newest element, e.g. `[15999] (numpy.ndarray)`."""
    elements = newest_elements(container)
    if not elements:
        return "[…] (?)"
    name = type_key(type(elements[-1]))
    if type(container) is list:
        return f"[{len(container) - 1}] ({name})"
    if type(container) is dict:
        for key in reversed(container):
            return f"[{key_text(key)}] ({name})"
    return f"(member) ({name})"


def global_name(obj, modules):
    for did, name in modules.items():
        d = module_dict(sys.modules.get(name))
        if d is None or id(d) != did:
            continue
        for k, v in list(d.items()):
            if v is obj:
                return f"{name}.{_text(k)}"
    return ""


def cell_owner(cell):
    for tup in gc.get_referrers(cell):
        if type(tup) is not tuple:
            continue
        for fn in gc.get_referrers(tup):
            if type(fn) is types.FunctionType and fn.__closure__ is tup:
                hits = [c is cell for c in tup]  # identity: a cell's == compares what the cells hold
                try:
                    name = fn.__code__.co_freevars[hits.index(True)]
                except (ValueError, IndexError):
                    name = "?"
                return f"{_text(fn.__module__)}.{fn.__qualname__} (variable {name})"
    return ""


def graph(keep, down, order, path, modules):
    """A show_backrefs-style Graphviz source: referrers above what they refer to, the chain in bold."""
    on_chain = [oid for oid in path if oid in keep]
    shown = list(dict.fromkeys(on_chain + order[:GRAPH_NODES]))
    samples = {oid for oid in order if down.get(oid) is None}
    lines = [
        "digraph backrefs {",
        '  graph [fontname="Helvetica", fontsize=10];',
        '  node [shape=box, style="rounded,filled", fillcolor="#f4f4f4", fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9, color="#888888"];',
    ]
    for oid in shown:
        obj = keep[oid]
        label = f"{dot_text(type_key(type(obj)))}\\n{dot_text(obj_repr(obj))}"
        if oid in modules:
            label = f"module {dot_text(modules[oid])}\\n(globals)"
        color = "#f8d0d0" if oid in samples else "#f4f4f4"
        if on_chain and oid == on_chain[0] and oid not in samples:
            color = "#c8e6c9"
        width = ", penwidth=2" if oid in on_chain else ""
        lines.append(f'  o{oid} [label="{label}", fillcolor="{color}"{width}];')
    visible = set(shown)
    chain_edges = set(zip(on_chain, on_chain[1:]))  # noqa: B905, RUF007 (guest code for Python 3.8+)
    for oid in shown:
        child = down.get(oid)
        if child is None or child not in visible:
            continue
        edge = dot_text(edge_name(keep[oid], keep[child]))
        bold = ', penwidth=2, color="#333333"' if (oid, child) in chain_edges else ""
        lines.append(f'  o{oid} -> o{child} [label="{edge}"{bold}];')
    for parent, child in chain_edges:  # a cycle's closing edge is not a down pointer
        if down.get(parent) != child:
            edge = dot_text(edge_name(keep[parent], keep[child]))
            lines.append(f'  o{parent} -> o{child} [label="{edge}", penwidth=2, color="#333333"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_text(text):
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")

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

GRAPH_NODES = 40
ELEMENT_SAMPLE = 50


def type_key(tp):
    module = getattr(tp, "__module__", None) or ""
    name = getattr(tp, "__qualname__", None) or tp.__name__
    return name if module == "builtins" else f"{module}.{name}"


def short(text, limit=40):
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def obj_repr(obj):
    try:
        if isinstance(obj, (list, tuple, set, frozenset, dict)):
            return f"{type(obj).__name__} of {len(obj)}"
        if isinstance(obj, types.ModuleType):
            return f"module {obj.__name__}"
        if isinstance(obj, type):
            return f"class {type_key(obj)}"
        if isinstance(obj, (types.FunctionType, types.MethodType)):
            return f"{type(obj).__name__} {getattr(obj, '__qualname__', '?')}"
        if isinstance(obj, (str, bytes)):
            return short(repr(obj), 30)
        return short(object.__repr__(obj), 30) if len(repr(obj)) > 60 else short(repr(obj), 40)
    except Exception:
        return type(obj).__name__


def key_text(key):
    if isinstance(key, (str, int, float, bool)) or key is None:
        return short(repr(key), 40)
    return f"<{type(key).__name__}>"


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
    if tp.__name__ == "_lru_cache_wrapper":
        if c is getattr(p, "__dict__", None):
            return "__dict__"
        if c is getattr(p, "__wrapped__", None):
            return ".__wrapped__"
        return "(cache)" if type(c) is dict else "(internal)"
    if tp.__name__ == "_local" and type(c) is dict:
        return "(per-thread storage)"
    # Flags, not enumerate(): bools are singletons, so tracemalloc has nothing to trace per element.
    if isinstance(p, dict):
        hits = [v is c for v in dict.values(p)]
        if True in hits:
            return f"[{key_text(list(dict.keys(p))[hits.index(True)])}]"
        return "(key)" if True in [k is c for k in dict.keys(p)] else "(value)"
    if isinstance(p, (list, tuple)):
        hits = [v is c for v in (list.__iter__(p) if isinstance(p, list) else tuple.__iter__(p))]
        if True in hits:
            return f"[{hits.index(True)}]"
    if isinstance(p, (set, frozenset)):
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
    if isinstance(p, BaseException):
        for name in ("__traceback__", "__context__", "__cause__", "args"):
            if getattr(p, name, None) is c:
                return "." + name
    if isinstance(p, type):
        if type(c) is dict and c.get("__module__") == p.__module__:
            return "__dict__"
        for k, v in p.__dict__.items():
            if v is c:
                return "." + k
        for name in ("__mro__", "__bases__"):
            if getattr(p, name, None) is c:
                return "." + name
    d = getattr(p, "__dict__", None)
    if d is c:
        return "__dict__"
    if isinstance(d, dict):
        for k, v in d.items():
            if v is c:
                return f".{k}"
    for klass in tp.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if getattr(p, name, None) is c:
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
        wrapped = getattr(root, "__wrapped__", None)
        qual = f"{getattr(root, '__module__', '?')}.{getattr(root, '__qualname__', '?')}"
        code = getattr(wrapped, "__code__", None)
        first = code.co_varnames[0] if code is not None and code.co_argcount else ""
        try:
            maxsize = root.cache_info().maxsize
        except Exception:
            maxsize = None
        words = f"cache of functools.lru_cache on {qual}"
        head = f"lru_cache {qual}"
        info.update(function=qual, first_argument=first, maxsize=maxsize)
    elif kind == "thread-local":
        where = global_name(root, modules)
        words = f"thread-local {where}" if where else "a threading.local"
        head = words
        if steps:
            words += steps[0]["edge"].split(" ")[0]
    elif kind == "logger":
        name = getattr(root, "name", "?")
        attr = steps[0]["edge"] if steps else ""
        words = f"handlers of logger {name!r}" if attr == ".handlers" else f"logger {name!r}"
        head = f"logger {name!r}"
    else:  # closure
        owner = cell_owner(root)
        words = f"closure cell of {owner}" if owner else "a closure cell"
        head = words
    chain = [head] + [f"{s['edge']} ({s['type']})" for s in steps]
    if mode == "container":
        chain.append(last_element(path[-1]))
    return {"status": "rooted", "root": {"kind": kind, "words": words, **info}, "chain": chain, "steps": steps}


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
        module = sys.modules.get(name)
        d = getattr(module, "__dict__", None)
        if d is None or id(d) != did:
            continue
        for k, v in list(d.items()):
            if v is obj:
                return f"{name}.{k}"
    return ""


def cell_owner(cell):
    for tup in gc.get_referrers(cell):
        if type(tup) is not tuple:
            continue
        for fn in gc.get_referrers(tup):
            if isinstance(fn, types.FunctionType) and fn.__closure__ is tup:
                try:
                    name = fn.__code__.co_freevars[tup.index(cell)]
                except (ValueError, IndexError):
                    name = "?"
                return f"{fn.__module__}.{fn.__qualname__} (variable {name})"
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

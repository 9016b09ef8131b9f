"""A safe evaluator for selections and derived features in task files.

Task files are shared between analysts, so an expression such as ``sum(Jet_pt)`` must never reach
Python's ``eval``/``exec``. It is parsed with :mod:`ast` and walked node by node; only the nodes in
:data:`ALLOWED_NODES`, the functions in :data:`FUNCTIONS` and branch names are accepted. Anything else
(``__import__('os')``, ``().__class__``, lambdas, comprehensions, strings...) is an
:class:`~hepml.errors.ExpressionError` naming the expression and the offending piece.

Semantics: arrays are awkward (jagged ``var * float32``) or NumPy; arithmetic and ufuncs broadcast
per-entry values onto per-object ones. Reductions (``sum``, ``max``, ``num``...) act on the innermost
(object) axis, so ``sum(Jet_pt)`` is HT per event. Branch names that are not Python identifiers are
written ``branch("Jet.PT")``.

Examples
--------
>>> evaluate("sum(Jet_pt)", {"Jet_pt": ak.Array([[50.0, 30.0], []])}).tolist()
[80.0, 0.0]
"""

from __future__ import annotations

import ast
import difflib
import functools
import math

import awkward as ak
import numpy as np

from ..errors import ExpressionError

# ---------------------------------------------------------------------------------------------
# The whitelist: functions


def _reduce(name):
    def reducer(x, fill=np.nan):
        if _depth(x) < 2:
            raise ExpressionError(
                f"{name}() needs a per-object (jagged) argument, got a per-entry one",
                f"apply {name}() to a collection branch such as Jet_pt",
            )
        out = getattr(ak, name)(x, axis=-1)
        return ak.fill_none(out, fill) if name in ("max", "min", "mean", "argmax", "argmin") else out

    reducer.__name__ = name
    return reducer


def _depth(x) -> int:
    if isinstance(x, ak.Array):
        return x.ndim
    return np.ndim(x)


def _num(x):
    """Number of objects per entry (``nJet`` from ``Jet_pt``)."""
    return ak.num(x, axis=-1)


def _sort(x, ascending=True):
    return ak.sort(x, axis=-1, ascending=bool(ascending))


def _nth(x, i, fill=np.nan):
    """The i-th object of each entry (0 = first), ``fill`` where there are fewer."""
    i = int(i)
    padded = ak.pad_none(x, i + 1, axis=-1, clip=True)
    return ak.fill_none(padded[..., i], fill)


def _delta_phi(phi1, phi2):
    """Δφ wrapped into [-π, π)."""
    return (phi1 - phi2 + np.pi) % (2 * np.pi) - np.pi


def _delta_r(eta1, phi1, eta2, phi2):
    """ΔR = sqrt(Δη² + Δφ²)."""
    return np.sqrt((eta1 - eta2) ** 2 + _delta_phi(phi1, phi2) ** 2)


def _p4(pt, eta, phi, mass):
    """Four-vectors (``vector`` Momentum4D) from pt, eta, phi, mass; use ``.mass``, ``.pt``..."""
    import vector

    return vector.zip({"pt": pt, "eta": eta, "phi": phi, "mass": mass})


def _p4sum(v):
    """Sum of the four-vectors of each entry (e.g. the dimuon system); returns a Momentum4D."""
    import vector

    return vector.zip(
        {
            "px": ak.sum(v.px, axis=-1),
            "py": ak.sum(v.py, axis=-1),
            "pz": ak.sum(v.pz, axis=-1),
            "E": ak.sum(v.E, axis=-1),
        }
    )


def _inv_mass(pt, eta, phi, mass):
    """Invariant mass of all objects of each entry together (m_μμ for a dimuon pair)."""
    return _p4sum(_p4(pt, eta, phi, mass)).mass


FUNCTIONS = {
    # elementwise
    "abs": np.abs,
    "sqrt": np.sqrt,
    "log": np.log,
    "log10": np.log10,
    "log1p": np.log1p,
    "exp": np.exp,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "arctan2": np.arctan2,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "where": np.where,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "clip": np.clip,
    "sign": np.sign,
    "isnan": np.isnan,
    # per-entry reductions over the object axis
    "sum": _reduce("sum"),
    "prod": _reduce("prod"),
    "max": _reduce("max"),
    "min": _reduce("min"),
    "mean": _reduce("mean"),
    "any": _reduce("any"),
    "all": _reduce("all"),
    "count_nonzero": _reduce("count_nonzero"),
    "argmax": _reduce("argmax"),
    "argmin": _reduce("argmin"),
    "num": _num,
    "sort": _sort,
    "nth": _nth,
    # kinematics
    "delta_phi": _delta_phi,
    "delta_r": _delta_r,
    "p4": _p4,
    "p4sum": _p4sum,
    "inv_mass": _inv_mass,
}
KEYWORDS = {"sort": {"ascending"}, "nth": {"fill"}, "max": {"fill"}, "min": {"fill"}, "mean": {"fill"}}
CONSTANTS = {"pi": math.pi, "inf": math.inf, "nan": math.nan, "True": True, "False": False}
#: attributes allowed on four-vectors made by p4()/p4sum(); nothing else, and never a dunder.
VECTOR_ATTRIBUTES = {"pt", "eta", "phi", "mass", "px", "py", "pz", "E", "energy", "rapidity", "Et", "mt", "p"}

_BINOPS = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.true_divide,
    ast.FloorDiv: np.floor_divide,
    ast.Mod: np.mod,
    ast.Pow: np.power,
    ast.BitAnd: np.logical_and,
    ast.BitOr: np.logical_or,
    ast.BitXor: np.logical_xor,
}
_CMPOPS = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}
_UNARYOPS = {ast.USub: np.negative, ast.UAdd: np.positive, ast.Not: np.logical_not, ast.Invert: np.logical_not}
ALLOWED_NODES = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Call, ast.Name, ast.Load,
    ast.Constant, ast.Subscript, ast.Slice, ast.Tuple, ast.Attribute, ast.keyword, ast.And, ast.Or,
    *_BINOPS, *_CMPOPS, *_UNARYOPS,
)


class Expression:
    """A parsed, checked expression: ``names`` are the branches it reads."""

    def __init__(self, text: str, *, what: str = "expression"):
        self.text = str(text)
        self.what = what
        try:
            self.tree = ast.parse(self.text.strip(), mode="eval")
        except SyntaxError as exc:
            raise ExpressionError(
                f"{what} {self.text!r} is not a valid expression ({exc.msg} at column {exc.offset})",
                "write arithmetic over branch names, e.g. 'sqrt(px**2 + py**2)'",
            ) from None
        self.names = frozenset(self._check(self.tree))

    def _fail(self, piece: str, fix: str):
        raise ExpressionError(f"{self.what} {self.text!r}: {piece}", fix)

    def _check(self, tree) -> set[str]:
        names: set[str] = set()
        for node in ast.walk(tree):
            if not isinstance(node, ALLOWED_NODES):
                self._fail(
                    f"{type(node).__name__} is not allowed",
                    "use arithmetic, comparisons, & | ~ and the functions " + ", ".join(sorted(FUNCTIONS)),
                )
            if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, bool)):
                if not isinstance(node.value, str):
                    self._fail(f"constant {node.value!r} is not allowed", "use numbers only")
            if isinstance(node, ast.Attribute):
                if node.attr.startswith("_") or node.attr not in VECTOR_ATTRIBUTES:
                    self._fail(
                        f"attribute '.{node.attr}' is not allowed",
                        "attributes are only for four-vectors: " + ", ".join(sorted(VECTOR_ATTRIBUTES)),
                    )
            if isinstance(node, ast.Call):
                names |= self._check_call(node)
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id not in CONSTANTS:
                if node.id.startswith("__"):
                    self._fail(f"name {node.id!r} is not allowed", "use branch names and whitelisted functions")
                names.add(node.id)
        # function names are not branches
        called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        names -= called - {"branch"}
        names.discard("branch")
        # strings may appear only as the argument of branch("...")
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if not any(node is a for a in self._branch_string_args(tree)):
                    self._fail(f"string {node.value!r} is not allowed here", 'strings only name branches: branch("Jet.PT")')
        return names

    @staticmethod
    def _branch_string_args(tree):
        for n in ast.walk(tree):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "branch":
                yield from n.args

    def _check_call(self, node: ast.Call) -> set[str]:
        if not isinstance(node.func, ast.Name):
            self._fail("only plain function calls are allowed", "call a whitelisted function by name, e.g. sqrt(x)")
        fname = node.func.id
        if fname == "branch":
            if len(node.args) != 1 or node.keywords or not (
                isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
            ):
                self._fail("branch() takes one quoted branch name", 'write branch("Jet.PT")')
            return {node.args[0].value}
        if fname not in FUNCTIONS:
            close = difflib.get_close_matches(fname, FUNCTIONS, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "allowed: " + ", ".join(sorted(FUNCTIONS))
            self._fail(f"unknown function {fname!r}", hint)
        for kw in node.keywords:
            if kw.arg not in KEYWORDS.get(fname, set()):
                self._fail(f"{fname}() takes no keyword {kw.arg!r}", f"keywords of {fname}(): {sorted(KEYWORDS.get(fname, []))}")
        return set()

    def evaluate(self, arrays):
        """Evaluate over ``arrays`` (a mapping or awkward record array of branches)."""
        try:
            return _Evaluator(arrays, self).visit(self.tree.body)
        except ExpressionError:
            raise
        except Exception as exc:  # awkward/numpy errors: broadcasting, bad indices...
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExpressionError(
                f"{self.what} {self.text!r} failed: {msg[:200]}",
                "check that per-object branches of different collections are not mixed and indices exist",
            ) from None

    def __repr__(self):
        return f"Expression({self.text!r})"


class _Evaluator(ast.NodeVisitor):
    def __init__(self, arrays, expr: Expression):
        self.arrays = arrays
        self.expr = expr

    def generic_visit(self, node):  # pragma: no cover - _check already refused these
        raise ExpressionError(f"{self.expr.what} {self.expr.text!r}: {type(node).__name__} is not allowed", "")

    def visit_Constant(self, node):
        return node.value

    def visit_Name(self, node):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        return self.arrays[node.id]

    def visit_BinOp(self, node):
        return _BINOPS[type(node.op)](self.visit(node.left), self.visit(node.right))

    def visit_UnaryOp(self, node):
        return _UNARYOPS[type(node.op)](self.visit(node.operand))

    def visit_BoolOp(self, node):
        op = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        return functools.reduce(op, [self.visit(v) for v in node.values])

    def visit_Compare(self, node):
        left, result = self.visit(node.left), None
        for op, comp in zip(node.ops, node.comparators):
            right = self.visit(comp)
            part = _CMPOPS[type(op)](left, right)
            result = part if result is None else np.logical_and(result, part)
            left = right
        return result

    def visit_Call(self, node):
        if node.func.id == "branch":
            return self.arrays[node.args[0].value]
        args = [self.visit(a) for a in node.args]
        kwargs = {kw.arg: self.visit(kw.value) for kw in node.keywords}
        return FUNCTIONS[node.func.id](*args, **kwargs)

    def visit_Attribute(self, node):
        return getattr(self.visit(node.value), node.attr)

    def visit_Subscript(self, node):
        return self.visit(node.value)[self.visit(node.slice)]

    def visit_Slice(self, node):
        part = [None if p is None else self.visit(p) for p in (node.lower, node.upper, node.step)]
        return slice(*part)

    def visit_Tuple(self, node):
        return tuple(self.visit(e) for e in node.elts)


def evaluate(text: str, arrays, *, what: str = "expression"):
    """Parse, check and evaluate ``text`` over ``arrays`` in one call."""
    return Expression(text, what=what).evaluate(arrays)

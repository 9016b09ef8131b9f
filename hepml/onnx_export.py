"""ONNX export from framework-neutral NumPy weights and tree descriptions.

Every framework hands its model back as NumPy arrays in one naming scheme (:mod:`hepml.models`), so
one builder per architecture serves them all: :func:`mlp_to_onnx` and :func:`deepsets_to_onnx` take
``get_weights()`` of any adapter, :func:`trees_to_onnx` takes a list of trees that XGBoost
(:func:`hepml.frameworks.xgboost.booster_trees`) or the NumPy core GBDT can describe. The graphs are
built with ``onnx.helper`` (no converter package needed) and run with onnxruntime.

Graph inputs and outputs (batch axis dynamic):

- MLP and trees: input ``X`` (b, n_features); DeepSets: ``set`` (b, N, k) and ``mask`` (b, N), with
  N dynamic too;
- output ``proba`` (b, n_classes): binary → [1 − σ(z), σ(z)], multiclass → softmax(z); networks also
  output their ``logits`` z (b, n_outputs), trees the arg-max ``label`` (b,).

Networks are float32 by default (``dtype="float64"`` for the equivalence tests); the inference-mode
batch norm y = γ (x − μ)/√(σ² + ε) + β takes the framework's ε (torch 1e-5, Keras 1e-3).
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np

from .atomic import write_bytes
from .errors import ConfigError, FrameworkError

__all__ = [
    "ONNX_OPSET",
    "ONNX_ML_OPSET",
    "mlp_to_onnx",
    "deepsets_to_onnx",
    "trees_to_onnx",
    "trees_decision_function",
    "check_trees",
]

ONNX_OPSET = 17  # default domain: ReduceSum takes its axes as an input, Softmax works on one axis
ONNX_ML_OPSET = 3  # ai.onnx.ml: TreeEnsembleClassifier with *_as_tensor (double thresholds)
IR_VERSION = 8  # the IR version of opset 17, read by every onnxruntime since 1.11
_ACTIVATIONS = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "linear": None}
_RULES = {"<": "BRANCH_LT", "<=": "BRANCH_LEQ"}


# ============================================================================= graph builder
class _Graph:
    """A growing list of ONNX nodes and initializers with fresh names (a small ``onnx.helper`` wrapper)."""

    def __init__(self, dtype):
        from onnx import helper

        self.helper = helper
        self.np_dtype = np.dtype(dtype)
        self.onnx_dtype = helper.np_dtype_to_tensor_dtype(self.np_dtype)
        self.nodes, self.initializers, self._n = [], [], 0

    def fresh(self, stem: str) -> str:
        self._n += 1
        return f"{stem}_{self._n}"

    def const(self, name: str, value, dtype=None) -> str:
        from onnx import numpy_helper

        arr = np.asarray(value, dtype=dtype or self.np_dtype)
        self.initializers.append(numpy_helper.from_array(arr, name=name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], stem: Optional[str] = None, *, output: Optional[str] = None, **attrs) -> str:
        out = output or self.fresh(stem or op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def model(self, inputs, outputs, name: str):
        helper = self.helper
        graph = helper.make_graph(self.nodes, name, inputs, outputs, initializer=self.initializers)
        opsets = [helper.make_opsetid("", ONNX_OPSET)]
        if any(n.domain == "ai.onnx.ml" for n in self.nodes):
            opsets.append(helper.make_opsetid("ai.onnx.ml", ONNX_ML_OPSET))
        model = helper.make_model(graph, opset_imports=opsets, producer_name="hepml", ir_version=IR_VERSION)
        import onnx

        onnx.checker.check_model(model, full_check=True)
        return model


def _np_dtype(dtype) -> np.dtype:
    if str(dtype) not in ("float32", "float64"):
        raise ConfigError(f"ONNX export dtype={dtype!r} is not supported", "use dtype='float32' (default) or 'float64'")
    return np.dtype(str(dtype))


def _save(model, path) -> None:
    write_bytes(path, model.SerializeToString())


def _dense_stack(weights: Mapping, prefix: str, sizes_hidden: Sequence[int], n_in: int, n_out: Optional[int], what: str) -> list:
    """The (kernel, bias) pairs ``{prefix}dense_i`` checked against the spec's widths.

    ``sizes_hidden`` are the widths of the layers before the last; ``n_out`` the last width
    (None: the last layer is hidden too, as in the DeepSets Φ).
    """
    widths = list(sizes_hidden) + ([n_out] if n_out is not None else [])
    layers, fan_in = [], n_in
    for i, width in enumerate(widths):
        kname, bname = f"{prefix}dense_{i}/kernel", f"{prefix}dense_{i}/bias"
        if kname not in weights or bname not in weights:
            raise FrameworkError(f"{what}: weight {kname if kname not in weights else bname!r} is missing (received {sorted(weights)})",
                                 "pass get_weights() of a model built from the same spec")
        kernel, bias = np.asarray(weights[kname]), np.asarray(weights[bname])
        if kernel.shape != (fan_in, width) or bias.shape != (width,):
            raise FrameworkError(f"{what}: {kname} has shape {kernel.shape} and {bname} {bias.shape}; the spec needs ({fan_in}, {width}) and ({width},)",
                                 "pass weights of a model built from the same spec and number of features/classes")
        layers.append((kernel, bias))
        fan_in = width
    extra = f"{prefix}dense_{len(widths)}/kernel"
    if extra in weights:
        raise FrameworkError(f"{what}: weight {extra!r} is beyond the spec's {len(widths)} layers", "pass weights of a model built from the same spec")
    return layers


def _dense_layers(g: _Graph, x: str, layers: list, activation: str, *, last_activation: bool, scope: str, batch_norm=None) -> str:
    """x → Dense → [batch norm] → g → ... ; the last layer is linear unless ``last_activation``."""
    act = _ACTIVATIONS[activation]
    for i, (kernel, bias) in enumerate(layers):
        x = g.op("MatMul", [x, g.const(f"{scope}dense_{i}/kernel", kernel)], f"{scope}dense_{i}/matmul")
        x = g.op("Add", [x, g.const(f"{scope}dense_{i}/bias", bias)], f"{scope}dense_{i}/add")
        hidden = i < len(layers) - 1
        if hidden and batch_norm is not None:
            scale, shift = batch_norm[i]  # folded in float64: γ/√(σ²+ε) and β − μ γ/√(σ²+ε)
            x = g.op("Mul", [x, g.const(f"{scope}bn_{i}/scale", scale)], f"{scope}bn_{i}/mul")
            x = g.op("Add", [x, g.const(f"{scope}bn_{i}/shift", shift)], f"{scope}bn_{i}/add")
        if (hidden or last_activation) and act is not None:
            x = g.op(act, [x], f"{scope}{activation}_{i}")
    return x


def _head(g: _Graph, z: str, n_classes: int) -> str:
    """Logits z → ``proba``: [1 − σ(z), σ(z)] for two classes, softmax over C classes."""
    if n_classes == 2:
        p = g.op("Sigmoid", [z], "sigmoid")
        q = g.op("Sub", [g.const("one", np.ones((1, 1))), p], "one_minus_p")
        return g.op("Concat", [q, p], output="proba", axis=1)
    return g.op("Softmax", [z], output="proba", axis=1)


def _check_classes(n_classes) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise ConfigError(f"n_classes={n_classes!r} is not a number of classes", "pass an int >= 2 (binary tasks: 2)")
    return int(n_classes)


# ============================================================================= networks
def mlp_to_onnx(weights: Mapping, spec, n_classes: int, path, *, batch_norm_eps: float = 1e-3, dtype="float32") -> None:
    """Write the MLP of ``spec`` with ``weights`` (``dense_i/...``, ``bn_i/...``) as ONNX to ``path``.

    Parameters
    ----------
    weights : dict of ndarray — ``get_weights()`` of any adapter (kernels (in, out))
    spec : MLPSpec — hidden widths, activation, batch_norm (dropout is off at inference)
    n_classes : int — 2 gives one logit and σ, C > 2 gives C logits and softmax
    path : file to write (atomically)
    batch_norm_eps : float — the ε of the framework that trained it (torch 1e-5, Keras 1e-3)
    dtype : 'float32' or 'float64' — input, weights and computation
    """
    if getattr(spec, "kind", None) != "mlp":
        raise FrameworkError(f"mlp_to_onnx needs an MLP spec; received kind={getattr(spec, 'kind', spec)!r}", "use deepsets_to_onnx or trees_to_onnx")
    n_classes = _check_classes(n_classes)
    dt = _np_dtype(dtype)
    if "dense_0/kernel" not in weights:
        raise FrameworkError(f"MLP weights have no 'dense_0/kernel' (received {sorted(weights)})", "pass get_weights() of an MLP")
    n_features = int(np.shape(weights["dense_0/kernel"])[0])
    n_out = 1 if n_classes == 2 else n_classes
    layers = _dense_stack(weights, "", spec.hidden, n_features, n_out, "MLP")
    bn = None
    if spec.batch_norm:
        if not batch_norm_eps > 0:
            raise ConfigError(f"batch_norm_eps={batch_norm_eps!r} must be > 0", "use the framework's epsilon: torch 1e-5, Keras 1e-3")
        bn = []
        for i, width in enumerate(spec.hidden):
            parts = {}
            for key in ("gamma", "beta", "moving_mean", "moving_var"):
                name = f"bn_{i}/{key}"
                if name not in weights or np.shape(weights[name]) != (width,):
                    raise FrameworkError(f"MLP with batch_norm: {name!r} is missing or not of shape ({width},)", "pass get_weights() of a batch-norm MLP")
                parts[key] = np.asarray(weights[name], dtype=np.float64)
            scale = parts["gamma"] / np.sqrt(parts["moving_var"] + batch_norm_eps)
            bn.append((scale, parts["beta"] - parts["moving_mean"] * scale))
    g = _Graph(dt)
    z = _dense_layers(g, "X", layers, spec.activation, last_activation=False, scope="", batch_norm=bn)
    z = g.op("Identity", [z], output="logits")
    _head(g, z, n_classes)
    h = g.helper
    model = g.model(
        [h.make_tensor_value_info("X", g.onnx_dtype, ["batch", n_features])],
        [h.make_tensor_value_info("proba", g.onnx_dtype, ["batch", n_classes]), h.make_tensor_value_info("logits", g.onnx_dtype, ["batch", n_out])],
        "hepml_mlp",
    )
    _save(model, path)


def deepsets_to_onnx(weights: Mapping, spec, n_classes: int, path, *, dtype="float32") -> None:
    """Write the DeepSets / PFN of ``spec`` with ``weights`` (``phi/dense_i``, ``f/dense_i``) as ONNX.

    F( pool_j m_j Φ(x_j) ): Φ with the activation after every layer, the masked sum (``pool: sum``)
    or the masked mean (Σ_j m_j Φ(x_j) / max(Σ_j m_j, 1), ``pool: mean``), then F with a linear
    output. Inputs ``set`` (b, N, k) and ``mask`` (b, N) with 1 for real objects, 0 for padding.
    """
    if getattr(spec, "kind", None) != "deepsets":
        raise FrameworkError(f"deepsets_to_onnx needs a DeepSets spec; received kind={getattr(spec, 'kind', spec)!r}", "use mlp_to_onnx or trees_to_onnx")
    n_classes = _check_classes(n_classes)
    dt = _np_dtype(dtype)
    if "phi/dense_0/kernel" not in weights:
        raise FrameworkError(f"DeepSets weights have no 'phi/dense_0/kernel' (received {sorted(weights)})", "pass get_weights() of a DeepSets model")
    k = int(np.shape(weights["phi/dense_0/kernel"])[0])
    n_out = 1 if n_classes == 2 else n_classes
    phi = _dense_stack(weights, "phi/", spec.phi, k, None, "DeepSets Φ")
    f = _dense_stack(weights, "f/", spec.f, spec.phi[-1], n_out, "DeepSets F")
    g = _Graph(dt)
    latent = _dense_layers(g, "set", phi, spec.activation, last_activation=True, scope="phi/")  # (b, N, ℓ)
    m = g.op("Unsqueeze", ["mask", g.const("axis_last", [-1], np.int64)], "mask_3d")  # (b, N, 1)
    axis1 = g.const("axis_objects", [1], np.int64)
    pooled = g.op("ReduceSum", [g.op("Mul", [latent, m], "masked_latent"), axis1], "pool_sum", keepdims=0)  # (b, ℓ)
    if spec.pool == "mean":
        count = g.op("ReduceSum", ["mask", axis1], "n_objects", keepdims=1)  # (b, 1)
        count = g.op("Max", [count, g.const("at_least_one", np.ones((1, 1)))], "n_objects_min1")
        pooled = g.op("Div", [pooled, count], "pool_mean")
    z = _dense_layers(g, pooled, f, spec.activation, last_activation=False, scope="f/")
    z = g.op("Identity", [z], output="logits")
    _head(g, z, n_classes)
    h = g.helper
    model = g.model(
        [h.make_tensor_value_info("set", g.onnx_dtype, ["batch", "n_objects", k]), h.make_tensor_value_info("mask", g.onnx_dtype, ["batch", "n_objects"])],
        [h.make_tensor_value_info("proba", g.onnx_dtype, ["batch", n_classes]), h.make_tensor_value_info("logits", g.onnx_dtype, ["batch", n_out])],
        "hepml_deepsets",
    )
    _save(model, path)


# ============================================================================= trees
def check_trees(trees, n_features: int, n_classes: int) -> list:
    """Validate a framework-neutral tree list; return it as dicts of NumPy arrays.

    Each tree is a mapping of per-node lists of equal length (node 0 is the root, children come
    after their parent, as in depth-first or breadth-first numbering):

    - ``feature`` (int, −1 at a leaf), ``threshold`` (float), ``left``/``right`` (child node, −1 at
      a leaf), ``value`` (the leaf's contribution to the margin, learning rate included);
    - optional ``missing``: the child a missing (NaN) value goes to (XGBoost's default direction;
      default ``left``);
    - optional ``output`` (one int per tree): the logit it adds to — default 0 for two classes and
      ``i % n_classes`` for tree i of C > 2 classes (XGBoost's round-robin order).
    """
    n_out = 1 if n_classes == 2 else n_classes
    out = []
    for t, tree in enumerate(trees):
        try:
            feature = np.asarray(tree["feature"], dtype=np.int64)
            arrays = {
                "feature": feature,
                "threshold": np.asarray(tree["threshold"], dtype=np.float64),
                "left": np.asarray(tree["left"], dtype=np.int64),
                "right": np.asarray(tree["right"], dtype=np.int64),
                "value": np.asarray(tree["value"], dtype=np.float64),
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise FrameworkError(f"tree {t} is not a tree description ({type(exc).__name__}: {exc})",
                                 "give per-node lists feature, threshold, left, right, value") from None
        arrays["missing"] = np.asarray(tree["missing"], dtype=np.int64) if "missing" in tree else arrays["left"].copy()
        arrays["output"] = int(tree.get("output", 0 if n_out == 1 else t % n_out))
        n = len(feature)
        if n == 0 or any(len(a) != n for k, a in arrays.items() if k != "output"):
            raise FrameworkError(f"tree {t}: node lists have lengths {[len(a) for k, a in arrays.items() if k != 'output']}",
                                 "give one entry per node in every list")
        split = arrays["left"] >= 0
        parent = np.flatnonzero(split)
        if ((arrays["right"] >= 0) != split).any():
            node = int(np.argmax((arrays["right"] >= 0) != split))
            raise FrameworkError(f"tree {t}: node {node} has only one child (left {arrays['left'][node]}, right {arrays['right'][node]})",
                                 "every split has a left and a right child; leaves have -1 for both")
        for key in ("left", "right", "missing"):
            child = arrays[key][split]
            if ((child <= parent) | (child >= n)).any():
                raise FrameworkError(f"tree {t}: {key!r} children {arrays[key].tolist()} do not point at later nodes, up to {n - 1}",
                                     "number nodes so that children come after their parent (leaves: left = right = -1)")
        bad_missing = split & (arrays["missing"] != arrays["left"]) & (arrays["missing"] != arrays["right"])
        if bad_missing.any():
            raise FrameworkError(f"tree {t}: 'missing' child of node {int(np.argmax(bad_missing))} is neither its left nor its right child",
                                 "set missing to the left or the right child")
        f = feature[split]
        if ((f < 0) | (f >= n_features)).any():
            raise FrameworkError(f"tree {t}: split feature {int(f[(f < 0) | (f >= n_features)][0])} is not in 0..{n_features - 1}",
                                 "pass the model's n_features")
        if not 0 <= arrays["output"] < n_out:
            raise FrameworkError(f"tree {t}: output={arrays['output']} is not a logit index 0..{n_out - 1}", "check n_classes")
        out.append(arrays)
    if not out:
        raise FrameworkError("the tree list is empty", "train the model before exporting it")
    return out


def _base_vector(base_score, n_classes: int) -> np.ndarray:
    n_out = 1 if n_classes == 2 else n_classes
    base = np.broadcast_to(np.asarray(base_score, dtype=np.float64).reshape(-1), (n_out,)) if np.size(base_score) in (1, n_out) else None
    if base is None:
        raise FrameworkError(f"base_score has {np.size(base_score)} values for {n_out} logit(s)", "give one margin, or one per class")
    return np.array(base)


def trees_decision_function(trees, X, n_classes: int, base_score, *, rule: str = "<") -> np.ndarray:
    """The margin z (n, n_outputs) of a tree list on X in NumPy: the reference for the ONNX graph.

    ``rule`` is the split question sending x to the left child: ``"<"`` (XGBoost) or ``"<="``
    (scikit-learn, the core decision tree); NaN goes to the ``missing`` child.
    """
    n_classes = _check_classes(n_classes)
    if rule not in _RULES:
        raise ConfigError(f"split rule={rule!r} is not known", "use '<' (XGBoost) or '<=' (scikit-learn style)")
    X = np.asarray(X)
    trees = check_trees(trees, X.shape[1], n_classes)
    z = np.tile(_base_vector(base_score, n_classes), (len(X), 1))
    rows = np.arange(len(X))
    for tree in trees:
        node = np.zeros(len(X), dtype=np.int64)
        while True:
            inner = tree["left"][node] >= 0
            if not inner.any():
                break
            x = X[rows, np.maximum(tree["feature"][node], 0)]
            thr = tree["threshold"][node]
            go_left = (x < thr) if rule == "<" else (x <= thr)
            nxt = np.where(np.isnan(x), tree["missing"][node], np.where(go_left, tree["left"][node], tree["right"][node]))
            node = np.where(inner, nxt, node)
        z[:, tree["output"]] += tree["value"][node]
    return z


def trees_to_onnx(trees, n_features: int, n_classes: int, base_score, path, *, rule: str = "<", dtype="float32") -> None:
    """Write a boosted tree ensemble as an ONNX ``TreeEnsembleClassifier`` (ai.onnx.ml) to ``path``.

    Parameters
    ----------
    trees : list of tree descriptions (see :func:`check_trees`)
    n_features : int — width of the input ``X``
    n_classes : int — 2: one margin and post_transform LOGISTIC, proba = [1 − σ(z), σ(z)];
        C > 2: C margins and SOFTMAX
    base_score : float or sequence of n_outputs floats — the base **margin** z₀ added before the
        link (XGBoost binary:logistic: logit(base_score); the core GBDT: its initial log-odds)
    rule : '<' (XGBoost: x < threshold goes left) or '<=' (scikit-learn style)
    dtype : 'float32' (XGBoost's own precision: its thresholds are float32) or 'float64' (input
        and thresholds in double, for a float64 core GBDT); ``proba`` is float32 either way (ONNX)
    """
    from onnx import TensorProto, helper

    n_classes = _check_classes(n_classes)
    if rule not in _RULES:
        raise ConfigError(f"split rule={rule!r} is not known", "use '<' (XGBoost) or '<=' (scikit-learn style)")
    dt = _np_dtype(dtype)
    trees = check_trees(trees, n_features, n_classes)
    base = _base_vector(base_score, n_classes)
    nodes = {k: [] for k in ("treeids", "nodeids", "featureids", "modes", "values", "truenodeids", "falsenodeids", "missing_tracks_true")}
    leaves = {k: [] for k in ("treeids", "nodeids", "ids", "weights")}
    for t, tree in enumerate(trees):
        for i in range(len(tree["feature"])):
            split = tree["left"][i] >= 0
            nodes["treeids"].append(t)
            nodes["nodeids"].append(i)
            nodes["featureids"].append(int(tree["feature"][i]) if split else 0)
            nodes["modes"].append(_RULES[rule] if split else "LEAF")
            nodes["values"].append(float(tree["threshold"][i]) if split else 0.0)
            nodes["truenodeids"].append(int(tree["left"][i]) if split else 0)  # the question true → left
            nodes["falsenodeids"].append(int(tree["right"][i]) if split else 0)
            nodes["missing_tracks_true"].append(int(split and tree["missing"][i] == tree["left"][i]))
            if not split:
                leaves["treeids"].append(t)
                leaves["nodeids"].append(i)
                leaves["ids"].append(tree["output"])
                leaves["weights"].append(float(tree["value"][i]))
    attrs = dict(
        nodes_treeids=nodes["treeids"], nodes_nodeids=nodes["nodeids"], nodes_featureids=nodes["featureids"],
        nodes_modes=nodes["modes"], nodes_truenodeids=nodes["truenodeids"], nodes_falsenodeids=nodes["falsenodeids"],
        nodes_missing_value_tracks_true=nodes["missing_tracks_true"],
        class_treeids=leaves["treeids"], class_nodeids=leaves["nodeids"], class_ids=leaves["ids"],
        classlabels_int64s=list(range(n_classes)),
        post_transform="LOGISTIC" if n_classes == 2 else "SOFTMAX",
    )
    if dt == np.float64:  # double thresholds, leaf values and base margins (ai.onnx.ml 3)
        attrs["nodes_values_as_tensor"] = helper.make_tensor("nodes_values", TensorProto.DOUBLE, [len(nodes["values"])], nodes["values"])
        attrs["class_weights_as_tensor"] = helper.make_tensor("class_weights", TensorProto.DOUBLE, [len(leaves["weights"])], leaves["weights"])
        attrs["base_values_as_tensor"] = helper.make_tensor("base_values", TensorProto.DOUBLE, [len(base)], base.tolist())
    else:  # float32 attributes, exactly XGBoost's float32 split conditions
        attrs["nodes_values"] = np.asarray(nodes["values"], np.float32).tolist()
        attrs["class_weights"] = np.asarray(leaves["weights"], np.float32).tolist()
        attrs["base_values"] = np.asarray(base, np.float32).tolist()
    g = _Graph(dt)
    g.nodes.append(helper.make_node("TreeEnsembleClassifier", ["X"], ["label", "proba"], domain="ai.onnx.ml", name="trees", **attrs))
    model = g.model(
        [helper.make_tensor_value_info("X", g.onnx_dtype, ["batch", int(n_features)])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]), helper.make_tensor_value_info("proba", TensorProto.FLOAT, ["batch", n_classes])],
        "hepml_trees",
    )
    _save(model, path)

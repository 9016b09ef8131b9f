"""Gradient-boosted decision trees: XGBoost's second-order algorithm, from scratch in NumPy.

Boosting adds trees one at a time, F_m(x) = F_{m−1}(x) + η f_m(x), starting from the
``base_score``. Tree f_m is fitted to a second-order Taylor expansion of the loss around the
current margins: each example brings its gradient g_i = ∂L/∂F and hessian h_i = ∂²L/∂F²
(:func:`logistic_grad_hess`, :func:`softmax_grad_hess`, :func:`squared_error_grad_hess`). With
G = Σ g_i and H = Σ h_i over the examples of a leaf, the regularised objective is minimised by

    leaf weight     w* = −G / (H + λ)                                  (:func:`leaf_weight`)
    objective       −½ G² / (H + λ) per leaf (+ γ per leaf)           (:func:`structure_score` = G²/(H+λ))
    split gain      ½ [G_L²/(H_L+λ) + G_R²/(H_R+λ) − G²/(H+λ)] − γ

so a split is worth making when the bracket, :func:`split_gain`, is large. XGBoost, and this
file, report the bracket itself (XGBoost's ``loss_chg``/``Gain``) and compare it with
``gamma`` directly: the slides' ½[...] − γ_slides > 0 is the same rule with γ_slides = gamma/2.

Trees grow depth-wise as XGBoost's do, which is Algorithm 1 of the slides with Choose = "every
leaf of the current depth": each round, every leaf of the leaf set gets its best split; a leaf
stays a leaf when no split gains more than 1e-6 or keeps ``min_child_weight`` of hessian on both
sides. Two ways to find splits (``tree_method``):

- ``"exact"`` (greedy): every threshold between two neighbouring sorted feature values, vectorised
  per leaf with cumulative sums (columns sorted once, then partitioned at each split). XGBoost
  scans each feature from its largest value down, so on equal gains the largest threshold wins,
  then the lowest feature index; the threshold is the float32 midpoint (x_k + x_{k+1})·0.5.
  ``gamma`` prunes afterwards, bottom-up, like XGBoost's ``prune`` updater: a split whose
  children are leaves and whose gain < gamma is undone.
- ``"hist"``: features are first cut into at most ``max_bin`` quantile bins
  (:func:`quantile_cuts`); per leaf, per-bin sums of g and h (histograms, built for the smaller
  child and obtained for its sibling as parent − child) give all candidate splits at bin edges.
  Ties go to the lowest bin; ``gamma`` is applied while growing, as in XGBoost's hist. The bins
  equal XGBoost's when a feature has at most ``max_bin`` distinct values; otherwise both use
  (different) approximate quantiles, and ``fit(..., bin_cuts=dmatrix.get_quantile_cut())``
  hands the core XGBoost's own cut points, after which the hist trees are equal too.

XGBoost details kept so that on the same data and parameters the trees *equal* those of
``xgboost`` (tests/core/test_gradient_boosting.py): features, labels, gradients, margins,
thresholds and leaf values are float32, sums of g and h are float64; the gain is evaluated in
float32 the way XGBoost does (through the float32 leaf weight); a split sends x < threshold left.
Missing values are not supported (DataError). Differences: ``subsample`` uses NumPy's generator
(not XGBoost's), and ``base_score=None`` uses the natural intercept (mean target, mean label as a
probability, log class frequencies) rather than XGBoost 3's estimate — pass ``base_score``
explicitly to compare with XGBoost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DataError
from ._tree_util import (LEAF, Interval, Options, TreeArrays, array_module, check_sample_weight, check_targets,
                         check_X, partition_sorted, presort, validate_params)

__all__ = [
    "sigmoid", "softmax", "logistic_grad_hess", "softmax_grad_hess", "squared_error_grad_hess",
    "leaf_weight", "structure_score", "split_gain", "quantile_cuts",
    "BoostedTree", "GradientBoostingClassifier", "GradientBoostingRegressor",
]

f32 = np.float32
KRT_EPS = 1e-6  # XGBoost's kRtEps: a split must gain more than this
HESS_EPS = f32(1e-16)  # lower bound of a hessian, as in XGBoost


# ----------------------------------------------------------------------------- objectives: g_i, h_i
def _expf(x):
    """e^x rounded to float32 from a float64 evaluation: the C library's ``expf`` (NumPy's float32 exp
    may be one unit in the last place off, which is enough to change XGBoost-equal leaf values)."""
    return array_module(x).exp(x.astype(np.float64)).astype(f32)


def sigmoid(margin):
    """σ(F) = 1/(1 + e^−F) in float32, as XGBoost evaluates it."""
    xp = array_module(margin)
    return f32(1) / (_expf(xp.minimum(-margin, f32(88.7))) + f32(1))


def softmax(margin):
    """p_k = e^{F_k} / Σ_j e^{F_j} over the last axis, float32, shifted by the largest F (XGBoost's order).

    Parameters
    ----------
    margin : ndarray of shape (n_examples, n_classes)
    """
    xp = array_module(margin)
    shifted = _expf(margin - xp.maximum(margin.max(axis=1, keepdims=True), np.finfo(f32).tiny))
    total = shifted.astype(np.float64).sum(axis=1, keepdims=True).astype(f32)
    return shifted / total


def logistic_grad_hess(margin, y, w):
    """Binary log-loss L = −[y log p + (1−y) log(1−p)], p = σ(F): g = (p − y) w, h = p(1 − p) w.

    Parameters
    ----------
    margin, y, w : ndarray of shape (n_examples,), float32
    """
    p = sigmoid(margin)
    xp = array_module(margin)
    return (p - y) * w, xp.maximum(p * (f32(1) - p), HESS_EPS) * w


def softmax_grad_hess(margin, y, w):
    """Multiclass log-loss with p = softmax(F): g_k = (p_k − [y = k]) w, h_k = 2 p_k (1 − p_k) w.

    The factor 2 is XGBoost's (an upper bound of the diagonal hessian that keeps Newton steps stable).

    Parameters
    ----------
    margin : ndarray of shape (n_examples, n_classes), float32
    y : ndarray of shape (n_examples,), class indices
    w : ndarray of shape (n_examples,), float32
    """
    xp = array_module(margin)
    p = softmax(margin)
    onehot = (xp.arange(margin.shape[1])[None, :] == y[:, None]).astype(f32)
    h = xp.maximum(f32(2) * p * (f32(1) - p) * w[:, None], HESS_EPS)
    return (p - onehot) * w[:, None], h


def squared_error_grad_hess(margin, y, w):
    """Squared error L = ½ (F − y)²: g = (F − y) w, h = w.

    Parameters
    ----------
    margin, y, w : ndarray of shape (n_examples,), float32
    """
    return (margin - y) * w, w.copy()


# ----------------------------------------------------------------------------- the slides' formulas
def leaf_weight(G, H, reg_lambda):
    """Optimal leaf weight w* = −G / (H + λ), in float32 (G, H summed in float64).

    Parameters
    ----------
    G, H : float or ndarray
        Sums of g_i and h_i over the examples of the leaf(s).
    reg_lambda : float
        L2 penalty λ on the leaf weights.
    """
    return (-np.asarray(G, dtype=np.float64) / (np.asarray(H, dtype=np.float64) + float(f32(reg_lambda)))).astype(f32)


def structure_score(G, H, reg_lambda):
    """G² / (H + λ): twice the objective decrease a leaf achieves with its weight w*.

    Evaluated as XGBoost does, in float32 from the float32 weight: −(2 G w* + (H + λ) w*²).
    Returns 0 where H <= 0 (an empty leaf).
    """
    xp = array_module(G)
    w = leaf_weight(G, H, reg_lambda)
    G, H = xp.asarray(G).astype(f32), xp.asarray(H).astype(f32)
    score = -(f32(2) * G * w + (H + f32(reg_lambda)) * (w * w))
    return xp.where(H > 0, score, f32(0))


def split_gain(G_L, H_L, G_R, H_R, parent_score, reg_lambda):
    """The bracket G_L²/(H_L+λ) + G_R²/(H_R+λ) − G²/(H+λ) of the split gain, in float32.

    ``parent_score`` is :func:`structure_score` of the leaf being split (G = G_L + G_R).
    """
    return (structure_score(G_L, H_L, reg_lambda) + structure_score(G_R, H_R, reg_lambda)) - f32(parent_score)


# ----------------------------------------------------------------------------- histogram bins
def quantile_cuts(X, max_bin=256, sample_weight=None):
    """Bin edges for ``tree_method="hist"``, in the layout of XGBoost's ``DMatrix.get_quantile_cut()``.

    Per feature the edges are [lower, c_1, ..., c_{B−1}, upper]; bin b holds c_b <= x < c_{b+1}.
    A feature with at most ``max_bin`` distinct values gets one bin per value (c_b = the values,
    exactly as XGBoost); otherwise the c_b are weighted quantiles, so that each bin holds about
    1/max_bin of the weight. lower = min − (|min| + 1e−5) and upper = max + (|max| + 1e−5).

    Parameters
    ----------
    X : ndarray of shape (n_examples, n_features)
    max_bin : int
    sample_weight : ndarray of shape (n_examples,), optional

    Returns
    -------
    indptr : ndarray of shape (n_features + 1,)
        Feature f owns ``values[indptr[f]:indptr[f+1]]``.
    values : ndarray of float32
    """
    X = np.asarray(X, dtype=f32)
    w = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    edges = []
    for column in X.T:
        u, inverse = np.unique(column, return_inverse=True)
        if u.shape[0] <= max_bin:
            inner = u[1:]
        else:
            cum = np.cumsum(np.bincount(inverse, weights=w))        # weight of {x <= u_i}
            targets = cum[-1] * np.arange(1, max_bin) / max_bin
            i = np.minimum(np.searchsorted(cum, targets, side="left") + 1, u.shape[0] - 1)
            inner = np.unique(u[i])                                   # weight of {x < u_i} >= target
        lo, hi = float(u[0]), float(u[-1])                            # outer edges in float64, as XGBoost
        edges.append(np.concatenate([[lo - (abs(lo) + 1e-5)], inner, [hi + (abs(hi) + 1e-5)]]).astype(f32))
    indptr = np.concatenate([[0], np.cumsum([len(e) for e in edges])]).astype(np.uint64)
    return indptr, np.concatenate(edges)


def _check_cuts(bin_cuts, n_features):
    try:
        indptr, values = (np.asarray(a) for a in bin_cuts)
        ok = indptr.ndim == 1 and indptr.shape[0] == n_features + 1 and int(indptr[-1]) == values.shape[0]
        per_feature = [values[int(a):int(b)] for a, b in zip(indptr[:-1], indptr[1:])] if ok else []
        ok = ok and all(e.shape[0] >= 2 and bool(np.all(np.diff(e) > 0)) for e in per_feature)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise DataError("bin_cuts is not a valid (indptr, values) pair for the features of X",
                        "pass the output of quantile_cuts(X) or xgboost's DMatrix.get_quantile_cut()")
    return [e.astype(f32) for e in per_feature]


# ----------------------------------------------------------------------------- trees
@dataclass
class BoostedTree(TreeArrays):
    """One boosted tree: :class:`TreeArrays` (``value[:, 0]`` = η w* of leaves) plus XGBoost's per-node stats.

    Attributes
    ----------
    loss_changes : ndarray of shape (n_nodes,)
        :func:`split_gain` of the split made at the node (0 for leaves), XGBoost's ``Gain``.
    sum_hessian : ndarray of shape (n_nodes,)
        H of the node, XGBoost's ``Cover``.
    base_weights : ndarray of shape (n_nodes,)
        w* of the node (without η).
    """

    loss_changes: np.ndarray = None
    sum_hessian: np.ndarray = None
    base_weights: np.ndarray = None

    def to_xgboost_json(self) -> dict:
        """The tree in the array layout of XGBoost's JSON model (``booster.save_raw("json")``).

        For leaves ``split_conditions`` holds the leaf value, as in XGBoost.
        """
        leaf = self.children_left == LEAF
        return {
            "left_children": self.children_left.tolist(),
            "right_children": self.children_right.tolist(),
            "split_indices": np.where(leaf, 0, self.feature).tolist(),
            "split_conditions": np.where(leaf, self.value[:, 0], self.threshold).astype(f32).tolist(),
            "default_left": [0 if is_leaf else 1 for is_leaf in leaf],
            "loss_changes": self.loss_changes.tolist(),
            "sum_hessian": self.sum_hessian.tolist(),
            "base_weights": self.base_weights.tolist(),
        }

    def get_dump(self, node: int = 0, depth: int = 0) -> dict:
        """Nested dict in the shape of XGBoost's ``get_dump(dump_format="json")``."""
        if self.children_left[node] == LEAF:
            return {"nodeid": node, "leaf": float(self.value[node, 0]), "cover": float(self.sum_hessian[node])}
        left, right = int(self.children_left[node]), int(self.children_right[node])
        return {
            "nodeid": node, "depth": depth, "split": f"f{int(self.feature[node])}",
            "split_condition": float(self.threshold[node]), "yes": left, "no": right, "missing": left,
            "gain": float(self.loss_changes[node]), "cover": float(self.sum_hessian[node]),
            "children": [self.get_dump(left, depth + 1), self.get_dump(right, depth + 1)],
        }


@dataclass
class _Node:
    """A leaf of the leaf set while growing: its examples and their sums G, H."""

    examples: np.ndarray
    G: float
    H: float
    depth: int
    id: int
    hist: tuple = None          # hist mode: (G per bin, H per bin), each (F, n_bins)
    sorted_rows: np.ndarray = None  # exact mode: (m, F) the examples sorted along every feature


class _TreeGrower:
    """Grows one tree on fixed g, h (depth-wise Algorithm 1) with exact or histogram split finding."""

    def __init__(self, est, X32, binned, edges):
        self.est, self.X32, self.binned, self.edges = est, X32, binned, edges
        self.lam = f32(est.reg_lambda)
        self.mcw = float(f32(est.min_child_weight))
        if binned is not None:
            self.n_bins = max(len(e) - 1 for e in edges)
            self.flat_bins = binned.astype(np.int64) + np.arange(X32.shape[1]) * self.n_bins  # (n, F) histogram slots

    # -- node bookkeeping
    def _new_node(self, examples, G, H, depth, **extra):
        node = _Node(examples, G, H, depth, len(self.nodes["left"]), **extra)
        base_weight = leaf_weight(G, H, self.lam) if H >= self.mcw else f32(0)  # XGBoost: 0 below min_child_weight
        for key, val in (("left", LEAF), ("right", LEAF), ("feature", LEAF), ("threshold", f32(0)), ("loss", f32(0)),
                         ("hess", H), ("base_weight", base_weight), ("examples", examples)):
            self.nodes[key].append(val)
        return node

    def grow(self, g, h, examples, sorted_rows=None):
        """Grow a tree on the gradients g, h of ``examples`` (exact mode: ``sorted_rows``, their presort)."""
        xp = array_module(g)
        self.g, self.h = g.astype(np.float64), h.astype(np.float64)
        self.nodes = {k: [] for k in ("left", "right", "feature", "threshold", "loss", "hess", "base_weight",
                                      "examples")}
        hist_mode = self.binned is not None
        go_left_of_row = xp.zeros(g.shape[0], dtype=bool)
        extra = {"hist": self._histogram(examples)} if hist_mode else {"sorted_rows": sorted_rows}
        root = self._new_node(examples, float(self.g[examples].sum()), float(self.h[examples].sum()), 0, **extra)
        leaf_set = [root]                                   # {X_train}
        for _depth in range(self.est.max_depth):           # stopping criterion: max_depth, or nothing to split
            chosen, leaf_set = leaf_set, []                 # Choose: every leaf of the current depth
            splits = self._best_splits_hist(chosen) if hist_mode else [self._best_split_exact(n) for n in chosen]
            for node, split in zip(chosen, splits):         # Split
                if split is None or split[0] <= KRT_EPS or (hist_mode and split[0] < f32(self.est.gamma)):
                    continue
                loss, feature, threshold, go_left = split
                left_ex, right_ex = node.examples[go_left], node.examples[~go_left]
                if hist_mode:                               # histogram of the smaller child, sibling = parent − it
                    small = 0 if left_ex.shape[0] <= right_ex.shape[0] else 1
                    built = self._histogram((left_ex, right_ex)[small])
                    other = (node.hist[0] - built[0], node.hist[1] - built[1])
                    extras = [{"hist": built}, {"hist": other}] if small == 0 else [{"hist": other}, {"hist": built}]
                else:                                       # keep the children's columns sorted
                    go_left_of_row[node.examples] = go_left
                    extras = [{"sorted_rows": r} for r in partition_sorted(node.sorted_rows, go_left_of_row)]
                left, right = (self._new_node(ex, float(self.g[ex].sum()), float(self.h[ex].sum()), node.depth + 1,
                                              **kw) for ex, kw in zip((left_ex, right_ex), extras))
                self.nodes["left"][node.id], self.nodes["right"][node.id] = left.id, right.id
                self.nodes["feature"][node.id], self.nodes["threshold"][node.id] = feature, threshold
                self.nodes["loss"][node.id] = loss
                leaf_set += [left, right]                   # add the children, the parent is no leaf any more
            if not leaf_set:
                break
        if not hist_mode:
            self._prune(0)
        return self._to_tree()

    # -- exact greedy split finding
    def _best_split_exact(self, node):
        """Best (gain, feature, threshold, go_left) over all thresholds between sorted values, or None."""
        xp = array_module(self.X32)
        rows = node.sorted_rows                             # (m, F)
        if rows.shape[0] < 2:
            return None
        xs = self.X32[rows, xp.arange(rows.shape[1])[None, :]]  # each column sorted
        # XGBoost scans from the largest value down: G_R, H_R are suffix sums of the sorted g, h
        G_R = xp.cumsum(self.g[rows][::-1], axis=0)[::-1][1:]   # candidate k: right = sorted[k+1:]
        H_R = xp.cumsum(self.h[rows][::-1], axis=0)[::-1][1:]
        G_L, H_L = node.G - G_R, node.H - H_R
        valid = (xs[1:] != xs[:-1]) & (H_L >= self.mcw) & (H_R >= self.mcw) & (H_L > 0) & (H_R > 0)
        if not bool(valid.any()):
            return None
        parent = structure_score(node.G, node.H, self.lam)
        gain = xp.where(valid, split_gain(G_L, H_L, G_R, H_R, parent, self.lam), -np.inf)
        m = gain.shape[0]
        k = (m - 1) - xp.argmax(gain[::-1], axis=0)        # per feature: the largest threshold on ties
        f = int(xp.argmax(gain[k, xp.arange(gain.shape[1])]))  # the lowest feature on ties
        k = int(k[f])
        threshold = (xs[k, f] + xs[k + 1, f]) * f32(0.5)
        return f32(gain[k, f]), f, threshold, self.X32[node.examples, f] < threshold

    def _prune(self, node) -> bool:
        """XGBoost's prune updater: undo splits with gain < gamma whose children are leaves; True if a leaf."""
        nodes = self.nodes
        if nodes["left"][node] == LEAF:
            return True
        left_leaf, right_leaf = self._prune(nodes["left"][node]), self._prune(nodes["right"][node])
        if left_leaf and right_leaf and nodes["loss"][node] < f32(self.est.gamma):
            nodes["left"][node] = nodes["right"][node] = nodes["feature"][node] = LEAF
            nodes["loss"][node] = f32(0)
            return True
        return False

    # -- histogram split finding
    def _histogram(self, examples):
        """Per-bin sums (G_b, H_b) of g and h over ``examples``, shape (F, n_bins) each."""
        xp = array_module(self.g)
        slots = self.flat_bins[examples].ravel()
        size = self.flat_bins.shape[1] * self.n_bins
        n_f = self.flat_bins.shape[1]
        hist = [xp.bincount(slots, weights=xp.repeat(v[examples], n_f), minlength=size).reshape(n_f, self.n_bins)
                for v in (self.g, self.h)]
        return hist[0], hist[1]

    def _best_splits_hist(self, nodes):
        """Best split of every leaf of the level at once, from the stacked histograms (L, F, B)."""
        xp = array_module(self.g)
        G_b = xp.stack([n.hist[0] for n in nodes])
        H_b = xp.stack([n.hist[1] for n in nodes])
        G = G_b[:, 0].sum(axis=1)[:, None, None]           # node sums from the bins of feature 0 (as XGBoost)
        H = H_b[:, 0].sum(axis=1)[:, None, None]
        G_L, H_L = xp.cumsum(G_b, axis=2), xp.cumsum(H_b, axis=2)  # left = bins 0..b
        G_R, H_R = G - G_L, H - H_L
        valid = (H_L >= self.mcw) & (H_R >= self.mcw) & (H_L > 0) & (H_R > 0)
        parent = structure_score(G, H, self.lam)
        gain = xp.where(valid, split_gain(G_L, H_L, G_R, H_R, parent, self.lam), -np.inf)
        b = xp.argmax(gain, axis=2)                          # (L, F): the lowest bin on ties
        best_per_feature = xp.take_along_axis(gain, b[:, :, None], axis=2)[:, :, 0]
        f = xp.argmax(best_per_feature, axis=1)              # the lowest feature on ties
        out = []
        for i, node in enumerate(nodes):
            fi, bi = int(f[i]), int(b[i, f[i]])
            if not bool(valid[i, fi, bi]):
                out.append(None)
                continue
            threshold = self.edges[fi][bi + 1]               # left: bins 0..b, i.e. x < c_{b+1}
            out.append((f32(gain[i, fi, bi]), fi, threshold, self.binned[node.examples, fi] <= bi))
        return out

    # -- final arrays
    def _to_tree(self):
        """Compact the reachable nodes (breadth-first ids) and set leaf values η w*.

        Returns the tree and, per leaf, (leaf id, the training examples that reached it).
        """
        nodes, eta = self.nodes, f32(self.est.learning_rate)
        order, new_id = [0], {0: 0}
        for node in order:
            if nodes["left"][node] != LEAF:
                for child in (nodes["left"][node], nodes["right"][node]):
                    new_id[child] = len(order)
                    order.append(child)
        is_leaf = np.array([nodes["left"][i] == LEAF for i in order])
        base_weight = np.array([nodes["base_weight"][i] for i in order], dtype=f32)

        def remap(key):
            return np.array([LEAF if nodes[key][i] == LEAF else new_id[nodes[key][i]] for i in order], dtype=np.int64)

        leaf_examples = [(new, nodes["examples"][old]) for new, old in enumerate(order) if is_leaf[new]]
        return BoostedTree(
            children_left=remap("left"), children_right=remap("right"),
            feature=np.where(is_leaf, LEAF, [nodes["feature"][i] for i in order]).astype(np.int64),
            threshold=np.where(is_leaf, f32(0), [nodes["threshold"][i] for i in order]).astype(f32),
            value=np.where(is_leaf, base_weight * eta, f32(0)).astype(f32)[:, None],
            loss_changes=np.array([nodes["loss"][i] for i in order], dtype=f32),
            sum_hessian=np.array([nodes["hess"][i] for i in order], dtype=f32),
            base_weights=base_weight,
        ), leaf_examples


# ----------------------------------------------------------------------------- estimators
class _BaseGradientBoosting:
    """Shared boosting loop; subclasses define the objective and the targets."""

    def __init__(self, *, n_estimators=100, learning_rate=0.3, max_depth=6, min_child_weight=1.0, reg_lambda=1.0,
                 gamma=0.0, subsample=1.0, tree_method="exact", max_bin=256, base_score=None, seed=0):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.reg_lambda = reg_lambda
        self.gamma = gamma
        self.subsample = subsample
        self.tree_method = tree_method
        self.max_bin = max_bin
        self.base_score = base_score
        self.seed = seed

    def _validate(self):
        validate_params(self, {
            "n_estimators": Interval(1, None, integer=True),
            "learning_rate": Interval(0, None, closed="neither"),
            "max_depth": Interval(1, None, integer=True),
            "min_child_weight": Interval(0, None),
            "reg_lambda": Interval(0, None),
            "gamma": Interval(0, None),
            "subsample": Interval(0, 1, closed="right"),
            "tree_method": Options("exact", "hist"),
            "max_bin": Interval(2, None, integer=True),
            "base_score": Interval(None, None, none_ok=True),
            "seed": Interval(0, None, integer=True, none_ok=True),
        })

    def fit(self, X, y, sample_weight=None, *, bin_cuts=None):
        """Boost ``n_estimators`` rounds of trees.

        Parameters
        ----------
        X : ndarray of shape (n_examples, n_features)
            Features; used as float32, like XGBoost.
        y : ndarray of shape (n_examples,)
            Targets (regression) or class labels (classification).
        sample_weight : ndarray of shape (n_examples,), optional
            Event weights; they multiply g_i and h_i.
        bin_cuts : (indptr, values), optional
            ``tree_method="hist"`` only: bin edges in the layout of :func:`quantile_cuts`, e.g. from
            XGBoost's ``DMatrix.get_quantile_cut()`` to reproduce its bins exactly.

        Returns
        -------
        self
        """
        self._validate()
        X = check_X(X, dtype=f32)
        xp = array_module(X)
        w = check_sample_weight(sample_weight, X.shape[0], xp).astype(f32)
        y = check_targets(y, X.shape[0], xp, numeric=isinstance(self, GradientBoostingRegressor))
        self.n_features_in_ = X.shape[1]
        y = self._encode_targets(y)
        margin = xp.broadcast_to(self._base_margin(y, w), (X.shape[0], self.n_groups_)).astype(f32)
        binned = edges = None
        if self.tree_method == "hist":
            if bin_cuts is None:
                bin_cuts = quantile_cuts(np.asarray(X), self.max_bin, np.asarray(w))
            edges = _check_cuts(bin_cuts, X.shape[1])
            binned = xp.stack([xp.clip(xp.searchsorted(xp.asarray(e[1:]), X[:, f], side="right"), 0, len(e) - 2)
                               for f, e in enumerate(edges)], axis=1)
            self.bin_cuts_ = (np.asarray(bin_cuts[0]), np.asarray(bin_cuts[1], dtype=f32))
        elif bin_cuts is not None:
            raise ConfigError(f"{type(self).__name__}: bin_cuts given with tree_method={self.tree_method!r}",
                              "use tree_method='hist' to bin the features, or drop bin_cuts")
        grower = _TreeGrower(self, X, binned, edges)
        rng = np.random.default_rng(self.seed)
        self.trees_ = []
        all_examples = xp.arange(X.shape[0])
        all_sorted = presort(X) if self.tree_method == "exact" else None  # sort once (XGBoost: sorted columns)
        for _round in range(self.n_estimators):
            g, h = self._grad_hess(margin, y, w)
            for k in range(self.n_groups_):                   # one tree per class (softmax), else one
                examples, sorted_rows = all_examples, all_sorted
                if self.subsample < 1:
                    drawn = xp.asarray(rng.random(X.shape[0]) < self.subsample)
                    examples = all_examples[drawn]
                    sorted_rows = None if all_sorted is None else partition_sorted(all_sorted, drawn)[0]
                tree, leaf_examples = grower.grow(g[:, k], h[:, k], examples, sorted_rows)
                self.trees_.append(tree)
                if self.subsample < 1:                         # examples left out need the full walk
                    margin[:, k] += tree.value[tree.apply(X, strict=True), 0]
                else:                                          # each example's leaf is known from growing
                    for leaf, ex in leaf_examples:
                        margin[ex, k] += tree.value[leaf, 0]
        return self

    def decision_function(self, X):
        """Raw margins F(x) = base margin + Σ_m η f_m(x) (XGBoost's ``output_margin=True``).

        Parameters
        ----------
        X : ndarray of shape (n_examples, n_features)

        Returns
        -------
        ndarray of shape (n_examples,) or (n_examples, n_classes) for softmax, float32
        """
        if not hasattr(self, "trees_"):
            raise ConfigError(f"this {type(self).__name__} is not fitted yet", "call fit(X, y) first")
        X = check_X(X, n_features=self.n_features_in_, dtype=f32)
        xp = array_module(X)
        margin = xp.broadcast_to(self.base_margin_, (X.shape[0], self.n_groups_)).astype(f32)
        for i, tree in enumerate(self.trees_):
            margin[:, i % self.n_groups_] += tree.value[tree.apply(X, strict=True), 0]
        return margin if self.n_groups_ > 1 else margin[:, 0]

    def get_dump(self) -> list:
        """Every tree as a nested dict shaped like XGBoost's ``get_dump(dump_format="json")``."""
        return [tree.get_dump() for tree in self.trees_]


class GradientBoostingRegressor(_BaseGradientBoosting):
    """Boosted regression trees with the squared error (XGBoost's ``reg:squarederror``).

    Parameters
    ----------
    n_estimators : int, default=100
        Boosting rounds M.
    learning_rate : float, default=0.3
        Shrinkage η of every tree (XGBoost's ``eta``).
    max_depth : int, default=6
    min_child_weight : float, default=1.0
        Least hessian sum H a child may hold.
    reg_lambda : float, default=1.0
        L2 penalty λ on leaf weights.
    gamma : float, default=0.0
        Least :func:`split_gain` a kept split needs (XGBoost's ``gamma``/``min_split_loss``).
    subsample : float, default=1.0
        Fraction of examples drawn (without replacement, per tree) to grow each tree.
    tree_method : {"exact", "hist"}, default="exact"
    max_bin : int, default=256
        Bins per feature for ``"hist"``.
    base_score : float or None, default=None
        Initial prediction F_0; None uses the weighted mean target.
    seed : int or None, default=0
        Seed of ``subsample``.

    Attributes
    ----------
    trees_ : list of BoostedTree
    base_margin_ : ndarray of shape (1,)
    bin_cuts_ : (indptr, values)
        The histogram bin edges (``"hist"`` only).
    """

    objective_ = "reg:squarederror"
    n_groups_ = 1

    def _encode_targets(self, y):
        return y.astype(f32)

    def _base_margin(self, y, w):
        base = float((y.astype(np.float64) * w).sum() / w.sum()) if self.base_score is None else self.base_score
        self.base_margin_ = np.array([base], dtype=f32)
        return self.base_margin_

    def _grad_hess(self, margin, y, w):
        g, h = squared_error_grad_hess(margin[:, 0], y, w)
        return g[:, None], h[:, None]

    def predict(self, X):
        """Predicted targets F(x), shape (n_examples,), float32."""
        return self.decision_function(X)


class GradientBoostingClassifier(_BaseGradientBoosting):
    """Boosted classification trees: logistic loss for 2 classes, softmax for more.

    The objective follows the number of classes in ``y``: ``binary:logistic`` (one tree per
    round) or ``multi:softprob`` (one tree per class per round). Parameters as for
    :class:`GradientBoostingRegressor`, except ``base_score``: a probability for the logistic
    loss (None: the weighted fraction of the second class) and a margin shared by all classes
    for softmax (None: log class frequencies).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    objective_ : str
    trees_ : list of BoostedTree
        Round m, class k is ``trees_[m * n_classes + k]`` for softmax (XGBoost's order).
    base_margin_ : ndarray of shape (1,) or (n_classes,)
    """

    def _encode_targets(self, y):
        self.classes_, y_index = np.unique(np.asarray(y), return_inverse=True)
        if self.classes_.shape[0] < 2:
            raise DataError(f"y holds a single class ({self.classes_.tolist()})",
                            "pass examples of at least two classes")
        self.objective_ = "binary:logistic" if self.classes_.shape[0] == 2 else "multi:softprob"
        self.n_groups_ = 1 if self.classes_.shape[0] == 2 else int(self.classes_.shape[0])
        xp = array_module(y)
        return xp.asarray(y_index).astype(f32 if self.n_groups_ == 1 else np.int64)

    def _base_margin(self, y, w):
        xp = array_module(y)
        if self.n_groups_ == 1:
            p = float((y.astype(np.float64) * w).sum() / w.sum()) if self.base_score is None else self.base_score
            if not 0 < p < 1:
                raise ConfigError(f"{type(self).__name__}: base_score={p!r} is not a probability in (0, 1)",
                                  "pass a base_score strictly between 0 and 1 for the logistic loss")
            margin = [-np.log(1.0 / p - 1.0)]                 # logit, as XGBoost's ProbToMargin
        elif self.base_score is None:
            freq = np.bincount(np.asarray(y), weights=np.asarray(w, dtype=np.float64), minlength=self.n_groups_)
            margin = np.log(np.maximum(freq / freq.sum(), 1e-16))
        else:
            margin = [self.base_score] * self.n_groups_
        self.base_margin_ = np.asarray(margin, dtype=f32)
        return xp.asarray(self.base_margin_)

    def _grad_hess(self, margin, y, w):
        if self.n_groups_ == 1:
            g, h = logistic_grad_hess(margin[:, 0], y, w)
            return g[:, None], h[:, None]
        return softmax_grad_hess(margin, y, w)

    def predict_proba(self, X):
        """Class probabilities, shape (n_examples, n_classes), float32.

        Parameters
        ----------
        X : ndarray of shape (n_examples, n_features)
        """
        margin = self.decision_function(X)
        if self.n_groups_ == 1:
            p = sigmoid(margin)
            return array_module(p).stack([f32(1) - p, p], axis=1)
        return softmax(margin)

    def predict(self, X):
        """Most probable class of each example, shape (n_examples,)."""
        best = np.asarray(self.predict_proba(X)).argmax(axis=1)
        return self.classes_[best]

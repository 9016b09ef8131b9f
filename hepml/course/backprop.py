"""Exercise 1 — the worked backpropagation example of the backup slides ("calculating weights: slide 2").

One neuron without activation and the squared error:

    out = y = x·w + b,        Q = (y_target − y)²

Chain rule ∂Q/∂θ = ∂Q/∂y · ∂y/∂θ:

    ∂Q/∂y = −2 (y_target − y),   ∂Q/∂w = −2 x (y_target − y),   ∂Q/∂b = −2 (y_target − y)

and one gradient-descent step θ_{i+1} = θ_i − η ∂Q(θ_i)/∂θ_i. With x = 1, w = 0.1, b = 1,
y_target = 2 and η = 0.1 the slide's table is

    y = 1.1   Q = 0.81   ∂Q/∂y = −1.8   ∂Q/∂w = −1.8   ∂Q/∂b = −1.8   w_new = 0.28   b_new = 1.18

Here the same step is done four ways, in float64: the formulas by hand, the NumPy core's
autograd (``Tensor.backward`` + ``core.optimizers.SGD``), PyTorch (``loss.backward()`` +
``torch.optim.SGD``) and Keras 3 (``tf.GradientTape`` + ``keras.optimizers.SGD``). Every
number must equal the slide's to 1e-12 (float64 cannot hold 0.81 exactly: 2 − 1.1 is
0.8999999999999999) and read exactly as the slide when rounded to its two decimals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._util import check, figure, import_keras, import_torch, keras_floatx


#: The slide's inputs.
INPUTS = {"x": 1.0, "w": 0.1, "b": 1.0, "y_target": 2.0, "eta": 0.1}
#: The slide's table, column by column.
SLIDE_TABLE = {"y": 1.1, "Q": 0.81, "dQ/dy": -1.8, "dQ/dw": -1.8, "dQ/db": -1.8, "w_new": 0.28, "b_new": 1.18}
TOLERANCE = 1e-12


def by_hand(x, w, b, y_target, eta) -> dict:
    """The slide's formulas written out."""
    y = x * w + b
    dQ_dy = -2 * (y_target - y)
    dQ_dw, dQ_db = dQ_dy * x, dQ_dy * 1.0
    return {"y": y, "Q": (y_target - y) ** 2, "dQ/dy": dQ_dy, "dQ/dw": dQ_dw, "dQ/db": dQ_db,
            "w_new": w - eta * dQ_dw, "b_new": b - eta * dQ_db}


def with_core(x, w, b, y_target, eta) -> dict:
    """NumPy core: build the graph, ``Q.backward()`` fills every ``.grad``, SGD takes the step."""
    from ..core.autograd import Tensor
    from ..core.optimizers import SGD

    w_t, b_t = Tensor(np.array(w)), Tensor(np.array(b))
    y = w_t * x + b_t                      # forward: out = y = x·w + b
    Q = (y_target - y) ** 2                # Q = (y_target − y)²
    Q.backward()                           # backward: ∂Q/∂y, then ∂Q/∂w = ∂Q/∂y · x, ∂Q/∂b = ∂Q/∂y · 1
    row = {"y": float(y.data), "Q": float(Q.data), "dQ/dy": float(y.grad), "dQ/dw": float(w_t.grad),
           "dQ/db": float(b_t.grad)}
    SGD([w_t, b_t], lr=eta).step()         # θ ← θ − η ∂Q/∂θ
    return row | {"w_new": float(w_t.data), "b_new": float(b_t.data)}


def with_torch(x, w, b, y_target, eta) -> dict:
    """PyTorch: ``requires_grad`` leaves, ``retain_grad`` on y to see ∂Q/∂y, ``torch.optim.SGD``."""
    torch = import_torch()
    w_t = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    b_t = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    y = x * w_t + b_t
    y.retain_grad()                        # torch keeps .grad only on leaves unless asked
    Q = torch.nn.functional.mse_loss(y, torch.tensor(y_target, dtype=torch.float64))
    opt = torch.optim.SGD([w_t, b_t], lr=eta)
    opt.zero_grad()
    Q.backward()
    row = {"y": y.item(), "Q": Q.item(), "dQ/dy": y.grad.item(), "dQ/dw": w_t.grad.item(), "dQ/db": b_t.grad.item()}
    opt.step()
    return row | {"w_new": w_t.item(), "b_new": b_t.item()}


def with_keras(x, w, b, y_target, eta) -> dict:
    """Keras 3: a ``Dense(1)`` layer holding w and b, ``tf.GradientTape`` for the derivatives,
    ``keras.optimizers.SGD.apply_gradients`` for the step; floatx float64 (see ``keras_floatx``)."""
    _, tf = import_keras()
    with keras_floatx("float64") as keras:
        layer = keras.layers.Dense(1)
        inputs = tf.constant([[x]], dtype=tf.float64)
        layer.build(inputs.shape)
        layer.set_weights([np.array([[w]]), np.array([b])])  # (initializers.Constant would round to float32)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            y = layer(inputs)
            Q = tf.reduce_mean(keras.losses.mean_squared_error(tf.constant([[y_target]], dtype=tf.float64), y))
        dQ_dy, dQ_dw, dQ_db = tape.gradient(Q, [y, layer.kernel, layer.bias])
        row = {"y": float(y[0, 0]), "Q": float(Q), "dQ/dy": float(dQ_dy[0, 0]), "dQ/dw": float(dQ_dw[0, 0]),
               "dQ/db": float(dQ_db[0])}
        keras.optimizers.SGD(learning_rate=eta).apply_gradients([(dQ_dw, layer.kernel), (dQ_db, layer.bias)])
        return row | {"w_new": float(np.asarray(layer.kernel)[0, 0]), "b_new": float(np.asarray(layer.bias)[0])}


def format_table(rows: dict) -> str:
    """The slide's table with one row per framework (values to the slide's precision, then the largest
    deviation from the slide in float64)."""
    head = f"{'':<10}" + "".join(f"{c:>8}" for c in SLIDE_TABLE) + f"{'max|Δ| vs slide':>18}"
    lines = [head, f"{'slide':<10}" + "".join(f"{v:>8.4g}" for v in SLIDE_TABLE.values())]
    for name, row in rows.items():
        dev = max(abs(row[c] - SLIDE_TABLE[c]) for c in SLIDE_TABLE)
        lines.append(f"{name:<10}" + "".join(f"{row[c]:>8.4g}" for c in SLIDE_TABLE) + f"{dev:>18.2e}")
    return "\n".join(lines)


def _plot(path, rows) -> str:
    """Q(w) at fixed b: the tangent of slope ∂Q/∂w at w = 0.1 and the step to w_new."""
    p = INPUTS
    w = np.linspace(-0.2, 1.2, 200)
    Q = (p["y_target"] - (p["x"] * w + p["b"])) ** 2
    with figure(path) as (fig, ax):
        ax.plot(w, Q, label=r"$Q(w) = (y_{target} - (x w + b))^2$, $b = 1$")
        t = SLIDE_TABLE
        ax.plot(w, t["Q"] + t["dQ/dw"] * (w - p["w"]), ls="--", label=r"tangent, slope $\partial Q/\partial w = -1.8$")
        q_new = (p["y_target"] - (p["x"] * rows["core"]["w_new"] + p["b"])) ** 2
        ax.annotate("", xy=(rows["core"]["w_new"], q_new), xytext=(p["w"], t["Q"]),
                    arrowprops={"arrowstyle": "->", "lw": 2, "color": "C3"})
        ax.plot([p["w"], rows["core"]["w_new"]], [t["Q"], q_new], "o", color="C3",
                label=r"$w_{new} = w - \eta\,\partial Q/\partial w = 0.28$")
        ax.set(xlabel="w", ylabel="Q", ylim=(-0.1, 1.6))
        ax.legend(fontsize=14)
    return str(path)


def run(out_dir) -> dict:
    """Compute the slide's table by hand, in the core, in PyTorch and in Keras; check every cell."""
    out_dir = Path(out_dir)
    rows = {"by hand": by_hand(**INPUTS), "core": with_core(**INPUTS), "torch": with_torch(**INPUTS),
            "keras": with_keras(**INPUTS)}
    for name, row in rows.items():
        for col, expected in SLIDE_TABLE.items():
            check(abs(row[col] - expected) <= TOLERANCE, f"{name}: {col} = {row[col]!r}, the slide says {expected}")
            check(round(row[col], 2) == expected,
                  f"{name}: {col} = {row[col]!r} does not read {expected} to 2 decimals")
    spread = max(abs(rows[a][c] - rows["core"][c]) for a in rows for c in SLIDE_TABLE)
    return {"inputs": INPUTS, "slide": SLIDE_TABLE, "rows": rows, "max_spread_between_frameworks": spread,
            "table": format_table(rows), "plots": [_plot(out_dir / "backprop_step.png", rows)]}

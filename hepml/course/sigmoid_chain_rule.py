"""Exercise 2 — the sigmoid's derivative by the chain rule (slide "Training — chain rule").

Decompose σ(x) = 1/(1 + e⁻ˣ) into base functions,

    σ(x) = f(g(h(p(x)))),   f(z) = 1/z,   g(z) = 1 + z,   h(z) = eᶻ,   p(z) = −z,

and multiply their local derivatives (the chain rule ∂f(t(x))/∂x = ∂f/∂t · ∂t/∂x):

    σ'(x) = ∂f/∂g · ∂g/∂h · ∂h/∂p · ∂p/∂x = −1/g² · 1 · eᵖ · (−1) = e⁻ˣ/(1 + e⁻ˣ)² = σ(x)(1 − σ(x)).

Four routes to σ'(x) on a grid: the chain-rule product, the closed form σ(1 − σ), the core's
autograd through the four primitive operations (which is exactly that product, done by
``backward()``), and central finite differences [σ(x + h) − σ(x − h)]/2h. The first three
agree to rounding; the numerical one to O(h²).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._util import check, figure

STEP = 1e-5  # h of the central difference


def sigma(x):
    return 1.0 / (1.0 + np.exp(-x))


def chain_rule(x):
    """σ'(x) as the product of the four local derivatives, evaluated at the intermediate values."""
    p = -x                 # p(x) = −x,      ∂p/∂x = −1
    h = np.exp(p)          # h(p) = eᵖ,      ∂h/∂p = eᵖ
    g = 1.0 + h            # g(h) = 1 + h,   ∂g/∂h = 1
    # f(g) = 1/g,      ∂f/∂g = −1/g²
    return (-1.0 / g**2) * 1.0 * np.exp(p) * (-1.0)


def closed_form(x):
    """σ'(x) = σ(x)(1 − σ(x))."""
    s = sigma(x)
    return s * (1.0 - s)


def autograd(x):
    """The core's Tensor through the same four primitives: backward() applies the chain rule."""
    from ..core.autograd import Tensor

    t = Tensor(np.array(x, dtype=np.float64))
    s = 1.0 / (1.0 + (-t).exp())   # f(g(h(p(x)))) from Tensor primitives
    s.sum().backward()             # Σ_i σ(x_i): ∂/∂x_i is σ'(x_i), elementwise
    return t.grad


def finite_difference(x, h: float = STEP):
    """[σ(x + h) − σ(x − h)] / 2h."""
    return (sigma(x + h) - sigma(x - h)) / (2 * h)


def run(out_dir) -> dict:
    """Compare the four routes on x ∈ [−8, 8] and plot σ with its derivative."""
    x = np.linspace(-8, 8, 321)
    routes = {"chain rule": chain_rule(x), "sigma(1-sigma)": closed_form(x), "core autograd": autograd(x),
              "finite difference": finite_difference(x)}
    ref = routes["sigma(1-sigma)"]
    deviation = {name: float(np.abs(v - ref).max()) for name, v in routes.items()}
    for name in ("chain rule", "core autograd"):
        check(deviation[name] < 1e-15, f"{name} differs from σ(1−σ) by {deviation[name]:.3g}")
    check(deviation["finite difference"] < 1e-9, f"finite differences differ by {deviation['finite difference']:.3g}")
    check(abs(routes["chain rule"][160] - 0.25) < 1e-16, "σ'(0) should be 1/4")

    path = Path(out_dir) / "sigmoid_derivative.png"
    with figure(path) as (fig, ax):
        ax.plot(x, sigma(x), label=r"$\sigma(x) = 1/(1+e^{-x})$")
        ax.plot(x, routes["chain rule"], label=r"$\sigma'(x)$, chain rule $f'\,g'\,h'\,p'$")
        ax.plot(x[::16], routes["finite difference"][::16], "o", label="finite difference")
        ax.plot(x, ref, ls=":", color="k", label=r"$\sigma(x)(1-\sigma(x))$")
        ax.set(xlabel="x", ylabel="value", ylim=(-0.05, 1.15))
        ax.legend(fontsize=14, loc="upper left")
    return {"x_range": [float(x[0]), float(x[-1])], "n_points": int(x.size),
            "max_deviation_from_sigma_1_minus_sigma": deviation, "sigma_prime_at_0": float(routes["chain rule"][160]),
            "finite_difference_step": STEP, "plots": [str(path)]}

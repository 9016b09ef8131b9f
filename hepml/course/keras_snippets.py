"""Exercise 8 — the slides' Keras snippets ("Keras 1", "Keras 2", "Keras 3" backup slides) in Keras 3,
each next to its PyTorch and NumPy-core equivalent.

The snippets were written for Keras 1/2. Keras 3 removed ``output_dim`` and ``init`` (now
``units`` and ``kernel_initializer``), ``nb_epoch`` (``epochs``), ``show_accuracy`` (a metric given
to ``compile``), ``keras.layers.core``, ``keras.constraints.maxnorm``, the ``lr``/``decay``
optimizer arguments and ``keras.wrappers.scikit_learn``. Every removal is tried against the
installed Keras and its actual answer recorded (:func:`keras3_answers`), so the notes cannot drift.

Each rewritten snippet is then trained three times from the *same* initial weights (drawn in
NumPy with the snippet's initializer), on the same batches in the same order, in float64: by
Keras 3, by PyTorch and by the core. Keras and torch place Adam's ε differently
(Keras: η √(1−β₂ᵗ)/(1−β₁ᵗ) · m/(√v + ε); torch: η m̂/(√v̂ + ε)), and their momentum SGD differs
once η follows a schedule, so the core is run once with each framework's rule; each framework
must then agree with its core twin to 1e-10 (measured: ~1e-16).
Two Keras quirks had to be reproduced for that (see :class:`KerasAdam`, :class:`KerasSGD`,
:func:`keras_inverse_time_decay`): the TensorFlow backend rounds Adam's β's to float32 in the
bias correction and SGD's momentum μ, and learning-rate schedules run in float32.
"""

from __future__ import annotations

import importlib
import math
import warnings
from pathlib import Path

import numpy as np

from ..core.optimizers import SGD, Adam
from ._util import check, figure, import_keras, import_torch, keras_floatx

SEED = 1  # the slides' np.random.seed(1)
TOLERANCE = 1e-10  # twins agree to rounding (~1e-16 measured); the design's promise is 1e-6
KERAS_EPSILON = 1e-7  # keras.backend.epsilon(): MaxNorm's ε and Adam's default ε

SLIDE_CODE = {
    "keras1": '''def create_model():
    activation='relu'; dropout_rate=0.0; init_mode='uniform'; weight_constraint=0; optimizer='adam'
    lr = 0.01; momemntum=0
    model = Sequential()
    model.add(Dense(8, input_dim=input_dim, kernel_initializer=init_mode, activation=activation,
                    kernel_constraint=maxnorm(weight_constraint)))
    model.add(Dropout(dropout_rate))
    model.add(Dense(1, kernel_initializer=init_mode, activation='sigmoid'))
    model.compile(loss='binary_crossentropy', optimizer=optimizer, metrics=['accuracy'])
    return model''',
    "keras2": '''from keras.layers.core import Dense
np.random.seed(1)
model = Sequential()
model.add(Dense(input_dim=X_train.shape[1], output_dim=50, init='uniform', activation='tanh'))
model.add(Dense(input_dim=50, output_dim=50, init='uniform', activation='tanh'))
model.add(Dense(input_dim=50, output_dim=y_train_OneHotEncoding.shape[1], init='uniform', activation='softmax'))
sgd = SGD(lr=0.001, decay=1e-7, momentum=.9)
model.compile(loss='categorical_crossentropy', optimizer=sgd)
model.fit(X_train, y_train_OneHotEncoding, nb_epoch=50, batch_size=300, verbose=1,
          validation_split=0.1, show_accuracy=True)''',
    "keras3": '''from keras.wrappers.scikit_learn import KerasRegressor
X_train,Y_train,X_test,Y_test = train_test_split(X,Y,test_size=0.25,random_state=4)
def baseline_model():
    model = Sequential()
    model.add(Dense(5,input_shape=(5,),kernel_initializer='normal',activation='relu'))
    model.add(Dense(1,kernel_initializer='normal'))
    model.compile(loss='mean_squared_error', optimizer='adam')
    return model
estimator = KerasRegressor(build_fn=baseline_model,epochs=5,batch_size=32)
estimator.fit(X_train,Y_train)''',
}

#: What changed, slide by slide: (old, Keras 3, why).
CHANGES = {
    "keras1": [
        ("Dense(8, input_dim=input_dim, ...)", "keras.Input(shape=(input_dim,)) as the first layer",
         "Keras 3 layers take no input_dim/input_shape (only a warning, the Input layer is the one way)"),
        ("maxnorm(weight_constraint)", "keras.constraints.MaxNorm(weight_constraint)",
         "the lower-case aliases are gone"),
        ("weight_constraint=0", "weight_constraint=4 (the slide's 'or 4')",
         "MaxNorm(0) rescales every kernel column to norm 0: the layer is zeroed after each step and cannot learn"),
        ("lr = 0.01; momemntum=0 (unused)", "keras.optimizers.Adam() defaults (η = 1e-3, ε = 1e-7)",
         "the slide's variables never reach optimizer='adam'; the string gives Adam's defaults"),
    ],
    "keras2": [
        ("from keras.layers.core import Dense", "from keras.layers import Dense", "keras.layers.core was removed"),
        ("Dense(input_dim=..., output_dim=50, init='uniform')", "Dense(50, kernel_initializer='uniform')",
         "output_dim → units, init → kernel_initializer; 'uniform' is still U(−0.05, 0.05)"),
        ("SGD(lr=0.001, decay=1e-7, momentum=.9)",
         "SGD(learning_rate=InverseTimeDecay(0.001, decay_steps=1, decay_rate=1e-7), momentum=0.9)",
         "lr → learning_rate; decay is IGNORED with only a warning, so the schedule must be explicit"),
        ("fit(..., nb_epoch=50)", "fit(..., epochs=50)",
         "nb_epoch was renamed in Keras 2 and removed (the course trains 10 epochs to stay quick)"),
        ("fit(..., show_accuracy=True)", "compile(..., metrics=['accuracy'])", "metrics are declared at compile time"),
        ("np.random.seed(1)", "keras.utils.set_random_seed(1)", "seeds Python, NumPy and the backend together"),
    ],
    "keras3": [
        ("from keras.wrappers.scikit_learn import KerasRegressor", "keras.wrappers.SKLearnRegressor(model=...)",
         "the old wrapper was removed; Keras ≥ 3.5 ships SKLearnRegressor "
         "(build_fn → model, fit options in fit_kwargs)"),
        ("Dense(5, input_shape=(5,), ...)", "keras.Input(shape=(5,)) then Dense(5, ...)", "no input_shape on layers"),
        ("X_train,Y_train,X_test,Y_test = train_test_split(...)",
         "X_train, X_test, Y_train, Y_test = train_test_split(...)",
         "bug on the slide: train_test_split returns X_train, X_test, y_train, y_test"),
        ("min_max = MinMaxScaler() (never used)", "MinMaxScaler fitted on the training split, applied to both",
         "the slide builds the scaler but forgets to apply it"),
        ("build_fn=baseline_model", "model=baseline_model(X, y)", "the new wrapper calls model(X=..., y=...)"),
    ],
}


# ----------------------------------------------------------------------------- what Keras 3 says
def _old_usages(keras):
    """Each removed usage as a zero-argument call; Keras' answer is recorded by :func:`keras3_answers`."""
    X, y = np.zeros((4, 2)), np.zeros(4)

    def fit(**kwargs):
        m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        m.compile(loss="mse", optimizer="sgd")
        return m.fit(X, y, verbose=0, **kwargs)

    return {
        "Dense(output_dim=50)": lambda: keras.layers.Dense(50, output_dim=50),
        "Dense(init='uniform')": lambda: keras.layers.Dense(50, init="uniform"),
        "Dense(input_dim=4)": lambda: keras.Sequential([keras.layers.Dense(8, input_dim=4)]),
        "keras.constraints.maxnorm": lambda: keras.constraints.maxnorm(4),
        "import keras.layers.core": lambda: importlib.import_module("keras.layers.core"),
        "SGD(lr=0.001)": lambda: keras.optimizers.SGD(lr=0.001),
        "SGD(decay=1e-7)": lambda: keras.optimizers.SGD(learning_rate=0.001, decay=1e-7),
        "fit(nb_epoch=1)": lambda: fit(nb_epoch=1),
        "fit(show_accuracy=True)": lambda: fit(epochs=1, show_accuracy=True),
        "import keras.wrappers.scikit_learn": lambda: importlib.import_module("keras.wrappers.scikit_learn"),
    }


#: Old usages that Keras 3 still accepts, with a warning (everything else must raise).
WARNS_ONLY = ("Dense(input_dim=4)", "SGD(decay=1e-7)")


def keras3_answers() -> dict:
    """{old usage: 'ErrorType: message' or 'warning: message'} from the installed Keras."""
    keras, _ = import_keras()
    answers = {}
    for name, call in _old_usages(keras).items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                call()
                answer = "accepted" + "".join(f"; warning: {str(w.message).splitlines()[0]}" for w in caught[:1])
            except Exception as exc:  # the point is to record what Keras 3 says
                answer = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        answers[name] = answer
        expected_warning = name in WARNS_ONLY
        check(answer.startswith("accepted; warning") if expected_warning else not answer.startswith("accepted"),
              f"Keras 3 answered {answer!r} to {name}")
    return answers


# ----------------------------------------------------------------------------- data
def binary_data(n=640, d=4, seed=SEED):
    """Two Gaussian classes in d dimensions (means ±0.5 per feature)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(np.float64)
    return rng.normal(size=(n, d)) + (y[:, None] - 0.5), y


def multiclass_data(n=1500, d=8, n_classes=3, seed=SEED):
    """Three Gaussian classes (think b, c, light jets) and their one-hot encoding."""
    rng = np.random.default_rng(seed + 1)
    label = rng.integers(0, n_classes, n)
    centres = rng.normal(0, 1.0, (n_classes, d))
    return rng.normal(size=(n, d)) + centres[label], np.eye(n_classes)[label]


HOUSING_COLUMNS = ("Avg. Area Income", "Avg. Area House Age", "Avg. Area Number of Rooms",
                   "Avg. Area Number of Bedrooms", "Area Population")


def housing_data(n=1000, seed=SEED):
    """A synthetic stand-in for the slide's USA_Housing.csv: its five columns and a price (M$).

    The CSV is not shipped; the price is a linear function of the columns plus noise, as in that
    data set's usual description.
    """
    rng = np.random.default_rng(seed + 2)
    X = np.column_stack([rng.normal(68_000, 10_600, n), rng.normal(6.0, 1.0, n), rng.normal(7.0, 1.0, n),
                         rng.normal(4.0, 1.2, n), rng.normal(36_000, 9_900, n)])
    price = (21.6 * X[:, 0] + 165_000 * X[:, 1] + 120_000 * X[:, 2] + 2_000 * X[:, 3] + 15.2 * X[:, 4] - 2.64e6)
    return X, (price + rng.normal(0, 100_000, n)) / 1e6


# ----------------------------------------------------------------------------- shared weights
def initial_weights(sizes, init: str, seed=SEED):
    """[(kernel (in, out), bias (out,)), ...] drawn in NumPy as Keras' 'uniform' U(−0.05, 0.05) or
    'normal' N(0, 0.05²) initializers would; biases start at zero."""
    rng = np.random.default_rng(seed)
    draw = {"uniform": lambda s: rng.uniform(-0.05, 0.05, s), "normal": lambda s: rng.normal(0, 0.05, s)}[init]
    return [(draw((a, b)), np.zeros(b)) for a, b in zip(sizes[:-1], sizes[1:])]


def max_norm(kernel, max_value, xp=np):
    """Keras' MaxNorm on a (in, out) kernel: w · clip(‖w_col‖, 0, c) / (ε + ‖w_col‖), column by column."""
    norms = xp.sqrt(xp.sum(kernel * kernel, axis=0, keepdims=True))
    return kernel * (xp.clip(norms, 0, max_value) / (KERAS_EPSILON + norms))


# ----------------------------------------------------------------------------- Keras' update rules
def _f32(x: float) -> float:
    """A Python float as TensorFlow's ``cast`` sees it: through a float32 tensor."""
    return float(np.float32(x))


class KerasAdam(Adam):
    """Adam exactly as ``keras.optimizers.Adam.update_step`` runs on the TensorFlow backend::

        α = η √(1 − β₂ᵗ) / (1 − β₁ᵗ);   m += (g − m)(1 − β₁);   v += (g² − v)(1 − β₂);   θ −= m α / (√v + ε)

    ε sits outside the bias correction (the core's ``eps_convention="keras"``), and β₁ᵗ, β₂ᵗ use
    β's rounded to float32: ``ops.cast(0.999, float64)`` goes through a float32 tensor. That
    rounding alone moves float64 weights by ~1e-6 relative per step, so the twin needs it.
    """

    def _update(self, theta, g, state):
        beta1, beta2 = self.betas
        if "m" not in state:
            state["m"], state["v"] = g * 0, g * 0
        m, v = state["m"], state["v"]
        alpha = self.lr * math.sqrt(1 - _f32(beta2) ** self.t) / (1 - _f32(beta1) ** self.t)
        m += (g - m) * (1 - beta1)
        v += (g * g - v) * (1 - beta2)
        theta -= (m * alpha) / (np.sqrt(v) + self.eps)


def keras_inverse_time_decay(t: int, initial: float = 0.001, decay_rate: float = 1e-7) -> float:
    """η_t = η_0 / (1 + decay_rate · t) as ``keras.optimizers.schedules.InverseTimeDecay`` computes it:
    in float32, whatever floatx is (the schedule converts its Python floats to float32 tensors)."""
    f = np.float32
    return float(f(initial) / (f(1) + f(decay_rate) * f(t)))


class KerasSGD(SGD):
    """SGD with momentum as ``keras.optimizers.SGD.update_step``: m ← m μ − g η, θ ← θ + m.

    torch (and the core's SGD) keep b ← μ b + g, θ ← θ − η b instead: the same for a constant η,
    different once η follows a schedule. μ is rounded to float32 by the TensorFlow cast.
    """

    def _update(self, theta, g, state):
        if "m" not in state:
            state["m"] = g * 0
        m = state["m"]
        m *= _f32(self.momentum)
        m -= g * self.lr
        theta += m


# ----------------------------------------------------------------------------- three trainers
def batches(n: int, batch_size: int):
    """Keras' order with ``shuffle=False``: consecutive slices, the last one shorter."""
    return [slice(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]


def train_core(weights, activations, loss, X, Y, *, epochs, batch_size, optimizer, constraint=None, lr_schedule=None):
    """The core's loop: forward, Q, ``backward()``, optimizer step, then the constraint. Returns
    (network, per-epoch loss), the epoch loss being the batch losses weighted by batch size (as Keras').

    ``optimizer`` maps the parameter list to a core optimizer, e.g. ``lambda p: Adam(p, lr=1e-3)``.
    """
    from ..core import losses
    from ..core.autograd import Tensor
    from ..core.layers import Activation, Dense, Sequential

    layers = []
    for (kernel, bias), act in zip(weights, activations):
        layers += [Dense(kernel.copy(), bias.copy()), Activation(act)]
    net = Sequential(*layers)
    opt = optimizer(net.parameters())
    loss_fn = {"bce": losses.binary_cross_entropy, "ce": losses.cross_entropy, "mse": losses.mse}[loss]
    history = []
    for _ in range(epochs):
        total = 0.0
        for b in batches(len(X), batch_size):
            if lr_schedule is not None:
                opt.lr = lr_schedule(opt.t)
            opt.zero_grad()
            Q = loss_fn(net(Tensor(X[b], requires_grad=False)), Y[b])
            Q.backward()
            opt.step()
            if constraint is not None:
                kernel = net[0].kernel
                kernel.data = constraint(kernel.data)
            total += float(Q.data) * (b.stop - b.start)
        history.append(total / len(X))
    return net, history


def core_predict(net, X, head):
    from ..core.autograd import Tensor

    z = net(Tensor(X, requires_grad=False))
    return {"sigmoid": z.sigmoid(), "softmax": z.softmax(), "linear": z}[head].numpy()


def train_torch(weights, activations, loss, X, Y, *, epochs, batch_size, optimizer, constraint=None, lr_schedule=None):
    """The torch loop with the same weights and batches; returns (model, per-epoch loss).

    ``optimizer`` is ``("adam", {lr, betas, eps})`` or ``("sgd", {lr, momentum})`` for ``torch.optim``;
    ``constraint`` is MaxNorm's c for the first layer's weight (torch stores it as (out, in)).
    """
    torch = import_torch()
    torch.manual_seed(SEED)
    acts = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "linear": torch.nn.Identity}
    modules = []
    for (kernel, bias), act in zip(weights, activations):
        lin = torch.nn.Linear(*kernel.shape, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(kernel.T))   # torch stores (out, in)
            lin.bias.copy_(torch.from_numpy(bias))
        modules += [lin, acts[act]()]
    model = torch.nn.Sequential(*modules)
    name, kwargs = optimizer
    if name == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=kwargs["lr"], betas=kwargs["betas"], eps=kwargs["eps"])
    else:
        opt = torch.optim.SGD(model.parameters(), lr=kwargs["lr"], momentum=kwargs["momentum"])
    sched = None
    if lr_schedule is not None:  # LambdaLR multiplies the initial η by the lambda's value
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: lr_schedule(t) / kwargs["lr"])
    loss_fn = {"bce": torch.nn.BCEWithLogitsLoss(), "ce": torch.nn.CrossEntropyLoss(), "mse": torch.nn.MSELoss()}[loss]
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y.reshape(len(Y), -1) if loss != "ce" else Y)
    history = []
    for _ in range(epochs):
        total = 0.0
        for b in batches(len(X), batch_size):
            opt.zero_grad()
            Q = loss_fn(model(Xt[b]), Yt[b])
            Q.backward()
            opt.step()
            if sched is not None:
                sched.step()
            if constraint is not None:
                with torch.no_grad():
                    w = model[0].weight
                    norms = torch.sqrt(torch.sum(w * w, dim=1, keepdim=True))
                    w.mul_(torch.clamp(norms, 0, constraint) / (KERAS_EPSILON + norms))
            total += Q.item() * (b.stop - b.start)
        history.append(total / len(X))
    return model, history


def torch_predict(model, X, head):
    torch = import_torch()
    with torch.no_grad():
        z = model(torch.from_numpy(X))
        return {"sigmoid": torch.sigmoid(z), "softmax": torch.softmax(z, dim=1), "linear": z}[head].numpy()


# ----------------------------------------------------------------------------- the Keras 3 rewrites
def create_model(keras, input_dim, *, activation="relu", dropout_rate=0.0, init_mode="uniform", weight_constraint=4,
                 optimizer="adam"):
    """Slide "Keras 1" in Keras 3."""
    model = keras.Sequential([
        keras.Input(shape=(input_dim,)),
        keras.layers.Dense(8, kernel_initializer=init_mode, activation=activation,
                           kernel_constraint=keras.constraints.MaxNorm(weight_constraint)),
        keras.layers.Dropout(dropout_rate),
        keras.layers.Dense(1, kernel_initializer=init_mode, activation="sigmoid"),
    ])
    model.compile(loss="binary_crossentropy", optimizer=optimizer, metrics=["accuracy"])
    return model


def three_class_model(keras, input_dim, n_classes):
    """Slide "Keras 2" in Keras 3: 50-50 tanh, softmax, SGD with momentum and inverse-time decay."""
    keras.utils.set_random_seed(SEED)
    model = keras.Sequential([
        keras.Input(shape=(input_dim,)),
        keras.layers.Dense(50, kernel_initializer="uniform", activation="tanh"),
        keras.layers.Dense(50, kernel_initializer="uniform", activation="tanh"),
        keras.layers.Dense(n_classes, kernel_initializer="uniform", activation="softmax"),
    ])
    lr = keras.optimizers.schedules.InverseTimeDecay(0.001, decay_steps=1, decay_rate=1e-7)
    model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.SGD(learning_rate=lr, momentum=0.9),
                  metrics=["accuracy"])
    return model


def baseline_model(keras, n_features=5):
    """Slide "Keras 3" in Keras 3 (called by ``keras.wrappers.SKLearnRegressor``)."""
    model = keras.Sequential([
        keras.Input(shape=(n_features,)),
        keras.layers.Dense(5, kernel_initializer="normal", activation="relu"),
        keras.layers.Dense(1, kernel_initializer="normal"),
    ])
    model.compile(loss="mean_squared_error", optimizer="adam")
    return model


def _load(model, weights):
    model.set_weights([a for pair in weights for a in pair])
    return model


def _compare(name, pred, hist) -> dict:
    """Max |Δ| of predictions between each framework and its core twin (checked < TOLERANCE), and
    the informational pairs (the core's own Adam/SGD rule vs Keras, Keras vs torch)."""
    out = {}
    for a, b in (("keras", "core, Keras rule"), ("torch", "core, torch rule")):
        d = float(np.abs(pred[a] - pred[b]).max())
        dh = float(np.abs(np.array(hist[a]) - np.array(hist[b])).max())
        check(d < TOLERANCE and dh < TOLERANCE, f"{name}: {a} and {b} differ by {d:.3g} (predictions), {dh:.3g} (loss)")
        out[f"{a} vs {b}"] = d
    out["keras vs core, torch rule"] = float(np.abs(pred["keras"] - pred["core, torch rule"]).max())
    out["keras vs torch"] = float(np.abs(pred["keras"] - pred["torch"]).max())
    return out


def _adam_twins(keras_eps=KERAS_EPSILON):
    """Core optimizers reproducing Keras' and torch's Adam with Keras' defaults (η = 1e-3, ε = 1e-7)."""
    return {"core, Keras rule": lambda p: KerasAdam(p, lr=1e-3, eps=keras_eps),
            "core, torch rule": lambda p: Adam(p, lr=1e-3, eps=keras_eps)}


def snippet_keras1(keras) -> dict:
    """Binary classifier with a MaxNorm constraint and Adam, 10 epochs of batches of 32."""
    X, y = binary_data()
    epochs, bs = 10, 32
    weights = initial_weights([X.shape[1], 8, 1], "uniform")
    model = _load(create_model(keras, X.shape[1]), weights)
    k_hist = model.fit(X, y, epochs=epochs, batch_size=bs, shuffle=False, verbose=0).history["loss"]
    pred, hist = {"keras": np.asarray(model(X))}, {"keras": k_hist}   # model(X): model.predict without the progress bar
    for twin, opt in _adam_twins().items():
        net, hist[twin] = train_core(weights, ["relu", "linear"], "bce", X, y, optimizer=opt, epochs=epochs,
                                     batch_size=bs, constraint=lambda k: max_norm(k, 4))
        pred[twin] = core_predict(net, X, "sigmoid")
    adam = ("adam", {"lr": 1e-3, "betas": (0.9, 0.999), "eps": KERAS_EPSILON})
    tmodel, hist["torch"] = train_torch(weights, ["relu", "linear"], "bce", X, y, optimizer=adam,
                                        epochs=epochs, batch_size=bs, constraint=4)
    pred["torch"] = torch_predict(tmodel, X, "sigmoid")
    diffs = _compare("keras1", pred, hist)
    zeroed = np.asarray(keras.constraints.MaxNorm(0)(weights[0][0]))
    check(np.all(zeroed == 0), "MaxNorm(0) should zero the kernel")
    accuracy = float(((pred["keras"][:, 0] > 0.5) == y).mean())
    check(accuracy > 0.75, f"the classifier did not learn: accuracy {accuracy}")
    return {"max_abs_diff_predictions": diffs, "loss_history": hist, "train_accuracy": accuracy,
            "maxnorm0_zeroes_kernel": True, "steps": epochs * len(batches(len(X), bs))}


def snippet_keras2(keras, epochs: int = 10) -> dict:
    """Three classes, SGD(momentum 0.9) with η_t = 0.001/(1 + 10⁻⁷ t), batches of 300, 10% validation;
    the slide trains 50 epochs, the course 10 by default (to stay quick)."""
    X, Y = multiclass_data()
    bs = 300
    n_train = int(len(X) * (1 - 0.1))               # validation_split=0.1 takes the LAST 10%, unshuffled
    weights = initial_weights([X.shape[1], 50, 50, Y.shape[1]], "uniform")
    model = _load(three_class_model(keras, X.shape[1], Y.shape[1]), weights)
    fit = model.fit(X, Y, epochs=epochs, batch_size=bs, shuffle=False, verbose=0, validation_split=0.1).history
    pred, hist = {"keras": np.asarray(model(X))}, {"keras": fit["loss"]}
    schedule = lambda t: 0.001 / (1 + 1e-7 * t)  # noqa: E731  (InverseTimeDecay, decay_steps=1; t = steps done)
    twins = {"core, Keras rule": (lambda p: KerasSGD(p, lr=0.001, momentum=0.9), keras_inverse_time_decay),
             "core, torch rule": (lambda p: SGD(p, lr=0.001, momentum=0.9), schedule)}
    for twin, (opt, sched) in twins.items():
        net, hist[twin] = train_core(weights, ["tanh", "tanh", "linear"], "ce", X[:n_train], Y[:n_train],
                                     epochs=epochs, batch_size=bs, optimizer=opt, lr_schedule=sched)
        pred[twin] = core_predict(net, X, "softmax")
    sgd = ("sgd", {"lr": 0.001, "momentum": 0.9})
    tmodel, hist["torch"] = train_torch(weights, ["tanh", "tanh", "linear"], "ce", X[:n_train], Y[:n_train],
                                        epochs=epochs, batch_size=bs, optimizer=sgd, lr_schedule=schedule)
    pred["torch"] = torch_predict(tmodel, X, "softmax")
    diffs = _compare("keras2", pred, hist)
    val = slice(n_train, None)
    val_acc = {k: float((p[val].argmax(1) == Y[val].argmax(1)).mean()) for k, p in pred.items()}
    check(abs(val_acc["keras"] - fit["val_accuracy"][-1]) < 1e-9, "Keras' own val_accuracy disagrees")
    check(len(set(val_acc.values())) == 1, f"validation accuracies differ: {val_acc}")
    check(hist["keras"][-1] < hist["keras"][0], "the loss did not fall")
    return {"max_abs_diff_predictions": diffs, "loss_history": hist, "val_accuracy": val_acc["keras"], "epochs": epochs,
            "n_train": n_train, "n_validation": len(X) - n_train, "steps": epochs * len(batches(n_train, bs))}


def snippet_keras3(keras) -> dict:
    """The regressor through keras.wrappers.SKLearnRegressor, with the split and the scaler fixed."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import MinMaxScaler

    X, Y = housing_data()
    X_train, X_test, Y_train, Y_test = train_test_split(X, Y, test_size=0.25, random_state=4)
    scaler = MinMaxScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    epochs, bs = 5, 32
    weights = initial_weights([5, 5, 1], "normal")
    estimator = keras.wrappers.SKLearnRegressor(
        model=lambda X, y: _load(baseline_model(keras, X.shape[1]), weights),
        fit_kwargs={"epochs": epochs, "batch_size": bs, "shuffle": False, "verbose": 0})
    estimator.fit(X_train, Y_train)
    pred = {"keras": np.asarray(estimator.model_(X_test))}   # = estimator.predict(X_test), without its progress bar
    hist = {"keras": estimator.history_.history["loss"]}
    for twin, opt in _adam_twins().items():
        net, hist[twin] = train_core(weights, ["relu", "linear"], "mse", X_train, Y_train, epochs=epochs,
                                     batch_size=bs, optimizer=opt)
        pred[twin] = core_predict(net, X_test, "linear")
    adam = ("adam", {"lr": 1e-3, "betas": (0.9, 0.999), "eps": KERAS_EPSILON})
    tmodel, hist["torch"] = train_torch(weights, ["relu", "linear"], "mse", X_train, Y_train, epochs=epochs,
                                        batch_size=bs, optimizer=adam)
    pred["torch"] = torch_predict(tmodel, X_test, "linear")
    diffs = _compare("keras3", pred, hist)
    check(hist["keras"][-1] < hist["keras"][0], "the loss did not fall")
    # 5 epochs (the slide's) are far too few here: the loss is still falling, the price barely learnt
    return {"max_abs_diff_predictions": diffs, "loss_history": hist,
            "test_mse": float(np.mean((pred["keras"][:, 0] - Y_test) ** 2)),
            "test_mse_of_the_mean_price": float(np.mean((Y_train.mean() - Y_test) ** 2)), "n_train": len(X_train),
            "steps": epochs * len(batches(len(X_train), bs))}


def run(out_dir) -> dict:
    """Record Keras 3's answers to the old usages, train every snippet three ways, plot the losses."""
    keras, _ = import_keras()
    answers = keras3_answers()
    results = {}
    with keras_floatx("float64"):
        for name, fn in (("keras1", snippet_keras1), ("keras2", snippet_keras2), ("keras3", snippet_keras3)):
            results[name] = fn(keras)
    path = Path(out_dir) / "snippets_three_frameworks.png"
    with figure(path, ncols=3, size=(6.5, 5.5)) as (fig, axes):
        for ax, (name, res) in zip(axes, results.items()):
            for (fw, h), style in zip(res["loss_history"].items(), ("-", "--", ":", "-.")):
                ax.plot(np.arange(1, len(h) + 1), h, style, lw=2.5, label=fw)
            ax.set(xlabel="epoch", ylabel="training loss Q", title=f'slide "{name[:5].title()} {name[5:]}"')
            ax.legend(fontsize=13)
    return {"keras_version": keras.__version__, "keras3_answers": answers, "changes": CHANGES,
            "snippets": results, "plots": [str(path)]}

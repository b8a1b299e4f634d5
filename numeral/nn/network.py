"""A fully connected network trained by back-propagation, written in NumPy.

Notation (layer l = 1..L, a^0 = x, W^l has shape (fan_in, fan_out)):

    forward     z^l = a^{l-1} W^l + b^l          a^l = f(z^l)   (l < L)
                p   = softmax(z^L)               loss = cross-entropy(p, y) + R(W)
    backward    delta^L = dloss/dz^L = (p - onehot(y)) / n
                dloss/dW^l     = (a^{l-1})^T delta^l  + dR/dW^l
                dloss/db^l     = sum over rows of delta^l
                delta^{l-1}    = (delta^l (W^l)^T) * f'(z^{l-1})

That is all of back-propagation; :meth:`Network.compute_gradients_` is these
five lines, in this order, with preallocated buffers so the training loop
allocates nothing per batch. All parameters live in one flat vector
(``net.flat``); ``net.params`` are views into it, so optimisers update the whole
model in a few vectorised operations.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from numeral.nn.activations import Activation, get_activation
from numeral.nn.constraints import check
from numeral.nn.errors import InputError
from numeral.nn.init import init_weights
from numeral.nn.inputs import feature_stage, image_side, image_stage
from numeral.nn.losses import LossBuffers, softmax, softmax_cross_entropy_
from numeral.nn.regularizers import add_penalty_grad_, penalty


def check_inputs(
    X: Any,
    y: Any = None,
    *,
    n_features: int | None = None,
    n_classes: int | None = None,
    dtype: Any = np.float32,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Return X as a C-contiguous (n, n_features) array of ``dtype`` (and y as int64 labels
    in 0..n_classes-1), raising :class:`InputError` with the fix for wrong shapes, NaN/inf
    and bad labels. ``None`` leaves the width or the number of classes open."""
    X = np.asarray(X)
    if X.ndim != 2 or (n_features is not None and X.shape[1] != n_features):
        width = n_features if n_features is not None else "d"
        fix = ("Reshape your data: X.reshape(1, -1) for one sample" if X.ndim == 1 else
               "flatten images first, e.g. with numeral.data")
        raise InputError(
            f"X has shape {X.shape}; expected (n, {width}): one row of values per sample ({fix})"
        )
    if X.shape[1] == 0:
        raise InputError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 "
                         "is required: X needs at least one column")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise InputError(f"X must hold real numbers, got dtype {X.dtype}")
    X = np.ascontiguousarray(X, dtype=dtype)
    if not np.isfinite(X).all():
        bad = np.argwhere(~np.isfinite(X))[0]
        raise InputError(
            f"X contains NaN or inf (first at row {bad[0]}, column {bad[1]}); "
            "clean or drop those samples"
        )
    if y is None:
        return X, None
    y_arr = np.asarray(y)
    if y_arr.ndim != 1 or len(y_arr) != len(X):
        raise InputError(
            f"y has shape {y_arr.shape}; expected ({len(X)},): one integer label per row of X"
        )
    whole = np.issubdtype(y_arr.dtype, np.floating) and np.all(y_arr == np.round(y_arr))
    if y_arr.size and not np.issubdtype(y_arr.dtype, np.integer) and not whole:
        raise InputError(f"y must hold integer class labels, got dtype {y_arr.dtype}")
    y_int = y_arr.astype(np.int64)
    top = n_classes if n_classes is not None else np.iinfo(np.int64).max
    if y_int.size and (y_int.min() < 0 or y_int.max() >= top):
        bad_label = y_int[(y_int < 0) | (y_int >= top)][0]
        limit = f"this network has {n_classes} classes, so labels must be 0..{top - 1}"
        raise InputError(f"label {bad_label} is out of range: "
                         + (limit if n_classes is not None else "labels must be >= 0"))
    return X, y_int


class _Workspace:
    """Buffers for one batch size: activations, back-propagated gradients, dropout masks."""

    def __init__(self, net: Network, n: int, with_dropout: bool) -> None:
        dt = net.dtype
        self.n = n
        self.x = np.empty((n, net.sizes[0]), dt) if net.input_mean is not None else None
        self.a = [np.empty((n, s), dt) for s in net.sizes[1:]]  # a^1 .. a^{L-1}, z^L
        hidden = net.sizes[1:-1]
        self.delta = [np.empty((n, s), dt) for s in hidden]
        self.scratch = [np.empty((n, s), dt) for s in hidden]
        self.mask = [np.empty((n, s), dt) for s in hidden] if with_dropout else []
        self.dropped = [np.empty((n, s), dt) for s in hidden] if with_dropout else []
        self.loss = LossBuffers(n, net.sizes[-1], dt)


class Network:
    """A multi-layer perceptron: ``sizes[0]`` inputs, ``sizes[-1]`` softmax outputs.

    Parameters
    ----------
    sizes : layer widths, input first, e.g. ``[784, 320, 160, 10]``; any depth.
    activation : hidden activation (``sigmoid``, ``tanh``, ``relu``, ``leaky_relu``,
        ``identity``), or one name per hidden layer.
    init : ``zeros``, ``uniform``, ``xavier`` or ``he``.
    seed : seeds initialisation; the same seed gives bit-identical weights.
    dtype : ``float32`` (default) or ``float64``.
    dropout : probability of dropping each hidden unit while training (inverted dropout).
    input_transform : ``none``, ``deskew`` or ``orientation``, and input_gamma : x -> x^gamma
        per pixel (see :mod:`numeral.nn.inputs`): fixed transforms of the images, saved with
        the network. The prediction methods apply them to X themselves (``prepared=True``
        says X already went through :meth:`prepare`); the training methods take X as the
        first layer sees it, ``prepare(X)``, which is ``features(prepare_images(X))``.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str | Sequence[str] = "relu",
        init: str = "he",
        seed: int = 0,
        dtype: str = "float32",
        dropout: float = 0.0,
        input_transform: str = "none",
        input_gamma: float = 1.0,
    ) -> None:
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2:
            raise InputError(f"sizes needs at least an input and an output width, got {sizes}")
        if any(s < 1 for s in sizes):
            raise InputError(f"every layer width must be >= 1, got sizes={sizes}")
        if sizes[-1] < 2:
            raise InputError(f"the output layer needs >= 2 classes, got {sizes[-1]}")
        for name, value in (("dtype", str(dtype)), ("dropout", dropout),
                            ("input_transform", input_transform), ("input_gamma", input_gamma)):
            check(name, value)
        if input_transform != "none":
            try:
                image_side(input_transform, sizes[0])
            except ValueError as exc:
                raise InputError(str(exc)) from None
        n_hidden = len(sizes) - 2
        names = [activation] * n_hidden if isinstance(activation, str) else list(activation)
        if len(names) != n_hidden:
            raise InputError(
                f"got {len(names)} activations for {n_hidden} hidden layers; give one name "
                "or one per hidden layer"
            )
        self.sizes = sizes
        self.activation_names = names
        self.activations: list[Activation] = [get_activation(a) for a in names]
        self.init, self.seed, self.dropout = init, int(seed), float(dropout)
        self.input_transform, self.input_gamma = input_transform, float(input_gamma)
        self.dtype = np.dtype(str(dtype))
        # optional standardisation x' = (x - mean) * scale, stored in the model
        self.input_mean: np.ndarray | None = None
        self.input_scale: np.ndarray | None = None
        self.meta: dict[str, Any] = {}  # free-form JSON description saved with the model

        shapes = []
        for fan_in, fan_out in itertools.pairwise(sizes):
            shapes += [(fan_in, fan_out), (fan_out,)]
        total = sum(int(np.prod(s)) for s in shapes)
        self.flat = np.zeros(total, self.dtype)
        self.grad_flat = np.zeros(total, self.dtype)
        self.decay_mask = np.zeros(total, self.dtype)  # 1 on weights, 0 on biases
        self.params: list[np.ndarray] = []
        self.grads: list[np.ndarray] = []
        offset = 0
        for shape in shapes:
            size = int(np.prod(shape))
            self.params.append(self.flat[offset : offset + size].reshape(shape))
            self.grads.append(self.grad_flat[offset : offset + size].reshape(shape))
            if len(shape) == 2:
                self.decay_mask[offset : offset + size] = 1.0
            offset += size
        rng = np.random.default_rng(self.seed)
        for W in self.weights:
            init_weights(init, W, rng)
        self._workspaces: dict[tuple[int, bool], _Workspace] = {}
        self._scratch: np.ndarray | None = None  # for the L1/L2 terms, made on first use

    # ------------------------------------------------------------------ views
    @property
    def weights(self) -> list[np.ndarray]:
        """The weight matrices W^1..W^L (views)."""
        return self.params[0::2]

    @property
    def biases(self) -> list[np.ndarray]:
        return self.params[1::2]

    @property
    def n_classes(self) -> int:
        return self.sizes[-1]

    @property
    def n_params(self) -> int:
        return int(self.flat.size)

    @property
    def members(self) -> list[Network]:
        """The networks whose predictions this model averages: just this one (an Ensemble
        has several), so code can treat a network and an ensemble alike."""
        return [self]

    def __repr__(self) -> str:
        arch = "-".join(map(str, self.sizes))
        acts = ",".join(sorted(set(self.activation_names))) or "none"
        transform = "" if self.input_transform == "none" else f", input={self.input_transform}"
        transform += "" if self.input_gamma == 1.0 else f", gamma={self.input_gamma:g}"
        return (f"Network({arch}, activation={acts}{transform}, dtype={self.dtype}, "
                f"params={self.n_params})")

    # ------------------------------------------------------------ validation
    def check_inputs(self, X: Any, y: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
        """:func:`check_inputs` for this network's input width, classes and dtype."""
        return check_inputs(X, y, n_features=self.sizes[0], n_classes=self.n_classes,
                            dtype=self.dtype)

    # --------------------------------------------------------------- forward
    def _workspace(self, n: int, with_dropout: bool) -> _Workspace:
        key = (n, with_dropout)
        ws = self._workspaces.get(key)
        if ws is None:
            if len(self._workspaces) > 4:  # keep the full batch and a partial last one
                self._workspaces.clear()
            ws = self._workspaces[key] = _Workspace(self, n, with_dropout)
        return ws

    def _forward(
        self, X: np.ndarray, ws: _Workspace, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Fill ws with a^1..a^{L-1} and z^L (returned). Dropout when rng is given."""
        if self.input_mean is not None and self.input_scale is not None and ws.x is not None:
            np.subtract(X, self.input_mean, out=ws.x)
            ws.x *= self.input_scale
            X = ws.x
        a = X
        last = len(ws.a) - 1
        for layer, (W, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            z = ws.a[layer]
            np.matmul(a, W, out=z)  # z^l = a^{l-1} W^l
            z += b  #           + b^l
            if layer == last:
                return z
            self.activations[layer].forward_(z, ws.scratch[layer])  # a^l = f(z^l), in place
            a = z
            if rng is not None and ws.mask:
                # inverted dropout: keep with probability 1-p, scale by 1/(1-p)
                mask = ws.mask[layer]
                rng.random(out=mask, dtype=self.dtype.type)
                np.greater_equal(mask, self.dropout, out=mask)  # 1 where kept, else 0
                mask *= 1.0 / (1.0 - self.dropout)
                a = np.multiply(z, mask, out=ws.dropped[layer])
        raise AssertionError("unreachable")

    def _inputs_of(self, X: np.ndarray, ws: _Workspace, layer: int) -> np.ndarray:
        """a^{layer}: what layer+1 consumed (after standardisation / dropout)."""
        if layer == 0:
            return ws.x if ws.x is not None else X
        return ws.dropped[layer - 1] if ws.dropped else ws.a[layer - 1]

    # -------------------------------------------------------------- backward
    def compute_gradients_(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        l1: float = 0.0,
        l2: float = 0.0,
        label_smoothing: float = 0.0,
        reduction: str = "mean",
        rng: np.random.Generator | None = None,
        with_penalty: bool = True,
    ) -> float:
        """Fill ``self.grad_flat`` with dloss/dparams and return the loss.

        The fast path of training: X must already be validated (``check_inputs``).
        Dropout is applied when ``rng`` is given and ``self.dropout > 0``.
        """
        use_dropout = rng is not None and self.dropout > 0
        ws = self._workspace(len(X), use_dropout)
        z_out = self._forward(X, ws, rng if use_dropout else None)
        # delta^L = dloss/dz^L, written over z^L
        loss = softmax_cross_entropy_(
            z_out, y, label_smoothing=label_smoothing, reduction=reduction, buffers=ws.loss
        )
        delta = z_out
        W, gW, gb = self.weights, self.grads[0::2], self.grads[1::2]
        for layer in range(len(W) - 1, -1, -1):
            a_prev = self._inputs_of(X, ws, layer)
            np.matmul(a_prev.T, delta, out=gW[layer])  # dW^l = (a^{l-1})^T delta^l
            np.sum(delta, axis=0, out=gb[layer])  # db^l = sum_rows delta^l
            if layer == 0:
                break
            below = ws.delta[layer - 1]
            np.matmul(delta, W[layer].T, out=below)  # dloss/da^{l-1} = delta^l (W^l)^T
            if use_dropout:
                below *= ws.mask[layer - 1]
            self.activations[layer - 1].backward_(ws.a[layer - 1], below, ws.scratch[layer - 1])
            delta = below  # delta^{l-1} = dloss/da^{l-1} * f'(z^{l-1})
        if l1 or l2:
            if self._scratch is None:  # once: the penalties' buffer, the size of all params
                self._scratch = np.empty_like(self.flat)
            add_penalty_grad_(self.flat, self.grad_flat, self.decay_mask, l1, l2, self._scratch)
            if with_penalty:
                loss += penalty(self.flat, self.decay_mask, l1, l2, self._scratch)
        return loss

    def loss_and_grads(
        self,
        X: Any,
        y: Any,
        l1: float = 0.0,
        l2: float = 0.0,
        *,
        label_smoothing: float = 0.0,
        reduction: str = "mean",
        dropout_seed: int | None = None,
    ) -> tuple[float, list[np.ndarray]]:
        """Return (loss, grads) for a batch, grads in the order and shapes of ``params``.

        loss = mean cross-entropy + l1 * sum|W| + (l2 / 2) * sum W^2 (weights only).
        Dropout is off unless ``dropout_seed`` is given (then its mask is reproducible).
        """
        X, y_int = self.check_inputs(X, y)
        assert y_int is not None
        for name, value in (("l1", l1), ("l2", l2)):
            check(name, value)
        rng = np.random.default_rng(dropout_seed) if dropout_seed is not None else None
        loss = self.compute_gradients_(
            X, y_int, l1=l1, l2=l2, label_smoothing=label_smoothing, reduction=reduction, rng=rng
        )
        return loss, [g.copy() for g in self.grads]

    # ------------------------------------------------------------ inference
    def prepare(self, X: Any) -> np.ndarray:
        """X as the first layer sees it: checked, and through the network's input transform."""
        return self.features(self.prepare_images(X))

    def prepare_images(self, X: Any) -> np.ndarray:
        """X checked, with the input transforms that leave an image (gamma, deskew): what
        training distorts."""
        X, _ = self.check_inputs(X)
        return image_stage(self.input_transform, X, self.input_gamma)

    def features(self, images: np.ndarray) -> np.ndarray:
        """Prepared (and perhaps distorted) images -> what the first layer reads: orientation
        planes for ``input_transform="orientation"``, the images themselves otherwise."""
        return feature_stage(self.input_transform, images)

    @property
    def transforms_inputs(self) -> bool:
        """Whether :meth:`prepare` changes X (an input transform or a gamma)."""
        return self.input_transform != "none" or self.input_gamma != 1.0

    @property
    def input_signature(self) -> tuple[str, float, str]:
        """What :meth:`prepare` depends on: networks with equal signatures read X alike."""
        return self.input_transform, self.input_gamma, str(self.dtype)

    def _eval_chunks(
        self, X: Any, prepared: bool = False, chunk: int = 4096
    ) -> list[tuple[np.ndarray, _Workspace]]:
        X = self.check_inputs(X)[0] if prepared else self.prepare(X)
        out = []
        for start in range(0, len(X), chunk):
            part = X[start : start + chunk]
            ws = _Workspace(self, len(part), False)  # fresh buffers: safe across threads
            self._forward(part, ws)
            out.append((part, ws))
        return out

    def logits(self, X: Any, *, prepared: bool = False) -> np.ndarray:
        """z^L for each row of X (no dropout)."""
        chunks = self._eval_chunks(X, prepared)
        if not chunks:
            return np.empty((0, self.n_classes), self.dtype)
        return np.concatenate([ws.a[-1] for _, ws in chunks])

    def predict_proba(self, X: Any, *, prepared: bool = False) -> np.ndarray:
        """Class probabilities softmax(z^L), shape (n, classes); rows sum to 1."""
        return softmax(self.logits(X, prepared=prepared))

    def predict(self, X: Any, *, prepared: bool = False) -> np.ndarray:
        """The most probable class of each row."""
        return np.argmax(self.logits(X, prepared=prepared), axis=1)

    def hidden_activations(self, X: Any, *, prepared: bool = False) -> list[np.ndarray]:
        """a^1..a^{L-1}: each hidden layer's output after its activation, (n, width) each."""
        chunks = self._eval_chunks(X, prepared)
        n_hidden = len(self.sizes) - 2
        if not chunks:
            return [np.empty((0, s), self.dtype) for s in self.sizes[1:-1]]
        return [np.concatenate([ws.a[i] for _, ws in chunks]) for i in range(n_hidden)]

    # -------------------------------------------------------------- storage
    def set_standardization(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Store x' = (x - mean) / std inside the network (saved with the model)."""
        mean = np.asarray(mean, self.dtype).reshape(-1)
        std = np.asarray(std, self.dtype).reshape(-1)
        if mean.shape != (self.sizes[0],) or std.shape != (self.sizes[0],):
            raise InputError(f"mean and std need {self.sizes[0]} values each")
        self.input_mean = mean
        self.input_scale = (1.0 / np.maximum(std, 1e-3)).astype(self.dtype)
        self._workspaces.clear()

    def save(self, path: str) -> None:
        """Write the model to ``path`` (.npz: weights + JSON description), atomically."""
        from numeral.nn.serialize import save_model

        save_model(self, path)

    @classmethod
    def load(cls, path: str) -> Network:
        """Read a model written by :meth:`save` (``allow_pickle=False``)."""
        from numeral.nn.serialize import load_model

        model = load_model(path)
        if not isinstance(model, Network):
            raise InputError(f"{path} holds an ensemble; load it with numeral.load_model")
        return model

"""Check back-propagation against central finite differences.

For every parameter theta_i:

    numeric_i = (L(theta + h e_i) - L(theta - h e_i)) / (2 h)

and for each parameter array the relative error

    ||analytic - numeric||_2 / (||analytic||_2 + ||numeric||_2)

Back-propagation is right when this is tiny (about 1e-8 or less in float64 with
h = 1e-4); a wrong line in the backward pass gives errors near 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numeral.nn.layers import ACTIVATIONS
from numeral.nn.network import Network

PASSES = 1e-7  # the largest relative error back-propagation passes with (float64)
TINY_GRADIENT = 1e-7  # below this norm, analytic and numeric gradients are compared absolutely

# Small networks with every layer type, for `numeral gradcheck` and the tests: convolution with
# stride 1 and 2, padding 0, "same" and explicit, odd and even kernels and image sides, several
# channels; max, average and global pooling; BatchNorm on images and on vectors (training
# mode); dropout. Smooth activations and small images: a finite difference that moves a value
# across a ReLU's kink or a max window's tie measures a different function, so those are few.
LAYER_NETWORKS: dict[str, tuple[list[str], tuple[int, int, int]]] = {
    "conv-stride2-batchnorm": (["conv 6 3", "tanh", "maxpool 2", "conv 4 3 stride=2 padding=0",
                                "batchnorm", "tanh", "flatten", "dense 12", "sigmoid",
                                "dense 5"], (1, 12, 12)),
    "even-kernels-same": (["conv 3 4 padding=same", "tanh", "avgpool 2",
                           "conv 5 2 stride=2 padding=1", "sigmoid", "globalavgpool",
                           "dense 5"], (2, 9, 9)),
    "odd-side-overlapping-pool": (["conv 3 3 padding=same", "batchnorm", "leaky_relu",
                                   "maxpool 3 stride=2", "flatten", "dense 7", "batchnorm",
                                   "tanh", "dropout 0.3", "dense 5"], (1, 7, 7)),
    "relu-channels": (["conv 4 2 stride=2", "relu", "conv 3 3 padding=valid", "identity",
                       "flatten", "dense 5"], (3, 8, 8)),
    # tiled max pooling (stride = K) on a side K does not divide: the last row and column
    # are in no window, and their gradient must be 0
    "odd-side-tiled-pool": (["conv 3 3", "tanh", "maxpool 2", "flatten", "dense 5"],
                            (1, 9, 9)),
    # relu then max pooling: the network runs them as maxpool, relu (running_order)
    "relu-then-maxpool": (["conv 4 3", "relu", "maxpool 2", "conv 6 3", "relu",
                           "maxpool 2 stride=1", "flatten", "dense 5"], (1, 12, 12)),
}


@dataclass
class GradCheckResult:
    """Relative error per parameter array (in the order of ``params``) and their maximum."""

    errors: list[float]

    @property
    def max_error(self) -> float:
        return max(self.errors)


def gradcheck(
    net: Network,
    X: np.ndarray,
    y: np.ndarray,
    *,
    l1: float = 0.0,
    l2: float = 0.0,
    label_smoothing: float = 0.0,
    dropout_seed: int | None = None,
    h: float = 1e-4,
) -> GradCheckResult:
    """Compare ``net.loss_and_grads`` with central differences over every parameter.

    Use a float64 network: float32 rounding swamps the finite differences.
    """
    kwargs = {"label_smoothing": label_smoothing, "dropout_seed": dropout_seed}
    _, analytic = net.loss_and_grads(X, y, l1, l2, **kwargs)  # type: ignore[arg-type]
    errors = []
    for param, grad in zip(net.params, analytic, strict=True):
        numeric = np.zeros_like(param)
        flat, num_flat = param.reshape(-1), numeric.reshape(-1)
        for i in range(flat.size):
            saved = flat[i]
            flat[i] = saved + h
            plus, _ = net.loss_and_grads(X, y, l1, l2, **kwargs)  # type: ignore[arg-type]
            flat[i] = saved - h
            minus, _ = net.loss_and_grads(X, y, l1, l2, **kwargs)  # type: ignore[arg-type]
            flat[i] = saved
            num_flat[i] = (plus - minus) / (2 * h)
        denom = np.linalg.norm(grad) + np.linalg.norm(numeric)
        # a gradient that is truly zero (a bias just before a BatchNorm, which subtracts
        # it again) has numeric values of rounding size: compare those absolutely
        diff = float(np.linalg.norm(grad - numeric))
        errors.append(diff / float(denom) if denom > TINY_GRADIENT else diff)
    return GradCheckResult(errors)


def check_layer_network(name: str, l1: float = 0.0, l2: float = 0.0) -> GradCheckResult:
    """gradcheck of one of :data:`LAYER_NETWORKS` (float64, 3 random images, 5 classes)."""
    layers, shape = LAYER_NETWORKS[name]
    rng = np.random.default_rng(3)
    net = Network.from_layers(layers, input_shape=shape, seed=2, dtype="float64")
    for b in net.biases:  # non-zero biases so their gradients are tested too
        b[...] = rng.normal(scale=0.1, size=b.shape)
    X, y = rng.random((3, int(np.prod(shape)))), rng.integers(0, 5, 3)
    return gradcheck(net, X, y, l1=l1, l2=l2, dropout_seed=5)


def check_all(activation: str = "all", hidden: tuple[int, ...] = (5, 4), inputs: int = 6,
              samples: int = 5, l1: float = 1e-3, l2: float = 1e-2) -> dict[str, GradCheckResult]:
    """What ``numeral gradcheck`` checks: an MLP (``inputs``-``hidden``-3, float64, xavier) per
    activation (``"all"``: every one, and then every network of :data:`LAYER_NETWORKS`), on
    ``samples`` random inputs, with the L1 and L2 penalties. Name -> result."""
    if activation != "all" and activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose from "
                         f"{', '.join(sorted(ACTIVATIONS))} or 'all'")
    names = sorted(ACTIVATIONS) if activation == "all" else [activation]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(samples, inputs))
    y = rng.integers(0, 3, samples)
    results = {}
    for name in names:
        net = Network([inputs, *hidden, 3], activation=name, init="xavier", seed=1,
                      dtype="float64")
        results[f"MLP, {name}"] = gradcheck(net, X, y, l1=l1, l2=l2)
    if activation == "all":  # and every layer type, in small convolutional networks
        for name, (layers, _) in LAYER_NETWORKS.items():
            results[f"{name} ({', '.join(layers)})"] = check_layer_network(name, l1, l2)
    return results

"""A network: its inputs, then a list of layers trained by back-propagation, over one flat
parameter vector.

For a batch X with labels y (x^0 = X, layer l maps x^{l-1} to x^l, z = x^L the logits):

    forward     x^l = layer_l.forward(x^{l-1})                  l = 1 .. L
                p = softmax(z),  loss = cross-entropy(p, y) + R(W)
    backward    g^L = dloss/dz = (p - onehot(y)) / n
                g^{l-1} = layer_l.backward(g^l)                  l = L .. 1

Each layer's backward also adds the gradients of its own parameters; the layers, with their
equations, are in :mod:`numeral.nn.layers` (for a multi-layer perceptron: ``Dense`` and the
activations). Where no layer's own output is asked for, the passes run ``relu, maxpool`` as
``maxpool, relu``, which is exact and cheaper (:func:`running_order`).
:meth:`Network.compute_gradients_` is this loop, with buffers made once per batch size, so
training allocates nothing per batch. All parameters live in one flat vector
(``net.flat``); ``net.params`` are views into it in layer order, so optimisers update the
whole model in a few vectorised operations.

One description of any network: its input transforms (``net.inputs``, see
:mod:`numeral.nn.inputs`: gamma, deskew, orientation planes, fixed and saved with it) and its
layers (``net.body``), written as one layer list, transforms first::

    Network.from_layers(["gamma 0.3", "conv 6 3", "relu", "maxpool 2", "flatten", "dense 10"],
                        input_shape=(1, 28, 28))

A multi-layer perceptron has a shorthand, which :func:`mlp_layers` turns into that list::

    Network([784, 320, 160, 10], activation="sigmoid", init="xavier", seed=0)
    # = from_layers(["dense 320", "sigmoid", "dense 160", "sigmoid", "dense 10"], (784,), ...)

Model files of formats 1-3 (which stored that shorthand) are turned into the layer list as
they are read (:func:`upgrade_description`), so every network is built one way.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from numeral.nn.checks import check_inputs
from numeral.nn.constraints import check
from numeral.nn.errors import InputError, ModelFileError
from numeral.nn.files import one_line, read_model_file, save_model
from numeral.nn.init import INITIALISERS
from numeral.nn.inputs import Features, Inputs, Signature
from numeral.nn.layers import (
    Activation,
    Conv2D,
    Dense,
    Deskew,
    Dropout,
    Flatten,
    Gamma,
    InputTransform,
    Layer,
    MaxPool2D,
    OrientationPlanes,
    ReLU,
    Standardize,
    as_layer,
    get_activation,
)
from numeral.nn.layers.base import Buffers, Shape
from numeral.nn.losses import LossBuffers, softmax, softmax_cross_entropy_
from numeral.nn.regularizers import add_penalty_grad_, penalty

__all__ = ["Inputs", "Network", "Signature", "check_inputs", "default_input_shape", "mlp_layers",
           "network_from_file", "upgrade_description"]


def mlp_layers(sizes: Sequence[int], activation: str | Sequence[str] = "relu",
               dropout: float = 0.0, input_transform: str = "none",
               input_gamma: float = 1.0) -> list[Layer]:
    """The layer list of a multi-layer perceptron (``Network``'s shorthand, checked): the
    input transforms, then per hidden layer ``dense``, its activation and (when training
    drops units) ``dropout``, then ``dense`` with one unit per class. ``sizes`` are the
    widths, input first, ``activation`` one name or one per hidden layer."""
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2:
        raise InputError(f"sizes needs at least an input and an output width, got {sizes}")
    if any(s < 1 for s in sizes):
        raise InputError(f"every layer width must be >= 1, got sizes={sizes}")
    if sizes[-1] < 2:
        raise InputError(f"the output layer needs >= 2 classes, got {sizes[-1]}")
    check("input_transform", input_transform)  # the layers check the rest as they build
    n_hidden = len(sizes) - 2
    names = [activation] * n_hidden if isinstance(activation, str) else list(activation)
    if len(names) != n_hidden:
        raise InputError(
            f"got {len(names)} activations for {n_hidden} hidden layers; give one name "
            "or one per hidden layer"
        )
    input_gamma = float(input_gamma)
    layers: list[Layer] = [Gamma(input_gamma)] if input_gamma != 1.0 else []
    if input_transform == "deskew":
        layers.append(Deskew())
    elif input_transform == "orientation":
        layers += [OrientationPlanes(), Flatten()]
    for i, width in enumerate(sizes[1:]):
        layers.append(Dense(width))
        if i < n_hidden:
            layers.append(get_activation(names[i]))
            if dropout:
                layers.append(Dropout(float(dropout)))
    return layers


# the keys of a network's description in model formats 1-3, which upgrade_description replaces
_SHORTHAND_KEYS = ("sizes", "activations", "dropout", "input_transform", "input_gamma",
                   "standardized")


def upgrade_description(desc: dict[str, Any], arrays: dict[str, np.ndarray]
                        ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A network's description and arrays from a model file of any format, as the newest
    format (4: the layer list) writes them. Formats 1-3 described a multi-layer perceptron by
    the shorthand (``sizes``, ``activations``, ``dropout``, ``input_transform``,
    ``input_gamma``) and stored a standardisation as ``input_mean`` / ``input_scale``: they
    become its layers (:func:`mlp_layers`, a ``standardize`` after the input transforms) and
    that layer's state. A description with ``layers`` is returned as it is."""
    if "layers" in desc:
        return desc, arrays
    sizes = [int(s) for s in desc["sizes"]]
    layers = mlp_layers(sizes, desc["activations"], desc.get("dropout", 0.0),
                        desc.get("input_transform", "none"), desc.get("input_gamma", 1.0))
    upgraded = {key: value for key, value in desc.items() if key not in _SHORTHAND_KEYS}
    upgraded.update(layers=[layer.spec() for layer in layers], input_shape=sizes[:1],
                    init=desc.get("init", "zeros"))
    if desc.get("standardized"):
        transforms = [layer for layer in layers if isinstance(layer, InputTransform)]
        shape = Inputs(transforms, sizes[:1], desc.get("dtype", "float32")).shape
        at = len(transforms)  # a standardisation reads what the transforms give
        upgraded["layers"].insert(at, Standardize.name)
        stored = arrays
        arrays = {key: value for key, value in stored.items()
                  if key not in ("input_mean", "input_scale")}
        arrays[f"state{at}.mean"] = np.reshape(stored["input_mean"], shape)
        arrays[f"state{at}.scale"] = np.reshape(stored["input_scale"], shape)
    return upgraded, arrays


def default_input_shape(first: Layer, values: int = 784) -> Shape:
    """The shape of one sample of ``values`` numbers when none is given: a square one-channel
    image when the first layer reads images (conv, pooling, an input transform), else flat."""
    side = math.isqrt(values)
    return (1, side, side) if first.needs_image or isinstance(first, InputTransform) else (values,)


def _deprecated(old: str, new: str) -> None:
    """Warn the caller of the deprecated ``Network.{old}`` (kept for one release)."""
    warnings.warn(f"Network.{old} is deprecated; use {new}", DeprecationWarning, stacklevel=3)


def network_from_file(path: Any, desc: dict[str, Any], arrays: dict[str, np.ndarray]) -> Network:
    """:meth:`Network.from_description` for one network of the model file ``path``, whose
    inconsistencies are the file's fault: :class:`ModelFileError` naming it."""
    try:
        return Network.from_description(desc, arrays)
    except (LookupError, ValueError, TypeError, AttributeError, ArithmeticError, MemoryError,
            InputError) as exc:  # what a description of the wrong shape or type makes fail
        raise ModelFileError(f"{path} has an inconsistent model description: "
                             f"{one_line(exc)}") from None


def running_order(body: list[Layer], dtype: np.dtype) -> list[Layer]:
    """The layers in the order a pass runs them when no layer's own output is asked for:
    ``relu, maxpool`` runs as ``maxpool, relu``, the ReLU on a quarter of the values.

    Exact, values and gradients bit for bit: max over a window of max(x, 0) is
    max(max over the window of x, 0), and the gradient reaches the same pixel. Where the
    window's maximum is positive, ReLU changes none of the values that can be the maximum
    (nor their ties); where it is not, both orders give the window a zero gradient (ReLU's
    slope is 0 there). The layer list as written, and the model file, do not change: the
    ReLU that runs second is a new one, built for the pooled shape (tests/test_fast.py).
    """
    order: list[Layer] = []
    for layer in body:
        if isinstance(layer, MaxPool2D) and order and type(order[-1]) is ReLU:
            relu = ReLU()
            relu.build(layer.out_shape, dtype)
            order[-1:] = [layer, relu]
        else:
            order.append(layer)
    return order


class _Workspace:
    """The buffers of one batch size: each layer's, and the loss's. ``layers``: the order
    the passes run (``net.body``, or :func:`running_order` where no output is kept)."""

    def __init__(self, net: Network, n: int, train: bool, keep_outputs: bool = False) -> None:
        self.layers = net.body if keep_outputs else running_order(net.body, net.dtype)
        self.buffers: list[Buffers] = [layer.buffers(n, train) for layer in self.layers]
        self.logits = np.empty((n, net.n_classes), net.dtype)  # the loss writes dL/dz here
        self.loss = LossBuffers(n, net.n_classes, net.dtype)


class Network:
    """A classifier network: its inputs, its layers, then softmax over the last layer's
    outputs.

    ``net.inputs`` (:class:`~numeral.nn.inputs.Inputs`) holds the fixed input transforms,
    ``net.body`` the layers that learn, ``net.layers`` both in one list (the transforms
    first: how the network is written and saved). The prediction methods take X as given and
    send it through ``net.inputs`` themselves, or take ``net.inputs.prepare(X)``
    (:class:`~numeral.nn.inputs.Features`) and skip that; :meth:`compute_gradients_`, the
    training step, takes ``net.inputs(X)``.

    Parameters (the multi-layer perceptron shorthand, see :func:`mlp_layers`)
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
        the network.

    Any other network: :meth:`from_layers`.
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
        layers = mlp_layers(sizes, activation, dropout, input_transform, input_gamma)
        self._build(layers, (int(sizes[0]),), init, seed, str(dtype))

    @classmethod
    def from_layers(
        cls,
        layers: Sequence[str | Layer],
        input_shape: Sequence[int] | None = None,
        *,
        init: str = "he",
        seed: int = 0,
        dtype: str = "float32",
    ) -> Network:
        """A network of these layers (strings such as ``"conv 6 3"`` or layer objects), for
        samples of ``input_shape``: (channels, height, width) for images, default (1, 28, 28)
        when the first layer reads images, else (784,). X is always given as flat rows,
        row-major images. Input transforms (``gamma G``, ``deskew``, ``orientation``) come
        first; the last layer gives one score per class."""
        objects = [as_layer(item) for item in layers]
        if not objects:
            raise InputError("a network needs at least one layer, e.g. ['dense 10']")
        if input_shape is None:
            input_shape = default_input_shape(objects[0])
        net = cls.__new__(cls)
        net._build(objects, tuple(int(s) for s in input_shape), init, seed, str(dtype))
        return net

    def _build(self, layers: list[Layer], input_shape: Shape, init: str, seed: int,
               dtype: str) -> None:
        """The one way every network is made: the leading input transforms become
        ``inputs``, the rest ``body``; fix every layer's shapes, lay the parameters out in
        one flat vector, initialise."""
        check("dtype", dtype)
        if init not in INITIALISERS:
            raise InputError(f"unknown init {init!r}; choose one of: {', '.join(INITIALISERS)}")
        if not input_shape or any(s < 1 for s in input_shape):
            raise InputError(f"input_shape must be positive sizes, got {input_shape}")
        self.dtype = np.dtype(dtype)
        self.init, self.seed = init, int(seed)
        self.meta: dict[str, Any] = {}  # free-form JSON description saved with the model
        lead = next((i for i, layer in enumerate(layers)
                     if not isinstance(layer, InputTransform)), len(layers))
        self.inputs = Inputs(cast(list[InputTransform], layers[:lead]), input_shape, self.dtype)
        self.body: list[Layer] = layers[lead:]  # the layers that learn (or follow one)
        shape = self.inputs.shape
        for layer in self.body:
            if isinstance(layer, InputTransform):
                raise InputError(f"{layer.spec()} is an input transform: it goes first, "
                                 "image transforms (gamma, deskew) before orientation")
            shape = layer.build(shape, self.dtype)
        if len(shape) != 1 or shape[0] < 2:
            raise InputError(f"the last layer must give one score per class (at least 2), e.g. "
                             f"'dense 10'; {layers[-1].spec()} gives samples of shape {shape}")
        self.n_classes = shape[0]
        shapes = [(layer, s, d) for layer in self.body
                  for s, d in zip(layer.param_shapes(), layer.decayed(), strict=True)]
        total = sum(math.prod(s) for _, s, _ in shapes)
        self.flat = np.zeros(total, self.dtype)
        self.grad_flat = np.zeros(total, self.dtype)
        self.decay_mask = np.zeros(total, self.dtype)  # 1 on weights, 0 elsewhere
        self.params: list[np.ndarray] = []
        self.grads: list[np.ndarray] = []
        offset = 0
        for layer, s, decayed in shapes:
            size = math.prod(s)
            part = slice(offset, offset + size)
            layer.params.append(self.flat[part].reshape(s))
            layer.grads.append(self.grad_flat[part].reshape(s))
            self.decay_mask[part] = float(decayed)
            offset += size
        for layer in self.body:
            self.params += layer.params
            self.grads += layer.grads
        rng = np.random.default_rng(self.seed)
        for layer in self.body:
            layer.init_params(rng, init)
        self._workspaces: dict[tuple[int, bool], _Workspace] = {}
        self._scratch: np.ndarray | None = None  # for the L1/L2 terms, made on first use

    # ------------------------------------------------------------------ views
    @property
    def layers(self) -> list[Layer]:
        """Every layer in order, the input transforms first: the network as its layer list
        is written (:meth:`from_layers`, model files). Indices into this list name layers
        (:attr:`hidden_layers`, :meth:`layer_outputs`). A new list each time: ``body`` is
        the one to change."""
        return [*cast(list[Layer], self.inputs.transforms), *self.body]

    @property
    def input_shape(self) -> Shape:
        """The shape of one sample of X (given as flat rows)."""
        return self.inputs.input_shape

    @property
    def input_size(self) -> int:
        """How many values one sample of X has."""
        return self.inputs.size

    @property
    def weighted(self) -> list[Layer]:
        """The Dense and Conv2D layers, in order."""
        return [layer for layer in self.body if isinstance(layer, Dense | Conv2D)]

    @property
    def weights(self) -> list[np.ndarray]:
        """The weights of every Dense and Conv2D layer (views)."""
        return [layer.params[0] for layer in self.weighted]

    @property
    def biases(self) -> list[np.ndarray]:
        return [layer.params[1] for layer in self.weighted]

    @property
    def sizes(self) -> list[int]:
        """The width of what the first layer reads, then each Dense layer's width (an MLP's
        ``sizes``)."""
        return [math.prod(self.inputs.shape)] + [
            layer.units for layer in self.body if isinstance(layer, Dense)]

    @property
    def hidden_layers(self) -> list[int]:
        """Indices (into ``layers``) of the hidden activations: those before the last Dense
        or Conv2D layer."""
        layers = self.layers
        last = layers.index(self.weighted[-1]) if self.weighted else -1
        return [i for i, layer in enumerate(layers[:last]) if isinstance(layer, Activation)]

    @property
    def activation_names(self) -> list[str]:
        layers = self.layers
        return [layers[i].name for i in self.hidden_layers]

    @property
    def architecture(self) -> str:
        """The layer strings, e.g. ``"dense 320, sigmoid, dense 10"``."""
        return ", ".join(layer.spec() for layer in self.layers)

    @property
    def input_transform(self) -> str:
        """``orientation``, ``deskew`` or ``none``: what the input transforms make of images."""
        return self.inputs.input_transform

    @property
    def input_gamma(self) -> float:
        return self.inputs.gamma

    @property
    def dropout(self) -> float:
        """The largest dropout rate of the network's Dropout layers (0.0 without any)."""
        return max((layer.p for layer in self.body if isinstance(layer, Dropout)), default=0.0)

    @property
    def standardizer(self) -> Standardize | None:
        return next((layer for layer in self.body if isinstance(layer, Standardize)), None)

    @property
    def input_mean(self) -> np.ndarray | None:
        return None if self.standardizer is None else self.standardizer.mean.reshape(-1)

    @property
    def n_params(self) -> int:
        return int(self.flat.size)

    @property
    def members(self) -> list[Network]:
        """The networks whose predictions this model averages: just this one (an Ensemble
        has several), so code can treat a network and an ensemble alike."""
        return [self]

    def __repr__(self) -> str:
        return (f"Network({self.architecture}; input {self.input_shape}, dtype={self.dtype}, "
                f"params={self.n_params})")

    # ------------------------------------------------------- deprecated names
    @property
    def hidden(self) -> list[int]:
        """Deprecated: :attr:`hidden_layers` (``hidden`` is a list of widths in a Config)."""
        _deprecated("hidden", "Network.hidden_layers")
        return self.hidden_layers

    @property
    def n_inputs(self) -> int:
        """Deprecated: :attr:`input_size`."""
        _deprecated("n_inputs", "Network.input_size")
        return self.input_size

    @property
    def n_input(self) -> int:
        """Deprecated: ``len(net.inputs.transforms)``, the input transforms in ``layers``."""
        _deprecated("n_input", "len(net.inputs.transforms)")
        return len(self.inputs.transforms)

    @property
    def body_shape(self) -> Shape:
        """Deprecated: ``net.inputs.shape``, one sample as the first layer reads it."""
        _deprecated("body_shape", "net.inputs.shape")
        return self.inputs.shape

    @property
    def transforms_inputs(self) -> bool:
        """Deprecated: ``bool(net.inputs.transforms)``."""
        _deprecated("transforms_inputs", "bool(net.inputs.transforms)")
        return bool(self.inputs.transforms)

    @property
    def input_signature(self) -> Signature:
        """Deprecated: ``net.inputs.signature``."""
        _deprecated("input_signature", "net.inputs.signature")
        return self.inputs.signature

    def prepare(self, X: Any) -> np.ndarray:
        """Deprecated: ``net.inputs(X)``."""
        _deprecated("prepare(X)", "net.inputs(X)")
        return self.inputs(X)

    def prepare_images(self, X: Any) -> np.ndarray:
        """Deprecated: ``net.inputs.images(X)``."""
        _deprecated("prepare_images(X)", "net.inputs.images(X)")
        return self.inputs.images(X)

    def features(self, images: np.ndarray) -> np.ndarray:
        """Deprecated: ``net.inputs.features(images)``."""
        _deprecated("features(images)", "net.inputs.features(images)")
        return self.inputs.features(images)

    # ------------------------------------------------------------ validation
    def check_inputs(self, X: Any, y: Any = None, *,
                     prepared: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """:func:`check_inputs` for this network's input width, classes and dtype.
        (``prepared=True``, deprecated: for rows of ``net.inputs(X)``; use
        ``net.inputs.check_features``.)"""
        if prepared:
            _deprecated("check_inputs(X, prepared=True)", "net.inputs.check_features")
        width = math.prod(self.inputs.shape) if prepared else self.input_size
        return check_inputs(X, y, n_features=width, n_classes=self.n_classes, dtype=self.dtype)

    def _first_layer_input(self, X: Any, prepared: bool = False) -> np.ndarray:
        """What the first layer reads of X: ``net.inputs(X)``, or the values of X when it is
        :class:`~numeral.nn.inputs.Features` of this network's inputs. (``prepared=True``,
        deprecated: X is ``net.inputs(X)`` already.)"""
        if prepared:
            _deprecated("prepared=True", "net.inputs.prepare(X) in place of X")
            X = Features(np.asarray(X), self.inputs.signature)
        if isinstance(X, Features):
            return self.inputs.check_features(X)
        return self.inputs(X)

    # --------------------------------------------------------------- forward
    def _workspace(self, n: int, train: bool) -> _Workspace:
        key = (n, train)
        ws = self._workspaces.get(key)
        if ws is None:
            if len(self._workspaces) > 4:  # keep the full batch and a partial last one
                self._workspaces.clear()
            ws = self._workspaces[key] = _Workspace(self, n, train)
        return ws

    def _forward(self, X: np.ndarray, ws: _Workspace, train: bool,
                 rng: np.random.Generator | None = None,
                 outputs: list[np.ndarray] | None = None) -> np.ndarray:
        """x^L, the logits, for rows X of ``net.inputs(X)``; each layer's output appended to
        ``outputs`` when given. Dropout only in training with ``rng``."""
        x = X.reshape(len(X), *self.inputs.shape)
        assert outputs is None or ws.layers is self.body  # every layer's own output
        for layer, buf in zip(ws.layers, ws.buffers, strict=True):
            x = layer.forward(x, buf, train, rng)  # x^l = layer_l(x^{l-1})
            if outputs is not None:
                outputs.append(x)
        return x
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

        The fast path of training: X must be prepared and validated (``check_inputs``).
        A training pass (batch statistics in BatchNorm); dropout when ``rng`` is given.
        """
        ws = self._workspace(len(X), True)
        z = self._forward(X, ws, True, rng)
        np.copyto(ws.logits, z)  # the last layer keeps its output for its own backward
        loss = softmax_cross_entropy_(  # g^L = dloss/dz, written over the copy
            ws.logits, y, label_smoothing=label_smoothing, reduction=reduction, buffers=ws.loss
        )
        grad: np.ndarray | None = ws.logits
        for i in range(len(ws.buffers) - 1, -1, -1):  # in the reverse order of the forward
            assert grad is not None
            grad = ws.layers[i].backward(grad, ws.buffers[i], i > 0)  # g^{l-1}
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
        """Return (loss, grads) for a batch of X as given (through the network's input
        transforms), grads in the order and shapes of ``params``.

        loss = mean cross-entropy + l1 * sum|W| + (l2 / 2) * sum W^2 (weights of Dense and
        Conv2D only). A training pass: BatchNorm uses the batch's statistics; dropout is off
        unless ``dropout_seed`` is given (then its mask is reproducible).
        """
        X_prep = self.inputs(X)
        _, y_int = check_inputs(X_prep, y, n_features=math.prod(self.inputs.shape),
                                n_classes=self.n_classes, dtype=self.dtype)
        assert y_int is not None
        for name, value in (("l1", l1), ("l2", l2)):
            check(name, value)
        rng = np.random.default_rng(dropout_seed) if dropout_seed is not None else None
        loss = self.compute_gradients_(
            X_prep, y_int, l1=l1, l2=l2, label_smoothing=label_smoothing, reduction=reduction,
            rng=rng,
        )
        return loss, [g.copy() for g in self.grads]

    # ------------------------------------------------------------ inference
    def _evaluate(self, X: Any, prepared: bool = False,
                  keep: Sequence[int] = ()) -> tuple[np.ndarray, list[np.ndarray]]:
        """The logits of X in evaluation mode, and the outputs of the layers ``keep`` (indices
        into ``layers``) flattened per sample. Chunk by chunk, each with fresh buffers (safe
        across threads), of 4096 samples, or 256 for networks with image layers. X: images,
        or :class:`~numeral.nn.inputs.Features` of this network's inputs."""
        X = self._first_layer_input(X, prepared)
        chunk = 256 if any(layer.needs_image for layer in self.body) else 4096
        logits = [np.empty((0, self.n_classes), self.dtype)]
        layers, lead = self.layers, len(self.inputs.transforms)
        kept: list[list[np.ndarray]] = [
            [np.empty((0, math.prod(layers[i].out_shape)), self.dtype)] for i in keep]
        for start in range(0, len(X), chunk):
            part = X[start : start + chunk]
            outputs: list[np.ndarray] = []
            z = self._forward(part, _Workspace(self, len(part), False, bool(keep)), False,
                              outputs=outputs if keep else None)
            logits.append(z.copy())
            for values, i in zip(kept, keep, strict=True):
                values.append(outputs[i - lead].reshape(len(part), -1).copy())
        return np.concatenate(logits), [np.concatenate(values) for values in kept]

    def logits(self, X: Any, *, prepared: bool = False) -> np.ndarray:
        """z = x^L for each row of X (evaluation mode: no dropout, BatchNorm's running
        statistics)."""
        return self._evaluate(X, prepared)[0]

    def predict_proba(self, X: Any, *, prepared: bool = False) -> np.ndarray:
        """Class probabilities softmax(z), shape (n, classes); rows sum to 1."""
        return softmax(self.logits(X, prepared=prepared))

    def predict(self, X: Any, *, prepared: bool = False) -> np.ndarray:
        """The most probable class of each row."""
        return np.argmax(self.logits(X, prepared=prepared), axis=1)

    def hidden_activations(self, X: Any, *, prepared: bool = False,
                           which: Sequence[int] | None = None) -> list[np.ndarray]:
        """Each hidden activation layer's output (see :attr:`hidden_layers`; ``which`` picks
        some of them by position), flattened per sample: (n, values) each."""
        hidden = self.hidden_layers
        layers = [hidden[k] for k in which] if which is not None else hidden
        return self._evaluate(X, prepared, keep=layers)[1]

    def layer_outputs(self, X: Any, layer: int, *, prepared: bool = False) -> np.ndarray:
        """What layer ``layer`` (an index into ``layers``, after the input transforms) gives
        for each row of X, in its own shape: e.g. a convolution's feature maps."""
        layers, lead = self.layers, len(self.inputs.transforms)
        if not lead <= layer < len(layers):
            raise InputError(f"layer must be {lead}..{len(layers) - 1}, got {layer}")
        values = self._evaluate(X, prepared, keep=[layer])[1][0]
        return values.reshape(len(values), *layers[layer].out_shape)

    # -------------------------------------------------------------- storage
    def set_standardization(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Store x' = (x - mean) / std of ``net.inputs(X)`` in the network (a Standardize
        layer first in the body; saved with the model)."""
        shape = self.inputs.shape
        width = math.prod(shape)
        mean = np.asarray(mean, self.dtype).reshape(-1)
        std = np.asarray(std, self.dtype).reshape(-1)
        if mean.shape != (width,) or std.shape != (width,):
            raise InputError(f"mean and std need {width} values each")
        layer = self.standardizer
        if layer is None:
            layer = Standardize()
            layer.build(shape, self.dtype)
            self.body.insert(0, layer)
        layer.mean[...] = mean.reshape(shape)
        layer.scale[...] = (1.0 / np.maximum(std, 1e-3)).reshape(shape)
        self._workspaces.clear()

    def state_arrays(self) -> dict[str, np.ndarray]:
        """What the model holds beside its parameters (BatchNorm's running statistics,
        Standardize's mean and scale), keyed ``state{layer}.{name}``."""
        return {f"state{i}.{key}": value for i, layer in enumerate(self.layers)
                for key, value in layer.state().items()}

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        for i, layer in enumerate(self.layers):
            for key, value in layer.state().items():
                value[...] = arrays[f"state{i}.{key}"]

    def describe(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The JSON description and the arrays that :meth:`from_description` rebuilds this
        network from (model format 4: the layer list)."""
        desc = {"layers": [layer.spec() for layer in self.layers],
                "input_shape": list(self.input_shape), "init": self.init, "seed": self.seed,
                "dtype": str(self.dtype), "meta": self.meta}
        arrays = {f"param{j}": p for j, p in enumerate(self.params)}
        arrays.update(self.state_arrays())
        return desc, arrays

    @classmethod
    def from_description(cls, desc: dict[str, Any], arrays: dict[str, np.ndarray]) -> Network:
        """A network from :meth:`describe`'s output, or from a description written by an
        earlier numeral (formats 1-3, read through :func:`upgrade_description`)."""
        desc, arrays = upgrade_description(desc, arrays)
        net = cls.from_layers(desc["layers"], desc["input_shape"], init="zeros",
                              seed=desc.get("seed", 0), dtype=desc.get("dtype", "float32"))
        net.load_state_arrays(arrays)
        net.init = desc.get("init", "zeros")
        for j, p in enumerate(net.params):
            src = arrays[f"param{j}"]
            if src.shape != p.shape:
                raise ValueError(f"param{j} has shape {src.shape}, expected {p.shape}")
            p[...] = src
        net.meta = dict(desc.get("meta", {}))
        return net

    def save(self, path: str) -> None:
        """Write the model to ``path`` (.npz: weights + JSON description), atomically."""
        save_model(self, path)

    @classmethod
    def load(cls, path: str) -> Network:
        """Read a one-network model file written by :meth:`save` (``allow_pickle=False``)."""
        header, nets = read_model_file(path)
        if header.get("kind") == "ensemble":
            raise InputError(f"{path} holds an ensemble; load it with numeral.load_model")
        return network_from_file(path, *nets[0])

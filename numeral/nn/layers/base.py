"""What every layer is: a forward and a backward pass side by side, over buffers it is given.

A network is its inputs (:class:`numeral.nn.inputs.Inputs`, fixed transforms of the images)
and a list of layers. For a batch of n inputs it asks each layer once for the
buffers that batch size needs (:meth:`Layer.buffers`), then calls, for every batch,

    forward:   x^{l} = layer_l.forward(x^{l-1}, buf_l, train, rng)      l = 1 .. L
    backward:  g^{l-1} = layer_l.backward(g^{l}, buf_l, need_dx)       l = L .. 1

with g^{l} = dLoss/dx^{l}: backward runs in the reverse order of the forward pass, and each
layer turns the gradient of its output into the gradient of its input (and adds its
parameters' gradients into ``self.grads``, views into the network's one flat gradient
vector). ``buf`` is the layer's own dict of arrays for this batch size; forward keeps in it
what backward needs (its input, a mask, the im2col matrix, ...), so nothing is allocated per
batch. ``need_dx`` is False for the first layer: nobody needs the gradient of the data.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

Shape = tuple[int, ...]
Buffers = dict[str, Any]


class Layer:
    """The protocol. Subclasses set ``name`` (as in layer strings) and override what they use.

    Life of a layer: constructed from its settings (``Conv2D(6, 3)``, or the string
    ``"conv 6 3"``), then :meth:`build` with the shape of one input sample, which fixes the
    output shape and the parameter shapes; the network then binds ``params`` / ``grads`` to
    views of its flat vectors and calls :meth:`init_params`.
    """

    name: ClassVar[str] = "layer"
    needs_image: ClassVar[bool] = False  # reads (channels, height, width) samples
    param_names: ClassVar[tuple[str, ...]] = ()  # names of ``params``, in order
    # the settings of its layer string: positional names, then keyword names ("conv 6 3
    # stride=2": (("filters", "kernel"), ("stride", "padding"))); the parser reads them
    arguments: ClassVar[tuple[tuple[str, ...], tuple[str, ...]]] = ((), ())

    # every layer type by its name, as layer strings and model files name it: a class that
    # sets its own ``name`` is registered when it is defined (``register=False`` keeps a class
    # out, e.g. one a test makes up); numeral.nn.layers.LAYERS is this table
    types: ClassVar[dict[str, type[Layer]]] = {}

    def __init_subclass__(cls, register: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if register and "name" in cls.__dict__:
            known = Layer.types.get(cls.name)
            if known is not None and known.__qualname__ != cls.__qualname__:
                raise TypeError(f"two layer types are named {cls.name!r}: {known.__qualname__} "
                                f"and {cls.__qualname__}")
            Layer.types[cls.name] = cls

    def __init__(self) -> None:
        self.in_shape: Shape = ()
        self.out_shape: Shape = ()
        self.dtype: np.dtype[Any] = np.dtype(np.float32)
        self.params: list[np.ndarray] = []
        self.grads: list[np.ndarray] = []

    # ---------------------------------------------------------------- building
    def build(self, in_shape: Shape, dtype: np.dtype[Any]) -> Shape:
        """Fix the shapes for samples of ``in_shape``; return the output sample's shape."""
        self.in_shape, self.dtype = tuple(in_shape), np.dtype(dtype)
        self.out_shape = self.output_shape(self.in_shape)
        return self.out_shape

    def output_shape(self, in_shape: Shape) -> Shape:
        return in_shape

    def param_shapes(self) -> list[Shape]:
        """Shapes of the parameters, in the order of ``params`` (weights before biases)."""
        return []

    def decayed(self) -> list[bool]:
        """Which parameters L1/L2 penalise: the weights of Dense and Conv2D, never a bias or
        a normalisation's scale and shift."""
        return [False] * len(self.param_shapes())

    def init_params(self, rng: np.random.Generator, init: str) -> None:
        """Fill ``params`` (views, already zero) by the rule ``init``."""

    def state(self) -> dict[str, np.ndarray]:
        """Arrays the layer keeps beside its parameters (BatchNorm's running statistics,
        Standardize's mean and scale): saved with the model, not trained by the optimiser."""
        return {}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        for key, value in self.state().items():
            value[...] = state[key]

    def spec(self) -> str:
        """The layer string that builds this layer again, e.g. ``"conv 6 3 stride=2"``."""
        return self.name

    def export(self) -> dict[str, Any]:
        """What the exporters (ONNX, the web page) need to compute this layer in evaluation
        mode: its ``type``, its hyperparameters and ``arrays`` (name -> array). A layer
        without settings or arrays (an activation, flatten) is its type alone."""
        return {"type": self.name, "arrays": {}}

    # ----------------------------------------------------------------- passes
    def buffers(self, n: int, train: bool) -> Buffers:
        """The arrays one batch of ``n`` samples needs (made once per batch size)."""
        return {}

    def forward(self, x: np.ndarray, buf: Buffers, train: bool,
                rng: np.random.Generator | None) -> np.ndarray:
        """x^{l-1} (n, *in_shape) -> x^{l} (n, *out_shape)."""
        raise NotImplementedError

    def backward(self, grad: np.ndarray, buf: Buffers, need_dx: bool) -> np.ndarray | None:
        """dL/dx^{l} -> dL/dx^{l-1} (None when not ``need_dx``); parameter gradients go into
        ``self.grads``. ``grad`` may be overwritten."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{self.spec()}: {self.in_shape} -> {self.out_shape}>"


def out_buffer(layer: Layer, n: int) -> np.ndarray:
    """An (n, *out_shape) array of the layer's dtype."""
    return np.empty((n, *layer.out_shape), layer.dtype)


def exact(value: float) -> str:
    """``value`` as short as it reads back exactly: ``0.3``, ``1``, ``0.123456789``."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))

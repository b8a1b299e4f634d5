"""Experiment configs: TOML files with flat keys, validated before any work starts.

A config names everything a run depends on; ``--set key=value`` overrides any
key (values are parsed as TOML: ``--set hidden=[512,256]``, ``--set lr=3e-4``).
Shipped presets live in ``numeral/train/presets/*.toml``.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, get_type_hints

from numeral.errors import ConfigError, InputError
from numeral.nn.constraints import CONSTRAINTS as NN_CONSTRAINTS
from numeral.nn.constraints import NON_NEGATIVE, UNIT, Constraint, Interval, Options, violation
from numeral.nn.layers import parse_layer
from numeral.nn.layers.base import Shape
from numeral.nn.network import default_input_shape, mlp_layers
from numeral.nn.optim import OPTIMISERS
from numeral.nn.schedules import SCHEDULES


@dataclass
class Config:
    """Every setting of a training run (see the presets for worked examples)."""

    name: str = "custom"
    description: str = ""
    # the network: a multi-layer perceptron of these hidden widths and activations...
    hidden: list[int] = field(default_factory=lambda: [512, 256])
    activation: str | list[str] = "relu"  # one name, or one per hidden layer
    init: str = "he"
    dropout: float = 0.0
    # ...or, when given, any network as layer strings (numeral.nn.layers), e.g. ["conv 32 3",
    # "relu", "maxpool 2", "flatten", "dense 10"]; the last layer gives one score per class.
    # hidden, activation and dropout are then not used (dropout is a layer: "dropout 0.2").
    layers: list[str] = field(default_factory=list)
    # the shape of one sample for `layers`, e.g. [1, 28, 28]; default: square one-channel
    # images when the first layer reads images (conv, pooling, an input transform), else flat
    input_shape: list[int] = field(default_factory=list)
    dtype: str = "float32"
    standardize: bool = False  # store x' = (x - mean) / std of the training split in the model
    # "none", "deskew" or "orientation" (numeral.nn.inputs), or a list that ensemble members
    # take in turn
    input_transform: str | list[str] = "none"
    input_gamma: float = 1.0  # x -> x^gamma per pixel, first thing; < 1 lifts faint strokes
    # optimisation
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    # l2 (below) and weight_decay: for sgd, momentum, nesterov and adam they give the same
    # update, W <- W - lr (grad + lambda W); l2 is a term of the loss, so the loss that
    # loss_and_grads reports includes it. With adamw, weight_decay is decoupled from the
    # gradient's scaling (W <- W - lr lambda W after the Adam step), which is what to use
    # with Adam; l2 then still acts through the gradient.
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup: float = 0.0  # fraction of the run spent warming up (cosine, onecycle)
    step_epochs: int = 10  # for schedule = "step"
    gamma: float = 0.5  # for schedule = "step"
    batch_size: int = 128
    epochs: int = 20
    shuffle: bool = True
    reduction: str = "mean"  # "mean" or "sum" of the per-sample gradients in a batch
    label_smoothing: float = 0.0
    l1: float = 0.0
    l2: float = 0.0
    # data
    split: str = "random"  # "random" (stratified) or "sheet" (writer-independent)
    test_fraction: float = 0.2
    split_seed: int = 0  # fixes the train/test split independently of the training seed
    val_fraction: float = 0.0  # carved from the training split, for early stopping
    early_stopping: int = 0  # patience in epochs; 0 = off; needs val_fraction > 0
    augment: bool = False
    augment_shift: float = 2.0
    augment_rotate: float = 10.0
    augment_scale: float = 0.1
    augment_shear: float = 0.1
    augment_elastic: float = 0.0
    augment_stroke: float = 0.0  # share of images drawn thicker or thinner (a different pen)
    augment_ink: float = 0.0  # images made up to this much fainter (lighter pressure)
    augment_break: float = 0.0  # share of images with a gap cut across a stroke (a pen skipped)
    augment_until: float = 1.0  # fraction of the epochs that see distorted images; the last
    # ones (1 - augment_until) train on the images as written, at the schedule's low rates
    ensemble: int = 1  # networks trained with seeds seed, seed+1, ...; probabilities averaged
    # a committee of different networks: tables of overrides that the members take in turn
    # ([[members]] tables in TOML; see the best preset). Any key but the data's and the run's.
    # A member's own keys win over --set; `numeral train --epochs N` sets every member's.
    members: list[dict[str, Any]] = field(default_factory=list)
    seed: int = 0
    # what the report records
    train_metrics_sample: int = 0  # learning curves: the training loss/error of a fixed random
    # sample of this many training images each epoch (0: all of them; a sample is cheaper)
    snapshot_epochs: list[int] = field(default_factory=list)  # default: first, middle, last
    latent_layer: int = -1  # hidden layer of the latent-feature figure (-1: the last one)
    # a study: several variants of this config, each a table of overrides
    study: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> Config:
        return from_dict({**self.to_dict(), **changes}, origin="overrides")


# What each key may be: the core's table (numeral.nn.constraints) plus the keys only a
# training run has. Keys holding a list (activation, input_transform) check each item.
CONSTRAINTS: dict[str, Constraint] = {
    **NN_CONSTRAINTS,
    "optimizer": Options(OPTIMISERS),
    "schedule": Options(SCHEDULES),
    "split": Options(("random", "sheet")),
    "test_fraction": Interval(0.0, 1.0, "neither"),
    "val_fraction": UNIT,
    "augment_until": Interval(0.0, 1.0, "right"),
    "augment_stroke": UNIT,
    "augment_ink": UNIT,
    "augment_break": UNIT,
    **dict.fromkeys(("batch_size", "epochs", "ensemble", "step_epochs"), Interval(1, None, "left")),
    **dict.fromkeys(("early_stopping", "train_metrics_sample", "seed", "split_seed"),
                    NON_NEGATIVE),  # seeds: NumPy's generators take none below 0
}


def _check_type(key: str, value: Any, expected: Any, origin: str) -> Any:
    def fail() -> ConfigError:
        return ConfigError(
            f"config key {key!r} ({origin}) must be {getattr(expected, '__name__', expected)}, "
            f"got {value!r}"
        )

    if expected is bool:
        if not isinstance(value, bool):
            raise fail()
        return value
    if expected is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail()
        return value
    if expected is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail()
        return float(value)
    if expected is str:
        if not isinstance(value, str):
            raise fail()
        return value
    if expected == str | list[str]:
        if isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            return value
        raise fail()
    if expected == list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise fail()
        return value
    if expected == list[dict[str, Any]]:
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise fail()
        return value
    if expected == list[int]:
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise fail()
        return value
    if not isinstance(value, dict):
        raise fail()
    return value


def from_dict(data: dict[str, Any], origin: str = "config") -> Config:
    """Build and validate a Config; unknown keys, wrong types and impossible values fail."""
    hints = get_type_hints(Config)
    known = [f.name for f in dataclasses.fields(Config)]
    values = {}
    for key, value in data.items():
        if key not in hints:
            raise ConfigError(
                f"unknown config key {key!r} ({origin}); known keys: {', '.join(known)}"
            )
        values[key] = _check_type(key, value, hints[key], origin)
    config = Config(**values)
    validate(config, origin)
    return config


def validate(c: Config, origin: str = "config") -> None:
    def bad(key: str, why: str) -> ConfigError:
        return ConfigError(f"config key {key!r} ({origin}): {why}, got {getattr(c, key)!r}")

    for key in (f.name for f in dataclasses.fields(c)):
        value = getattr(c, key)
        if isinstance(value, float) and not math.isfinite(value):
            raise bad(key, "must be a finite number")
    for key in (f.name for f in dataclasses.fields(c) if f.name in CONSTRAINTS):
        values = getattr(c, key)
        for value in values if isinstance(values, list) else [values]:
            why = violation(key, value, CONSTRAINTS)
            if why:
                raise bad(key, why)
    if isinstance(c.activation, list) and len(c.activation) != len(c.hidden):
        raise bad("activation", f"needs one name per hidden layer ({len(c.hidden)})")
    if any(h < 1 for h in c.hidden):
        raise bad("hidden", "every hidden layer needs a width >= 1")
    for text in c.layers:
        try:
            parse_layer(text)
        except InputError as exc:
            raise bad("layers", str(exc)) from None
        except (ValueError, OverflowError) as exc:  # "dense inf": int() of a float it refuses
            raise bad("layers", f"layer {text!r}: {exc}") from None
    if c.layers and c.dropout:
        raise bad("dropout", "is a layer when `layers` is given: add 'dropout P' where it goes")
    if any(s < 1 for s in c.input_shape) or len(c.input_shape) not in (0, 1, 3):
        raise bad("input_shape", "must be [values] or [channels, height, width], all >= 1")
    if c.layers:  # that the layers fit a 28x28 image, before any data is loaded
        check_layers_fit(c, bad)
    if not c.layers and not -len(c.hidden) <= c.latent_layer < len(c.hidden):
        raise bad("latent_layer", f"must index one of the {len(c.hidden)} hidden layers")
    if c.early_stopping and not c.val_fraction:
        raise bad("early_stopping", "needs val_fraction > 0 (a validation split)")
    for i, overrides in enumerate(c.members):
        fixed = sorted(RUN_KEYS & overrides.keys())
        if fixed:
            raise ConfigError(f"config key 'members' ({origin}): member {i + 1} sets {fixed[0]!r}, "
                              f"which is the same for every member; set it outside [[members]]")
        member_config(c, i, origin)
    for name, overrides in c.study.items():
        if not isinstance(overrides, dict):
            raise ConfigError(f"study variant {name!r} ({origin}) must be a table of overrides")
        if overrides.get("study"):  # else variants of variants, each validated: unbounded work
            raise ConfigError(f"study variant {name!r} ({origin}) sets 'study': a variant is "
                              "one run, it cannot hold a study of its own")
        variant(c, overrides, f"{origin}, study variant {name!r}")


# keys that hold for a whole run, not one member of its committee
RUN_KEYS = frozenset(("name", "description", "split", "test_fraction", "split_seed",
                      "val_fraction", "ensemble", "seed", "members", "study",
                      "train_metrics_sample", "snapshot_epochs", "latent_layer"))


def variant(c: Config, overrides: dict[str, Any], origin: str = "config") -> Config:
    """``c`` with ``overrides`` applied, checked: the one way a variation of a config is made,
    whether it is a ``[study]`` variant, a sweep's trial or a committee member. A variant is
    one run: ``c``'s own study is not carried over (nor, for a member, its committee)."""
    return from_dict({**c.to_dict(), "study": {}, **overrides}, origin=origin)


def member_overrides(c: Config, member: int) -> dict[str, Any]:
    """What committee member ``member`` changes of ``c``: one table of overrides, however the
    committee is written. ``ensemble = N`` alone gives every member ``{}`` (they differ only
    in their seed, ``seed + member``, which is the member's index, not a setting); a list of
    ``input_transform`` gives member i ``{"input_transform": list[i % len]}``; ``[[members]]``
    tables are taken in turn (a table's own list of transforms taken in turn as well)."""
    overrides = dict(c.members[member % len(c.members)]) if c.members else {}
    transform = overrides.get("input_transform", c.input_transform)
    if not isinstance(transform, str):
        overrides["input_transform"] = transform[member % len(transform)]
    return overrides


def committee(c: Config) -> list[dict[str, Any]]:
    """The overrides of each of the ``c.ensemble`` members, in training order
    (:func:`member_overrides`)."""
    return [member_overrides(c, m) for m in range(c.ensemble)]


def member_config(c: Config, member: int, origin: str = "config") -> Config:
    """The settings ensemble member ``member`` trains with: ``c`` with its
    :func:`member_overrides` applied; ``c`` itself when they are none."""
    overrides = member_overrides(c, member)
    if not overrides:
        return c
    where = f"{origin}, member {member % len(c.members) + 1}" if c.members else origin
    return variant(c, {**overrides, "members": []}, where)


def with_epochs(c: Config, epochs: int) -> Config:
    """``c`` with every network trained for ``epochs`` (its members' own epochs dropped)."""
    members = [{k: v for k, v in m.items() if k != "epochs"} for m in c.members]
    return c.replace(epochs=epochs, members=members)


def member_epochs(c: Config) -> list[int]:
    """The epochs of each ensemble member, in training order."""
    return [member_config(c, m).epochs for m in range(c.ensemble)]


def network_layers(c: Config, transform: str, width: int = 784,
                   n_classes: int = 10) -> tuple[list[Any], Shape]:
    """The layer list of a network of ``c`` whose input transform is ``transform`` and the
    input shape it reads; one description for every network. With ``layers``: gamma and the
    transform first, then ``c.layers``, on ``input_shape`` or what the first layer needs of
    ``width`` values. Without: the multi-layer perceptron of ``hidden``, ``activation`` and
    ``dropout`` ending in ``n_classes`` scores (numeral.nn.network.mlp_layers, the one place
    the MLP shorthand becomes layers), on ``width`` values."""
    if not c.layers:
        names = ([c.activation] * len(c.hidden) if isinstance(c.activation, str)
                 else list(c.activation))
        return mlp_layers([width, *c.hidden, n_classes], names, float(c.dropout), transform,
                          float(c.input_gamma)), (width,)
    first = [f"gamma {c.input_gamma:g}"] if c.input_gamma != 1.0 else []
    first += [] if transform == "none" else [transform]
    layers = [*first, *c.layers]
    shape = tuple(c.input_shape) or default_input_shape(parse_layer(layers[0]), width)
    return layers, shape


def check_layers_fit(c: Config, bad: Any) -> None:
    """Build the layer list (with the input transforms the trainer puts first) on the 784
    values numeral.data gives, or on ``input_shape``: a layer that does not fit is named."""
    from numeral.nn import Network

    transforms = [c.input_transform] if isinstance(c.input_transform, str) else c.input_transform
    for transform in transforms:
        layers, shape = network_layers(c, transform)
        try:
            Network.from_layers(layers, shape, init="zeros")
        except InputError as exc:
            raise bad("layers", f"{exc} (on {shape} inputs)") from None
        except (ValueError, OverflowError, MemoryError) as exc:  # too large to build at all
            raise bad("layers", f"cannot be built on {shape} inputs ({exc})") from None


def presets() -> list[str]:
    """Names of the shipped presets."""
    folder = resources.files("numeral.train") / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def parse_override(item: str) -> tuple[str, Any]:
    """``key=value`` with the value read as TOML (bare words are taken as strings)."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set lr=0.01")
    key, raw = (s.strip() for s in item.split("=", 1))
    try:
        parsed = tomllib.loads(f"v = {raw}")
    except tomllib.TOMLDecodeError:
        return key, raw
    except RecursionError:  # tomllib recurses once per level of nesting
        raise ConfigError(f"--set {key}=...: the value is nested too deeply") from None
    if parsed.keys() != {"v"}:  # "1\nepochs = 2" is two settings, not one value
        raise ConfigError(f"--set {item!r}: the value must be one TOML value, "
                          f"e.g. --set {key}=0.01")
    return key, parsed["v"]


def load_config(name_or_path: str, overrides: list[str] | None = None) -> Config:
    """A preset name (``seed``, ``best``, ...) or a TOML file, then ``--set`` overrides."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        origin = str(path)
        try:
            text = path.read_bytes().decode("utf-8")  # TOML is UTF-8, whatever the locale
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: not UTF-8 text (byte "
                              f"{exc.object[exc.start]:#04x} at offset {exc.start})") from None
    else:
        folder = resources.files("numeral.train") / "presets"
        preset = folder / f"{name_or_path}.toml"
        if not preset.is_file():
            raise ConfigError(
                f"no preset or file called {name_or_path!r}; presets: {', '.join(presets())}"
            )
        text, origin = preset.read_text(), f"preset {name_or_path}"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin} is not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per level of nesting
        raise ConfigError(f"{origin} is not valid TOML here: it is nested too deeply") from None
    for item in overrides or []:
        key, value = parse_override(item)
        data[key] = value
    data.setdefault("name", path.stem if path.suffix == ".toml" else name_or_path)
    return from_dict(data, origin)


def write_config(config: Config, path: Path) -> None:
    import tomli_w

    from numeral.nn.files import atomic_write

    text = tomli_w.dumps({k: v for k, v in config.to_dict().items() if v != {} or k != "study"})
    atomic_write(path, lambda fh: fh.write(text.encode()))

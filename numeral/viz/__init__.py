"""numeral.viz — the figures of a run (matplotlib, headless)."""

from numeral.viz.figures import (
    activation_histograms,
    compare_curves,
    confusion_heatmap,
    conv_filters,
    feature_maps,
    first_layer_weights,
    histogram_animation,
    latent_animation,
    latent_features,
    learning_curves,
    misclassified_gallery,
    orientation_examples,
    regularization_study,
    snapshot_epochs,
    sweep_figure,
)

__all__ = [
    "activation_histograms",
    "compare_curves",
    "confusion_heatmap",
    "conv_filters",
    "feature_maps",
    "first_layer_weights",
    "histogram_animation",
    "latent_animation",
    "latent_features",
    "learning_curves",
    "misclassified_gallery",
    "orientation_examples",
    "regularization_study",
    "snapshot_epochs",
    "sweep_figure",
]

"""Registered fusion models: ``create(name, weights=...)``, ``list_models()``, ``get_card(name)``."""

from distilfuse.models.base import FusionModel, count_parameters, freeze, pad_to_multiple
from distilfuse.models.features import FeatureTaps
from distilfuse.models.registry import (
    ModelCard,
    WeightsError,
    create,
    get_card,
    list_models,
    load_weights,
    output_range_of,
    read_state_dict,
    register_model,
)

__all__ = [
    "FeatureTaps",
    "FusionModel",
    "ModelCard",
    "WeightsError",
    "count_parameters",
    "create",
    "freeze",
    "get_card",
    "list_models",
    "load_weights",
    "output_range_of",
    "pad_to_multiple",
    "read_state_dict",
    "register_model",
]

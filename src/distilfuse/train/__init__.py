"""Training: `train(load_config(path, overrides), out_dir)`; the loop in `engine`, recipes in configs/."""

from distilfuse.train.config import ConfigError, load_config
from distilfuse.train.engine import Trainer, train
from distilfuse.train.strategies import STRATEGIES, Phase, Strategy, TrainingContext, register_strategy

__all__ = [
    "STRATEGIES",
    "ConfigError",
    "Phase",
    "Strategy",
    "Trainer",
    "TrainingContext",
    "load_config",
    "register_strategy",
    "train",
]

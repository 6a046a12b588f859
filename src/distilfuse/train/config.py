"""Training configuration: YAML recipes, `${DATA}`-style paths, dotted `key=value` overrides, smoke variants."""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A recipe or an override is malformed; the message names the key."""


# Values every recipe gets unless it sets them; the recipe (then the overrides) win.
DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "student": {"name": None, "weights": None, "init_from_teacher": {}},
    "teacher": None,
    "losses": [],
    "distillers": [],
    "optimizer": {"type": "adam", "lr": 1e-4, "betas": [0.9, 0.999], "weight_decay": 0.0},
    "scheduler": {"type": "none"},
    "strategy": {"name": "plain"},
    "data": {
        "sources": [],
        "patch": 128,
        "patches_per_image": 16,
        "batch": 8,
        "flips": True,
        "workers": 0,
        "val_pairs": 0,
        "val_patch": 256,
        "val_patches_per_image": 1,
    },
    "cache": {"enabled": True, "dir": "${RUNS}/teacher_cache", "dtype": "float16", "batch": 16},
    "train": {
        "epochs": 1,
        "max_steps": None,
        "checkpoint_every_steps": 0,
        "validate_every": 1,
        "log_every": 10,
        "amp": "none",
        "loss_space": "raw",
        "deterministic": False,
        "progress": True,
    },
    "validation": {"metrics": ["SSIM", "Qabf"], "best_metric": "Qabf", "mode": "max", "batch": 4},
}

_VAR = re.compile(r"\$\{([A-Z_]+)\}")


def path_variables() -> dict[str, str]:
    """`${DATA}` (env DISTILFUSE_DATA, default ../shared/data), `${SHARED}` (its parent) and `${RUNS}`
    (env DISTILFUSE_RUNS, default runs); relative defaults are taken from the working directory,
    which for the CLI is the project root."""
    data = Path(os.environ.get("DISTILFUSE_DATA", "../shared/data"))
    return {
        "DATA": str(data),
        "SHARED": str(data.parent),
        "RUNS": os.environ.get("DISTILFUSE_RUNS", "runs"),
    }


def substitute(value: Any, variables: Mapping[str, str]) -> Any:
    """Replace `${NAME}` in every string of a nested config."""
    if isinstance(value, str):

        def repl(m: re.Match) -> str:
            if m.group(1) not in variables:
                raise ConfigError(
                    f"unknown variable ${{{m.group(1)}}} in {value!r}; known: "
                    + ", ".join(f"${{{k}}}" for k in variables)
                )
            return variables[m.group(1)]

        return _VAR.sub(repl, value)
    if isinstance(value, dict):
        return {k: substitute(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    return value


def deep_merge(base: dict, update: Mapping) -> dict:
    """A copy of `base` with `update` merged in (dicts recursively, everything else replaced)."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def set_dotted(cfg: dict, dotted: str, value: Any) -> None:
    """Set `a.b.c` in a nested dict; numeric parts index lists (`losses.0.weight`)."""
    parts = dotted.split(".")
    node: Any = cfg
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = node[_list_index(node, part, parts[: i + 1])]
        else:
            if not isinstance(node.get(part), dict | list):
                if part in node and node[part] is not None:
                    raise ConfigError(f"{'.'.join(parts[: i + 1])} is a value, not a section")
                node[part] = {}
            node = node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[_list_index(node, last, parts)] = value
    else:
        node[last] = value


def _list_index(node: list, part: str, path: list[str]) -> int:
    if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
        raise ConfigError(f"{'.'.join(path)}: {part!r} is not an index of a list of {len(node)}")
    return int(part)


def parse_overrides(items: Iterable[str]) -> list[tuple[str, Any]]:
    """`key=value` strings -> (dotted key, YAML-typed value): `train.epochs=3`, `data.flips=false`."""
    parsed = []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key or any(not p for p in key.split(".")):
            raise ConfigError(f"override {item!r} is not of the form key.path=value")
        try:
            value = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: cannot parse the value ({exc})") from None
        parsed.append((key, _float_if_numeric(value)))
    return parsed


def _float_if_numeric(value: Any) -> Any:
    # YAML 1.1 reads "1e-3" (no dot) as a string.
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def read_recipe(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A recipe's mapping; `base: OTHER.yaml` (relative to the file) is read first and merged under it,
    smoke sections included, so variants state only what differs."""
    if path.resolve() in seen:
        raise ConfigError(f"{path}: recipes include each other through 'base'")
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections")
    base = raw.pop("base", None)
    if base is None:
        return raw
    return deep_merge(read_recipe(path.parent / base, (*seen, path.resolve())), raw)


def load_config(path: str | Path, overrides: Iterable[str] = (), smoke: bool = False) -> dict:
    """Read a recipe, apply its `smoke:` section when asked, then the overrides, then `${VAR}`s.

    The `smoke:` section maps dotted keys (or nested sections) to values; it is removed from the
    returned config.
    """
    path = Path(path)
    raw = read_recipe(path)
    smoke_section = raw.pop("smoke", None) or {}
    cfg = deep_merge(DEFAULTS, raw)
    if smoke:
        if not smoke_section:
            raise ConfigError(f"{path}: no smoke section")
        for key, value in smoke_section.items():
            set_dotted(cfg, key, value)
    for key, value in parse_overrides(overrides):
        set_dotted(cfg, key, value)
    cfg = substitute(cfg, path_variables())
    cfg["config_file"] = str(path)
    validate(cfg)
    return cfg


def validate(cfg: dict) -> None:
    """Fail early, naming the key, on what would otherwise fail mid-run."""
    if not cfg["student"].get("name"):
        raise ConfigError("student.name is required")
    teacher = cfg.get("teacher")
    if teacher is not None and not teacher.get("name"):
        raise ConfigError("teacher.name is required when a teacher section is given")
    if cfg["distillers"] and teacher is None:
        raise ConfigError("distillers need a teacher section")
    data = cfg["data"]
    if not data["sources"]:
        raise ConfigError("data.sources is empty: list dataset roots (and optional split files)")
    for key in ("patch", "patches_per_image", "batch"):
        if not isinstance(data[key], int) or data[key] < 1:
            raise ConfigError(f"data.{key} must be a positive integer, not {data[key]!r}")
    train = cfg["train"]
    if not isinstance(train["epochs"], int) or train["epochs"] < 1:
        raise ConfigError(f"train.epochs must be a positive integer, not {train['epochs']!r}")
    if train["amp"] not in ("none", "bf16", "fp16"):
        raise ConfigError(f"train.amp must be none, bf16 or fp16, not {train['amp']!r}")
    if train["deterministic"] not in (True, False, "warn"):
        raise ConfigError(f"train.deterministic must be true, false or warn, not {train['deterministic']!r}")
    if cfg["validation"]["mode"] not in ("max", "min"):
        raise ConfigError("validation.mode must be max or min")

"""Training configuration: YAML recipes, `${DATA}`-style paths, dotted `key=value` overrides, smoke variants."""

from __future__ import annotations

import copy
import difflib
import math
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
    # A torchvision-style VGG state dict for every perceptual term left without one (losses, refresh).
    "perceptual_weights": None,
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
        # > 1: train that many student initialisations for init_trial_epochs, keep the lowest training loss
        "init_trials": 1,
        "init_trial_epochs": 2,
    },
    # stretch: score the min-max stretched raw output; null follows train.loss_space (stretch or not)
    "validation": {"metrics": ["SSIM", "Qabf"], "best_metric": "Qabf", "batch": 4, "stretch": None},
}

# The keys a recipe may use: a dict lists a section's keys, [schema] the schema of a list's items, None a value,
# FREE a spec checked where it is built (losses, distillers, strategies). `validation.mode` is optional and must
# agree with the best metric's own direction.
FREE = "free-form"
LOSS_SPACES = ("raw", "unit", "stretch")  # train.loss_space: what the task losses see (Trainer.loss_space)
SCHEMA: dict[str, Any] = {
    **{key: None for key in DEFAULTS},
    # init_seed: draw the student's initial weights from this seed (default: the recipe seed's own draw)
    "student": {"name": None, "weights": None, "init_from_teacher": FREE, "init_seed": None},
    "teacher": {"name": None, "weights": None, "members": [{"name": None, "weights": None}]},
    "losses": FREE,
    "distillers": FREE,
    "optimizer": {"type": None, "lr": None, "betas": None, "weight_decay": None, "eps": None},
    "scheduler": {
        key: None
        for key in ("type", "min_lr", "max_lr", "div_factor", "final_div_factor", "pct_start")
        + ("anneal_strategy", "cycle_momentum", "three_phase")
    },
    "strategy": FREE,
    "data": {**{key: None for key in DEFAULTS["data"]}, "sources": [{"root": None, "split": None}]},
    "cache": {key: None for key in DEFAULTS["cache"]},
    "train": {key: None for key in DEFAULTS["train"]},
    "validation": {**{key: None for key in DEFAULTS["validation"]}, "mode": None},
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


def _unknown_key(parts: list[str], known: dict[str, Any], origin: str) -> ConfigError:
    """The error for `parts[-1]`, which `known` (the section at `parts[:-1]`) does not list."""
    dotted, section = ".".join(parts), ".".join(parts[:-1])
    prefix = f"{section}." if section else ""
    close = difflib.get_close_matches(parts[-1], list(known), n=1, cutoff=0.5)
    hint = f"did you mean {prefix}{close[0]}?" if close else f"valid keys here: {', '.join(known)}"
    return ConfigError(f"{origin}: unknown key {dotted}; {hint}")


def check_keys(tree: Mapping[str, Any], origin: str) -> None:
    """Reject keys of a (partial) recipe that SCHEMA does not know, suggesting the closest valid name."""

    def walk(value: Any, schema: Any, parts: list[str]) -> None:
        if isinstance(schema, dict) and isinstance(value, Mapping):
            for key, item in value.items():
                if key not in schema:
                    raise _unknown_key([*parts, str(key)], schema, origin)
                walk(item, schema[key], [*parts, str(key)])
        elif isinstance(schema, list) and isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, schema[0], [*parts, str(index)])

    walk(tree, SCHEMA, [])


def check_dotted_key(dotted: str, origin: str) -> None:
    """Reject a dotted override key (`train.epochs`) whose path SCHEMA does not know."""
    parts = dotted.split(".")
    schema: Any = SCHEMA
    for i, part in enumerate(parts):
        if isinstance(schema, dict):
            if part not in schema:
                raise _unknown_key(parts[: i + 1], schema, origin)
            schema = schema[part]
        elif isinstance(schema, list) and part.lstrip("-").isdigit():
            schema = schema[0]
        else:
            return  # a free-form spec, or a value (set_dotted says so)


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
    check_keys(raw, str(path))
    cfg = deep_merge(DEFAULTS, raw)
    if smoke:
        if not smoke_section:
            raise ConfigError(f"{path}: no smoke section")
        for key, value in smoke_section.items():
            check_dotted_key(key, f"{path}: smoke")
            set_dotted(cfg, key, value)
    for key, value in parse_overrides(overrides):
        check_dotted_key(key, f"override {key}={value}")
        set_dotted(cfg, key, value)
    cfg = substitute(cfg, path_variables())
    cfg["config_file"] = str(path)
    fill_perceptual_weights(cfg)
    validate(cfg)
    return cfg


def _integer(value: Any, key: str, minimum: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ConfigError(f"{key} must be {what}{' or null' if allow_none else ''}, not {value!r}")


def _number(value: Any, key: str, low: float, low_open: bool = False, high: float | None = None) -> float:
    """A finite number in range; numeric strings (YAML reads `1e-4` as one) are converted."""
    number = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
    if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
        raise ConfigError(f"{key} must be a number, not {value!r}")
    if (number <= low if low_open else number < low) or (high is not None and number >= high):
        bound = (f"> {low:g}" if low_open else f">= {low:g}") + (f" and < {high:g}" if high is not None else "")
        raise ConfigError(f"{key} must be {bound}, not {value!r}")
    return float(number)


def _choice(value: Any, key: str, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(map(str, choices))}, not {value!r}")


def validate(cfg: dict) -> None:
    """Fail early, with one line naming the key, on what would otherwise fail mid-run."""
    _integer(cfg["seed"], "seed", 0)
    student = cfg["student"]
    if not student.get("name"):
        raise ConfigError("student.name is required")
    _integer(student.get("init_seed"), "student.init_seed", 0, allow_none=True)
    if student.get("init_seed") is not None and student.get("weights"):
        raise ConfigError("student.init_seed draws initial weights: it cannot go with student.weights")
    teacher = cfg.get("teacher")
    if teacher is not None:
        members = teacher.get("members")
        if bool(teacher.get("name")) == bool(members):
            raise ConfigError("the teacher section needs a name, or members (a list of {name, weights}), not both")
        if members is not None and (
            not isinstance(members, list) or len(members) < 2 or not all(m.get("name") for m in members)
        ):
            raise ConfigError("teacher.members must list at least two {name, weights} entries, each with a name")
        if members and len({m["name"] for m in members}) != len(members):
            raise ConfigError("teacher.members must name each model once")
    if cfg["distillers"] and teacher is None:
        raise ConfigError("distillers need a teacher section")
    for key in ("losses", "distillers"):
        if not isinstance(cfg[key], list) or not all(isinstance(spec, dict) for spec in cfg[key]):
            raise ConfigError(f"{key} must be a list of specs ({{type: ..., weight: ...}})")

    opt = cfg["optimizer"]
    _choice(str(opt.get("type", "adam")).lower(), "optimizer.type", ("adam", "adamw"))
    for key, low_open in (("lr", True), ("weight_decay", False), ("eps", True)):
        if key in opt:
            opt[key] = _number(opt[key], f"optimizer.{key}", 0.0, low_open)
    betas = opt.get("betas", [0.9, 0.999])
    if not isinstance(betas, list | tuple) or len(betas) != 2:
        raise ConfigError(f"optimizer.betas must be two numbers in [0, 1), not {betas!r}")
    opt["betas"] = [_number(b, f"optimizer.betas.{i}", 0.0, high=1.0) for i, b in enumerate(betas)]
    sched = cfg["scheduler"]
    _choice(str(sched.get("type", "none")).lower(), "scheduler.type", ("none", "onecycle", "cosine"))
    for key, low_open in (("min_lr", False), ("max_lr", True)):
        if key in sched:
            sched[key] = _number(sched[key], f"scheduler.{key}", 0.0, low_open)
    if not isinstance(cfg["strategy"], dict):
        raise ConfigError("strategy must be a section with a name")

    data = cfg["data"]
    if not data["sources"]:
        raise ConfigError("data.sources is empty: list dataset roots (and optional split files)")
    for i, source in enumerate(data["sources"]):
        if not isinstance(source, dict) or not source.get("root"):
            raise ConfigError(f"data.sources.{i} must be {{root: FOLDER, split: FILE (optional)}}, not {source!r}")
    for key in ("patch", "patches_per_image", "batch", "val_patch", "val_patches_per_image"):
        _integer(data[key], f"data.{key}", 1)
    for key in ("val_pairs", "workers"):
        _integer(data[key], f"data.{key}", 0)
    _choice(data["flips"], "data.flips", (True, False))

    cache = cfg["cache"]
    _choice(cache["enabled"], "cache.enabled", (True, False))
    _choice(cache["dtype"], "cache.dtype", ("float16", "float32"))
    _integer(cache["batch"], "cache.batch", 1)

    train = cfg["train"]
    _integer(train["epochs"], "train.epochs", 1)
    _integer(train["max_steps"], "train.max_steps", 1, allow_none=True)
    for key in ("checkpoint_every_steps", "validate_every", "log_every"):
        _integer(train[key], f"train.{key}", 0, allow_none=True)
    _choice(train["amp"], "train.amp", ("none", "bf16", "fp16"))
    _choice(train["loss_space"], "train.loss_space", LOSS_SPACES)
    _choice(train["deterministic"], "train.deterministic", (True, False, "warn"))
    _choice(train["progress"], "train.progress", (True, False))
    _integer(train["init_trials"], "train.init_trials", 1)
    _integer(train["init_trial_epochs"], "train.init_trial_epochs", 1)
    if train["init_trials"] > 1:
        if student.get("weights") or student.get("init_seed") is not None:
            raise ConfigError("train.init_trials chooses the initial weights: drop student.weights, student.init_seed")
        if train["init_trial_epochs"] > train["epochs"]:
            raise ConfigError("train.init_trial_epochs must not exceed train.epochs")

    val = cfg["validation"]
    if not isinstance(val["metrics"], list) or not val["metrics"]:
        raise ConfigError(f"validation.metrics must be a non-empty list of metric names, not {val['metrics']!r}")
    _integer(val["batch"], "validation.batch", 1)
    _choice(val["stretch"], "validation.stretch", (None, True, False))
    if "mode" in val:
        _choice(val["mode"], "validation.mode", ("max", "min"))


def without_teacher(cfg: dict) -> dict:
    """The no-KD arm of a recipe: the same student, task losses, data, schedule and budget, but no
    teacher, no distillers and no teacher-initialised layers. Strategies whose steps are distillation
    (two_stage_sr) have no such arm."""
    if cfg["strategy"].get("fusion_distillers"):
        name = cfg["strategy"]["name"]
        raise ConfigError(f"strategy {name} trains its first stage by distillation only: it has no no-KD arm")
    if not cfg["losses"]:
        raise ConfigError("a no-KD arm needs task losses: the recipe has none")
    out = copy.deepcopy(cfg)
    out["teacher"] = None
    out["distillers"] = []
    out["student"]["init_from_teacher"] = {}
    return out


PERCEPTUAL_KEYS = {"perceptual": "weights", "hkd_teacher": "perceptual_weights"}  # loss type -> its weights key


def fill_perceptual_weights(cfg: dict) -> None:
    """Give the top-level `perceptual_weights` file to every perceptual loss and refresh memory that names
    none, so `perceptual_weights=PATH` switches a whole recipe from the substitute to VGG."""
    path = cfg.get("perceptual_weights")
    if not path:
        return
    for spec in cfg["losses"]:
        key = PERCEPTUAL_KEYS.get(spec.get("type"))
        if key and not spec.get(key):
            spec[key] = path
    strategy = cfg["strategy"]
    if strategy.get("name") == "dynamic_refresh":
        refresh = strategy["refresh"] = strategy.get("refresh") or {}
        refresh["perceptual_weights"] = refresh.get("perceptual_weights") or path

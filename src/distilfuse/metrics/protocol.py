"""Each seed paper's evaluation protocol: its test pairs (or our substitutes), metrics, conventions and
output handling, and a table of our models and the official outputs beside the paper's printed rows.

A protocol is a YAML file; the four papers' ship in ``distilfuse/metrics/protocols/``. Keys:

    paper: text                     # the paper and the tables its printed rows come from
    metrics: [NAME, ...]            # the paper's metric set, in its column order
    profile: cdd | tang             # the metric convention (metrics.md §1.1)
    options: {OPTION: VALUE}        # optional overrides of single metric options (e.g. ssim_mode)
    stretch: true | false           # our models' outputs min-max stretched (true) or clipped to [0,1]
    upscale_sources: false          # optional: fusion + super-resolution, sources resized to the output
    unit_scale: [NAME, ...]         # optional: metrics the paper prints on a 0-1 intensity scale (value / 255)
    sets:
      - name: text
        paper_pairs: text           # what the paper tested on
        substitute: text            # what stands in for it here
        scale: 1                    # optional: the set's output scale (fusion + x2/x3/x4 super-resolution, with
                                    # upscale_sources); only models of this `scale` are fused on it
        parts:                      # the pairs: one or more sources, concatenated
          - {set: TNO42, draw: 20, seed: 0}     # a test set of data.test_sets; optional seeded draw
          - {folder: TNO_LR/2x, peers: HKDnet_SR}  # or a data folder with ir/ and vi/, and its peers folder
        anchors: [SHIP] or {LABEL: METHOD}      # official outputs: <peers>/<part's peers folder>/METHOD
        published:
          - {table: "4", row: text, values: "43.08 1.66 ..."}  # as printed, in the order of `metrics`
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from distilfuse.data.test_sets import TEST_SETS, test_set_folders
from distilfuse.io import list_images, pair_by_stem
from distilfuse.metrics._options import resolve_options
from distilfuse.metrics.core import resolve_metric_names
from distilfuse.metrics.evaluate import Pairs, evaluate_folders, method_table

# Our 0..255 values divided by this give the 0-1 intensity scale some papers print (HKDnet's AG).
UNIT_SCALE = 255.0


class ProtocolError(ValueError):
    """A protocol file that cannot be used; the message is one line naming the file."""


@dataclass(frozen=True)
class Part:
    source: str  # a TEST_SETS label, or a folder under the data root with ir/ and vi/
    peers: str  # under the peers root: the folder whose METHOD subfolders hold official outputs
    draw: int | None = None  # a seeded random draw of this many pairs (the paper drew at random)
    seed: int = 0


@dataclass(frozen=True)
class Published:
    table: str
    row: str
    values: tuple[str, ...]  # as printed, one per protocol metric


@dataclass(frozen=True)
class ProtocolSet:
    name: str
    paper_pairs: str
    substitute: str
    parts: tuple[Part, ...]
    anchors: dict[str, str]  # row label -> method folder under each part's peers folder
    published: tuple[Published, ...]
    scale: int = 1  # output size / input size of the set's task; only models of this scale are fused on it


@dataclass(frozen=True)
class Protocol:
    name: str
    paper: str
    metrics: list[str]
    profile: str
    options: dict[str, Any]
    stretch: bool
    upscale_sources: bool
    unit_scale: tuple[str, ...]
    sets: tuple[ProtocolSet, ...]


_TOP_KEYS = {"paper", "metrics", "profile", "options", "stretch", "upscale_sources", "unit_scale", "sets"}
_TOP_REQUIRED = {"paper", "metrics", "profile", "stretch", "sets"}
_SET_KEYS = {"name", "paper_pairs", "substitute", "parts", "anchors", "published", "scale"}
_SET_REQUIRED = {"name", "paper_pairs", "substitute", "parts"}
_PART_KEYS = {"set", "folder", "peers", "draw", "seed"}
_PUBLISHED_KEYS = {"table", "row", "values"}


def shipped_protocols() -> list[str]:
    """Names of the protocols shipped with the package."""
    folder = resources.files("distilfuse.metrics") / "protocols"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _keys(node: Any, where: str, known: set[str], required: set[str]) -> dict:
    if not isinstance(node, dict):
        raise ProtocolError(f"{where}: expected a mapping")
    unknown = sorted(set(node) - known)
    if unknown:
        raise ProtocolError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    missing = sorted(required - set(node))
    if missing:
        raise ProtocolError(f"{where}: missing key(s) {', '.join(missing)}")
    return node


def _part(node: Any, where: str) -> Part:
    node = _keys(node, where, _PART_KEYS, set())
    if ("set" in node) == ("folder" in node):
        raise ProtocolError(f"{where}: give either set (one of {', '.join(TEST_SETS)}) or folder")
    if "set" in node and node["set"] not in TEST_SETS:
        raise ProtocolError(f"{where}: unknown test set {node['set']!r}; known: {', '.join(TEST_SETS)}")
    if "folder" in node and "peers" not in node:
        raise ProtocolError(f"{where}: a folder part needs its peers folder")
    draw = node.get("draw")
    if draw is not None and (not isinstance(draw, int) or draw < 1):
        raise ProtocolError(f"{where}: draw must be a positive number of pairs, not {draw!r}")
    source = node.get("set") or node["folder"]
    peers = node.get("peers") or TEST_SETS[source].peers
    return Part(str(source), str(peers), draw, int(node.get("seed", 0)))


def _published(node: Any, where: str, metrics: list[str]) -> Published:
    node = _keys(node, where, _PUBLISHED_KEYS, _PUBLISHED_KEYS)
    values = tuple(str(node["values"]).split())
    if len(values) != len(metrics):
        raise ProtocolError(f"{where}: {len(values)} values for {len(metrics)} metrics ({', '.join(metrics)})")
    for value in values:
        try:
            float(value)
        except ValueError:
            raise ProtocolError(f"{where}: {value!r} is not a number") from None
    return Published(str(node["table"]), str(node["row"]), values)


def _protocol_set(node: Any, where: str, metrics: list[str]) -> ProtocolSet:
    node = _keys(node, where, _SET_KEYS, _SET_REQUIRED)
    where = f"{where} ({node['name']})"
    if not isinstance(node["parts"], list) or not node["parts"]:
        raise ProtocolError(f"{where}: parts must be a non-empty list")
    parts = tuple(_part(p, f"{where}: parts[{i}]") for i, p in enumerate(node["parts"]))
    anchors = node.get("anchors") or {}
    anchors = {str(a): str(a) for a in anchors} if isinstance(anchors, list) else anchors
    if not isinstance(anchors, dict):
        raise ProtocolError(f"{where}: anchors must be a list of methods or a mapping LABEL: METHOD")
    published = node.get("published") or []
    rows = tuple(_published(p, f"{where}: published[{i}]", metrics) for i, p in enumerate(published))
    scale = node.get("scale", 1)
    if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
        raise ProtocolError(f"{where}: scale must be a positive whole number, not {scale!r}")
    name, paper_pairs, substitute = str(node["name"]), str(node["paper_pairs"]), str(node["substitute"])
    return ProtocolSet(name, paper_pairs, substitute, parts, dict(anchors), rows, scale)


def load_protocol(name_or_path: str | Path) -> Protocol:
    """A shipped protocol by name, or a protocol file; ProtocolError (one line) when it is unusable."""
    path = Path(name_or_path)
    if str(name_or_path) in shipped_protocols():
        path = Path(str(resources.files("distilfuse.metrics") / "protocols" / f"{name_or_path}.yaml"))
    elif not path.is_file():
        raise ProtocolError(f"{name_or_path}: no such protocol; shipped: {', '.join(shipped_protocols())}")
    try:
        node = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ProtocolError(f"{path}: cannot read ({' '.join(str(exc).split())})") from None
    node = _keys(node, str(path), _TOP_KEYS, _TOP_REQUIRED)
    try:
        metrics = resolve_metric_names(node["metrics"])
        options = dict(node.get("options") or {})
        resolve_options(node["profile"], options)
    except (ValueError, TypeError) as exc:
        raise ProtocolError(f"{path}: {exc}") from None
    unit_scale = tuple(node.get("unit_scale") or ())
    if not set(unit_scale) <= set(metrics):
        raise ProtocolError(
            f"{path}: unit_scale names metrics not in the protocol: {sorted(set(unit_scale) - set(metrics))}"
        )
    for key in ("stretch", "upscale_sources"):
        if not isinstance(node.get(key, False), bool):
            raise ProtocolError(f"{path}: {key} must be true or false")
    if not isinstance(node["sets"], list) or not node["sets"]:
        raise ProtocolError(f"{path}: sets must be a non-empty list")
    sets = tuple(_protocol_set(s, f"{path}: sets[{i}]", metrics) for i, s in enumerate(node["sets"]))
    if not node.get("upscale_sources", False) and any(s.scale != 1 for s in sets):
        raise ProtocolError(f"{path}: a set with scale > 1 (super-resolution) needs upscale_sources: true")
    return Protocol(
        path.stem,
        str(node["paper"]),
        metrics,
        str(node["profile"]),
        options,
        node["stretch"],
        node.get("upscale_sources", False),
        unit_scale,
        sets,
    )


def draw_pairs(pairs: Pairs, count: int, seed: int) -> list[tuple[str, Path, Path]]:
    """A seeded random draw of `count` pairs (in stem order), the same on every run and machine."""
    ordered = sorted(pairs)
    if count > len(ordered):
        raise ProtocolError(f"cannot draw {count} pairs from {len(ordered)}")
    return sorted(random.Random(seed).sample(ordered, count))


def part_pairs(part: Part, data: Path, work: Path) -> list[tuple[str, Path, Path]]:
    """The pairs of one part: its test set or data folder, then its draw."""
    if part.source in TEST_SETS:
        ir_dir, vi_dir = test_set_folders(data, part.source, work)
    else:
        ir_dir, vi_dir = data / part.source / "ir", data / part.source / "vi"
    pairs, problems = pair_by_stem(ir_dir, vi_dir)
    if problems or not pairs:
        raise ProtocolError(f"{part.source}: " + ("; ".join(problems) or f"no pairs in {ir_dir} and {vi_dir}"))
    return draw_pairs(pairs, part.draw, part.seed) if part.draw else pairs


def _link_anchor(method: str, parts: Sequence[Part], stems: Sequence[set[str]], peers: Path, dest: Path) -> bool:
    """Links to the official outputs of the chosen pairs in one folder (parts may be subsets or several
    peers folders); False when a part has no such folder."""
    folders = [peers / part.peers / method for part in parts]
    if not all(f.is_dir() for f in folders):
        return False
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.iterdir():  # links of an earlier run (another draw) would be scored as unpaired files
        if old.is_symlink():
            old.unlink()
    for folder, wanted in zip(folders, stems, strict=True):
        for stem, path in list_images(folder).items():
            if stem in wanted:
                (dest / path.name).symlink_to(path.resolve())
    return True


def _fuse_all(
    model: Any, pairs: Pairs, out: Path, protocol: Protocol, device: str, report: Callable[[str], None]
) -> None:
    from distilfuse.inference import fuse_file
    from distilfuse.models import output_range_of

    for stem, ir_path, vis_path in pairs:
        try:  # one bad pair must not stop the others; it is reported and then missing from the scores
            fuse_file(
                model,
                ir_path,
                vis_path,
                out / f"{stem}.png",
                device=device,
                # a stretching protocol stretches every model; otherwise each model's declared range applies
                output_range="stretch" if protocol.stretch else output_range_of(model),
            )
        except ValueError as exc:
            report(str(exc))


def set_table(protocol: Protocol, pset: ProtocolSet, means: dict[str, dict[str, float]], counts: dict[str, int]) -> str:
    """Markdown: measured rows (best in bold; unit-scale metrics divided by 255), then the paper's printed rows."""
    shown = {
        label: {n: v / UNIT_SCALE if n in protocol.unit_scale else v for n, v in values.items()}
        for label, values in means.items()
    }
    table = method_table(shown, counts, protocol.metrics)
    for row in pset.published:
        table += f"| paper, Table {row.table}: {row.row} | — | " + " | ".join(row.values) + " |\n"
    return table


def run_protocol(
    protocol: Protocol,
    models: Mapping[str, Any],
    out: Path,
    *,
    data: Path,
    peers: Path,
    extra_anchors: Sequence[str] = (),
    sets: Sequence[str] | None = None,
    device: str = "cpu",
    report: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
) -> str:
    """Fuse each set's pairs with each model (label -> loaded model) as `distilfuse fuse` does with the
    protocol's output handling, score them beside the official outputs, and return the Markdown report.

    Fused images go to out/<protocol>/fused/<set>/<label>/; `sets` picks sets by name (default: all). A model is
    fused only on the sets of its output scale (its `scale`, 1 for plain fusion; a set's `scale`, 1 by default):
    an x2 super-resolution student is a row of the x2 set only, and a plain fusion model of no super-resolution set.
    """
    import torch

    from distilfuse.bench.measure import machine_info

    chosen = [s for s in protocol.sets if sets is None or s.name in sets]
    unknown = sorted(set(sets or ()) - {s.name for s in protocol.sets})
    if unknown:
        known = ", ".join(s.name for s in protocol.sets)
        raise ProtocolError(f"{protocol.name}: no set(s) {', '.join(unknown)}; its sets: {known}")
    options = ", ".join(f"{k}={v}" for k, v in protocol.options.items()) or "none"
    handling = "min-max stretched" if protocol.stretch else "clipped to [0,1]"
    lines = [
        f"# Evaluation protocol `{protocol.name}`: {protocol.paper}",
        "",
        f"Metrics {', '.join(protocol.metrics)}; profile `{protocol.profile}`, option overrides: {options}"
        + (f"; {', '.join(protocol.unit_scale)} on a 0–1 intensity scale (value / 255)" if protocol.unit_scale else "")
        + (
            "; sources resized bicubically to the output size (fusion + super-resolution)"
            if protocol.upscale_sources
            else ""
        )
        + f". Our models' outputs are {handling}, saved as 8-bit (`distilfuse fuse`); official outputs are"
        " scored as their official test scripts saved them. Rows `paper, …` are the paper's printed numbers"
        " (its own pairs).",
        "",
    ]
    work = out / protocol.name  # protocols differ in output handling: their fused images must not mix
    start = time.perf_counter()
    for pset in chosen:
        part_lists = [part_pairs(part, data, work) for part in pset.parts]
        pairs = [pair for part in part_lists for pair in part]
        if len({stem for stem, _, _ in pairs}) != len(pairs):
            raise ProtocolError(f"{pset.name}: its parts share file stems; pairs would be confused")
        dirs, labels, other_scale = [], [], []
        for label, model in models.items():
            model_scale = int(getattr(model, "scale", 1))
            if model_scale != pset.scale:
                other_scale.append(f"{label} (x{model_scale})")
                continue
            folder = work / "fused" / pset.name / label
            _fuse_all(model, pairs, folder, protocol, device, report)
            dirs.append(folder)
            labels.append(label)
        anchors = {**pset.anchors, **{a: a for a in extra_anchors}}
        missing = []
        for label, method in anchors.items():
            folder = work / "anchors" / pset.name / label
            stems = [{stem for stem, _, _ in part} for part in part_lists]
            if _link_anchor(method, pset.parts, stems, peers, folder):
                dirs.append(folder)
                labels.append(f"{label} (official outputs)")
            else:
                missing.append(label)
        lines += [f"## {pset.name} ({len(pairs)} pairs)", ""]
        lines += [f"Paper: {pset.paper_pairs}. Here: {pset.substitute}."]
        if missing:
            lines += [f"No official outputs of {', '.join(missing)} for these pairs."]
        if other_scale:
            lines += [f"Not fused on this x{pset.scale} set (another output scale): {', '.join(other_scale)}."]
        lines.append("")
        if dirs:
            result = evaluate_folders(
                dirs,
                pairs,
                protocol.metrics,
                labels=labels,
                profile=protocol.profile,
                upscale_sources=protocol.upscale_sources,
                options=protocol.options,
                report=report,
            )
            lines.append(set_table(protocol, pset, result.means, result.counts))
        else:
            lines.append(set_table(protocol, pset, {}, {}))
    info = machine_info(torch.device(device))
    lines.append(
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['torch threads']} torch thread(s), torch {info['torch']}"
        f", device {device}. Wall time (fusing + scoring): {time.perf_counter() - start:.0f} s."
    )
    return "\n".join(lines) + "\n"

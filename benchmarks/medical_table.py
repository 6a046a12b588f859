"""Medical image fusion without retraining (MMDRFuse Table 5): MRI with SPECT or PET, scored with SD SCD VIF
Qabf SSIM CC, beside the paper's numbers, into the "## Medical fusion (MMDRFuse Table 5)" section of
docs/results.md, plus one `distilfuse report` page per dataset.

    OMP_NUM_THREADS=1 python benchmarks/medical_table.py
    python benchmarks/medical_table.py --models mmdr-mini my-model=mlkd-student:runs/mlkd/best.safetensors

Protocol. The functional image (SPECT, PET: colour) is fused on its BT.601 luma with the gray MRI and the
result gets the functional image's Cb/Cr back (`fuse --colour-from`); the fused luma is min-max stretched
(`fuse --stretch`, as MMDRFuse's test script does). Which input slot the functional image takes is a choice:
CDDFuse's test script for medical fusion reads it as the "infrared" image and the MRI as the "visible" one
(MMDRFuse's published numbers follow CDDFuse's metric code); `--functional-as` runs either or both.
Metrics: cdd profile, on the saved images converted to gray (OpenCV weights), without a further stretch;
every metric used here is symmetric in the two sources, so the slot changes only the fusion. Outputs go to
a new folder (default runs/medical-TIME).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from distilfuse.cli.main import main as distilfuse  # noqa: E402

METRICS = ("SD", "SCD", "VIF", "Qabf", "SSIM", "CC")
DATASETS = {"MRI_SPECT": "SPECT", "MRI_PET": "PET"}  # folder -> its functional modality (the other is MRI)
SECTION = "## Medical fusion (MMDRFuse Table 5)"


def data_root() -> Path:
    return Path(os.environ.get("DISTILFUSE_DATA", ROOT.parent / "shared" / "data")).resolve()


def parse_model(spec: str) -> tuple[str, str, Path | None]:
    """'[LABEL=]MODEL[:WEIGHTS]' -> (label, registered model, weights file or None for the shipped ones)."""
    label, _, rest = spec.rpartition("=")
    model, _, weights = rest.partition(":")
    label = label or model
    if not model or re.search(r"[^A-Za-z0-9_.-]", label):
        raise SystemExit(f"--models {spec!r}: write [LABEL=]MODEL[:WEIGHTS], LABEL of letters, digits, _ . -")
    return label, model, Path(weights) if weights else None


def paper_table5(spec_file: Path) -> dict[str, list[str]]:
    """MMDRFuse's Table 5 rows as printed, from shared/spec/paper_results.md ({} if absent)."""
    if not spec_file.is_file():
        return {}
    text = " ".join(spec_file.read_text().split())
    start = text.find("Table 5 (medical")
    if start < 0:
        return {}
    number = r"\d+(?:\.\d+)?"
    found = re.findall(rf"(MRI-SPECT|MRI-PET) ({number}(?: / {number}){{5}})", text[start : start + 400])
    return {name.replace("-", "_"): values.split(" / ") for name, values in found}


def default_model() -> str:
    """The model `distilfuse fuse` uses when none is named (it may change as better defaults are trained)."""
    from distilfuse.cli.main import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices["fuse"].get_default("model")


def shown(path: Path) -> str:
    """A path as the docs show it: relative to the project when it can be."""
    return os.path.relpath(path, ROOT) if path.is_absolute() else str(path)


def run(argv: list[str]) -> None:
    """A distilfuse command; anything but success stops the benchmark."""
    print("+ distilfuse " + shlex.join(argv), flush=True)
    code = distilfuse(argv)
    if code != 0:
        raise SystemExit(f"distilfuse {argv[0]} exited with {code}")


def replace_section(path: Path, section: str) -> None:
    """Put `section` (starting with SECTION) in place of the old one, or append it; other sections are kept."""
    from distilfuse.io.atomic import atomic_write

    text = path.read_text() if path.exists() else "# Results\n\nMeasured results of this project, one section each.\n"
    start = text.find(SECTION + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        following = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + (text[following + 1 :] if following >= 0 else "")
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    shared = data_root().parent
    parser.add_argument(
        "--models",
        nargs="+",
        default=None,
        metavar="[LABEL=]MODEL[:WEIGHTS]",
        help="models to run (default: the default model of 'distilfuse fuse', mmdr-mini with its shipped weights "
        "and the official MMDRFuse student, mmdr-mini with ../shared/weights/mmdrfuse/student.model)",
    )
    parser.add_argument("--functional-as", nargs="+", choices=("ir", "vis"), default=["ir", "vis"])
    parser.add_argument("--datasets", nargs="+", choices=tuple(DATASETS), default=list(DATASETS))
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / time.strftime("medical-%Y%m%d-%H%M%S"))
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "results.md", help="Markdown file to update")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.out.exists():
        raise SystemExit(f"--out {args.out}: already exists; choose a new folder")
    official = f"MMDRFuse-student=mmdr-mini:{shared / 'weights' / 'mmdrfuse' / 'student.model'}"
    specs = args.models or list(dict.fromkeys([default_model(), "mmdr-mini", official]))
    models = [parse_model(spec) for spec in specs]
    paper = paper_table5(shared / "spec" / "paper_results.md")

    import torch

    from distilfuse.bench.measure import machine_info

    started = time.perf_counter()
    rows, pages = [], []
    for dataset in args.datasets:
        functional = DATASETS[dataset]
        folder = data_root() / "medical" / dataset
        mri, func = folder / "MRI", folder / functional
        methods = []
        for label, model, weights in models:
            for slot in args.functional_as:
                fused = args.out / dataset / "fused" / f"{label}_{functional}-as-{slot}"
                sources = (
                    ["--ir", str(func), "--vis", str(mri)] if slot == "ir" else ["--ir", str(mri), "--vis", str(func)]
                )
                extra = ["--weights", str(weights)] if weights else []
                run(
                    [
                        "fuse",
                        *sources,
                        "--out",
                        str(fused),
                        "--model",
                        model,
                        *extra,
                        "--colour-from",
                        slot,
                        "--stretch",
                    ]
                )
                methods.append(fused)
        # Evaluate and report against (functional, MRI) as (first, second) source: the metrics are symmetric.
        scored = args.out / dataset / "eval"
        pair = ["--ir", str(func), "--vis", str(mri)]
        run(["eval", "--methods", *map(str, methods), *pair, "--metrics", ",".join(METRICS), "--out", str(scored)])
        summary = json.loads(scored.with_suffix(".json").read_text())
        page = args.out / dataset / "report"
        title = f"Medical fusion: {dataset.replace('_', '-')} (no retraining)"
        run(
            ["report", "--methods", *map(str, methods), *pair, "--eval-results", str(scored.with_suffix(".json"))]
            + ["--source-names", functional, "MRI", "--title", title, "--out", str(page)]
        )
        pages.append(page / "index.html")
        if dataset in paper:
            rows.append([dataset.replace("_", "-"), "MMDRFuse student (paper, Table 5)", "", "", *paper[dataset]])
        for fused in methods:
            label, slot = fused.name.rsplit("_", 1)
            means = summary["means"][fused.name]
            count = str(summary["images"][fused.name])
            rows.append(
                [dataset.replace("_", "-"), label, slot.split("-as-")[1], count, *(f"{means[m]:.3f}" for m in METRICS)]
            )
    seconds = time.perf_counter() - started

    from distilfuse.metrics import METRICS as ALL_METRICS

    header = ["Dataset", "Method", "Functional image as", "Pairs", *(f"{m} {ALL_METRICS[m].arrow}" for m in METRICS)]
    table = ["| " + " | ".join(header) + " |", "|---|---|---|---:|" + "---:|" * len(METRICS)]
    table += ["| " + " | ".join(row) + " |" for row in rows]
    machine = machine_info(torch.device(args.device))
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    command = shlex.join([f"OMP_NUM_THREADS={threads}", "python", "benchmarks/medical_table.py", *sys.argv[1:]])
    weights_list = ", ".join(
        f"{label} = {model} with {shown(weights) if weights else 'its shipped weights'}"
        for label, model, weights in models
    )
    section = "\n".join(
        [
            SECTION,
            "",
            "MRI fused with a colour functional image (SPECT, PET; `../shared/data/medical`, Harvard Whole Brain "
            "Atlas) by models trained only on infrared-visible data. The functional image is fused on its BT.601 "
            "luma and keeps its Cb/Cr (`distilfuse fuse --colour-from`); the fused luma is min-max stretched "
            '(`--stretch`, as MMDRFuse\'s test script does). "Functional image as": the input slot it takes '
            "(`ir`: as CDDFuse's medical test script reads it, whose metric code, our cdd profile, "
            "MMDRFuse's published numbers follow; `vis`: swapped). "
            "Metrics: `distilfuse eval`, cdd profile, on the saved images converted to gray, no further stretch. "
            f"Models: {weights_list}; the default model of `distilfuse fuse` is {default_model()}.",
            "",
            *table,
            "",
            "The paper's row is Table 5 as printed (`../shared/spec/paper_results.md`); its evaluation protocol is "
            "not published beyond the metric names.",
            "",
            f"- Command: `{command}`",
            f"- Machine: {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']} "
            f"({machine['torch threads']} thread(s), allocator {machine['allocator']}), device {args.device}",
            f"- Wall time: {seconds:.0f} s for fusing, scoring and the report pages of {len(args.datasets)} "
            f"dataset(s) x {len(models)} model(s) x {len(args.functional_as)} slot(s)",
            "- Report pages (not in the repository: they show the data): " + ", ".join(f"`{shown(p)}`" for p in pages),
            "",
        ]
    )
    replace_section(args.results, section)
    print(f"updated {args.results} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()

"""`distilfuse fuse`: fuse an infrared/visible pair, or two folders paired by file stem."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from distilfuse.cli.common import add_model_options, load_model
from distilfuse.cli.main import UserError

EPILOG = """examples:
  distilfuse fuse --ir ir.png --vis vis.jpg --out fused.png
  distilfuse fuse --ir data/ir --vis data/vi --out results/ --stretch
  distilfuse fuse --data ../shared/data/TNO --out results/tno --model mmdr-mini
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "fuse",
        help="fuse infrared and visible images (files or folders)",
        description="Fuse infrared and visible images. Folders are paired by file stem (formats may differ). "
        "A colour visible image (with --colour-from ir: a colour infrared-slot image) is fused on its luma and "
        "keeps its colours; gray inputs give a gray result.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--ir", type=Path, help="infrared image file or folder")
    p.add_argument("--vis", type=Path, help="visible image file or folder")
    p.add_argument(
        "--data",
        type=Path,
        help="dataset root holding the two folders (ir/vi, IR/VIS, infrared/visible, ...)",
    )
    p.add_argument("--out", type=Path, required=True, help="output file (for one pair) or folder")
    add_model_options(p)
    output_range = p.add_mutually_exclusive_group()
    output_range.add_argument(
        "--stretch",
        dest="output_range",
        action="store_const",
        const="stretch",
        help="per-image min-max stretch of the output (what most published test scripts do)",
    )
    output_range.add_argument(
        "--clip",
        dest="output_range",
        action="store_const",
        const="clip",
        help="clip the output to [0,1]. Default: what the weights declare (clip, or stretch for weights trained "
        "on the stretched output)",
    )
    p.add_argument(
        "--tile",
        type=_tile_option,
        default="auto",
        metavar="N",
        help="fuse in N x N tiles (with 32 px of overlap) to bound memory on large images. Default auto: "
        "images over 4096x4096 pixels are fused in 1024-pixel tiles, others whole; 0: never tile",
    )
    p.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        metavar="N",
        help="refuse input images over N pixels, a guard against decompression bombs (default: Pillow's limit, "
        "about 89 megapixels); 0: no limit",
    )
    p.add_argument("--bits", type=int, choices=(8, 16), default=8, help="output bit depth (default 8; 16 is gray only)")
    p.add_argument(
        "--ir-scaling",
        choices=("dtype", "minmax"),
        default="dtype",
        help="how integer infrared values map to [0,1]: by the dtype range (default) or per-image min-max",
    )
    p.add_argument(
        "--colour-from",
        choices=("vis", "ir"),
        default="vis",
        help="the input whose colours the result keeps: its luma is fused and its Cb/Cr put back (default: vis; "
        "ir when the colour image is the --ir input, e.g. PET or SPECT fused with an MRI as --vis)",
    )
    p.set_defaults(func=run)


def _tile_option(text: str) -> int | str | None:
    if text == "auto":
        return "auto"
    if not text.isdigit() or 0 < int(text) < 8:
        raise argparse.ArgumentTypeError(f"{text!r}: use auto, 0 (never tile) or a tile size of 8 or more")
    return int(text) or None


def _jobs(args: argparse.Namespace) -> tuple[list[tuple[str, Path, Path, Path]], list[str], bool]:
    """(stem, ir, vis, out) jobs, problems found while pairing, and whether this is folder mode."""
    from distilfuse.io import IMAGE_SUFFIXES, find_modality_dirs, pair_by_stem

    if args.data is not None:
        if args.ir or args.vis:
            raise UserError("give either --data or --ir/--vis, not both")
        try:
            args.ir, args.vis = find_modality_dirs(args.data)
        except FileNotFoundError as exc:
            raise UserError(str(exc)) from None
    if args.ir is None or args.vis is None:
        raise UserError("give --ir and --vis (files or folders), or --data ROOT")
    for path in (args.ir, args.vis):
        if not path.exists():
            raise UserError(f"{path}: no such file or folder")
    if args.ir.is_dir() != args.vis.is_dir():
        raise UserError(f"--ir {args.ir} and --vis {args.vis} must both be files or both be folders")
    if args.ir.is_file():
        out = args.out if args.out.suffix.lower() in IMAGE_SUFFIXES else args.out / f"{args.ir.stem}.png"
        return [(args.ir.stem, args.ir, args.vis, out)], [], False
    if args.out.suffix.lower() in IMAGE_SUFFIXES:
        raise UserError(f"--out {args.out}: folder inputs need an output folder, not a file name")
    for flag, folder in (("--ir", args.ir), ("--vis", args.vis)):
        if args.out.resolve() == folder.resolve():
            raise UserError(f"--out {args.out} is the {flag} folder; write the results to another folder")
    pairs, problems = pair_by_stem(args.ir, args.vis)
    return [(s, a, b, args.out / f"{s}.png") for s, a, b in pairs], problems, True


def _one_line(exc: Exception, ir_path: Path, vis_path: Path) -> str:
    """The error line of a failed pair; errors that do not name their file get the pair's names."""
    from distilfuse.inference import PairError
    from distilfuse.io import ImageReadError, ImageWriteError

    if isinstance(exc, ImageReadError | ImageWriteError | PairError):
        return str(exc)
    if isinstance(exc, MemoryError):
        detail = "not enough memory (try --tile 512)"
    else:
        detail = f"{type(exc).__name__}: " + (str(exc).strip().splitlines() or [""])[0]
    return f"{ir_path} + {vis_path}: {detail}"


def _prepare_output_folder(folder: Path) -> None:
    """Create the output folder (or a one-line error) and clear partial files of killed earlier runs."""
    from distilfuse.io import describe_os_error, remove_stale_partials

    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder}: is a file, so the output cannot go into it")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{folder}: cannot create the output folder ({describe_os_error(exc, folder)})") from None
    removed = remove_stale_partials(folder)
    if removed:
        print(f"removed {len(removed)} partial file(s) left in {folder} by an interrupted run", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from distilfuse.inference import fuse_file
    from distilfuse.io import DEFAULT_MAX_PIXELS
    from distilfuse.models import output_range_of

    if args.max_pixels is not None and args.max_pixels < 0:
        raise UserError(f"--max-pixels {args.max_pixels}: use 0 (no limit) or a positive number")
    jobs, problems, folder_mode = _jobs(args)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not jobs:
        raise UserError("nothing to fuse" + ("" if problems else f": no pairs in {args.ir} and {args.vis}"))
    model = load_model(args)
    output_range = args.output_range or output_range_of(model)
    _prepare_output_folder(args.out if folder_mode else jobs[0][3].parent)
    failed, start = 0, time.perf_counter()
    for _stem, ir_path, vis_path, out_path in tqdm(jobs, desc="fusing", unit="pair", disable=not folder_mode):
        try:
            fuse_file(
                model,
                ir_path,
                vis_path,
                out_path,
                device=args.device,
                tile=args.tile,
                output_range=output_range,
                ir_scaling=args.ir_scaling,
                colour_from=args.colour_from,
                bits=args.bits,
                max_pixels=DEFAULT_MAX_PIXELS if args.max_pixels is None else args.max_pixels or None,
                progress=not folder_mode,
            )
        except Exception as exc:  # one bad pair must not stop the others; each failure is one line
            failed += 1
            tqdm.write(f"error: {_one_line(exc, ir_path, vis_path)}", file=sys.stderr)
    seconds = time.perf_counter() - start
    fused = len(jobs) - failed
    failed += len(problems)
    where = args.out if folder_mode else jobs[0][3]
    shown = "stretched" if output_range == "stretch" else "clipped"
    print(f"fused {fused}, failed {failed} -> {where} ({seconds:.2f} s, model {args.model}, output {shown})")
    return 1 if failed else 0

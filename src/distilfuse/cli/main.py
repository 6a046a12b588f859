"""Entry point of the `distilfuse` command."""

from __future__ import annotations

import argparse
import importlib
import sys

# Sub-command modules, each exposing register(subparsers); imported at start, their heavy imports are lazy.
COMMANDS = ("fuse", "demo", "models", "eval", "bench", "export", "train", "report")


class UserError(Exception):
    """A problem the user can fix; printed as one line without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    from distilfuse import __version__
    from distilfuse.allocator import allocator_in_use

    parser = argparse.ArgumentParser(
        prog="distilfuse",
        description="Infrared-visible image fusion by knowledge distillation.",
        epilog="Run 'distilfuse COMMAND --help' for the options of a command.",
    )
    parser.add_argument(
        "--version", action="version", version=f"distilfuse {__version__} (allocator: {allocator_in_use()})"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"distilfuse.cli.{name}").register(sub)
    for command_parser in sub.choices.values():
        command_parser.add_argument(
            "--threads",
            type=_thread_count,
            default=None,
            metavar="N",
            help="CPU threads for PyTorch (default: $DISTILFUSE_THREADS, else the cores that other processes "
            "leave idle, at least 1)",
        )
    return parser


def _thread_count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of threads, 1 or more")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    from distilfuse.threads import ThreadsError, apply_threads

    args = build_parser().parse_args(argv)
    try:
        apply_threads(args.threads)
        return int(args.func(args) or 0)
    except (UserError, ThreadsError) as exc:
        print(f"distilfuse {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"distilfuse {args.command}: interrupted", file=sys.stderr)
        return 130


def console() -> None:
    """The installed `distilfuse` command (and `python -m distilfuse`): mimalloc first, then main."""
    from distilfuse.allocator import reexec_with_mimalloc
    from distilfuse.threads import set_passive_wait

    set_passive_wait()  # before torch loads, and inherited by the re-executed process
    reexec_with_mimalloc(sys.argv[1:])
    raise SystemExit(main())


if __name__ == "__main__":
    console()

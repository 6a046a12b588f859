"""`distilfuse models`: the registered models with their sizes and shipped weights."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "models",
        help="list registered models",
        description="List every registered model: role, parameter count, whether weights ship with the package, "
        "and the paper it comes from.",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from distilfuse.models import get_card, list_models

    rows = [("name", "role", "params", "weights", "paper")]
    for name in list_models():
        card = get_card(name)
        rows.append((name, card.role, f"{card.param_count:,}", "shipped" if card.shipped_weights else "-", card.paper))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0

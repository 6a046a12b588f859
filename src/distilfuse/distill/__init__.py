"""Distillers: ``build_distiller(spec, student, teacher)``, ``DISTILLERS``; refresh memory in ``.refresh``."""

from distilfuse.distill import at, correlation, fg, hkd, ic, mlkd, mmdr, sca, select  # noqa: F401  (registers the distillers)
from distilfuse.distill.base import (
    DISTILLERS,
    DistillBatch,
    Distiller,
    build_distiller,
    probe_shapes,
    register_distiller,
)

__all__ = ["DISTILLERS", "DistillBatch", "Distiller", "build_distiller", "probe_shapes", "register_distiller"]

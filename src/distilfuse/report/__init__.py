"""`distilfuse report`: an HTML page with the metric table, figures, training curves and speed of fusion methods."""

from distilfuse.report.build import ReportError, ReportSpec, build_report

__all__ = ["ReportError", "ReportSpec", "build_report"]

"""Efficiency of fusion models: parameters, size, FLOPs/MACs, latency, peak memory (``distilfuse bench``)."""

from distilfuse.bench.measure import (
    FlopCount,
    Latency,
    count_flops,
    machine_info,
    measure_latency,
    measure_peak_memory,
    parameter_count,
    size_kb,
)
from distilfuse.bench.suite import BenchResult, benchmark, fusion_models, markdown_table, parse_size

__all__ = [
    "BenchResult",
    "FlopCount",
    "Latency",
    "benchmark",
    "count_flops",
    "fusion_models",
    "machine_info",
    "markdown_table",
    "measure_latency",
    "measure_peak_memory",
    "parameter_count",
    "parse_size",
    "size_kb",
]

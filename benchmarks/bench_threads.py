"""CPU thread settings under load: torch's default against one thread (and what `distilfuse` picks).

    python benchmarks/bench_threads.py                 # the load the machine has now
    python benchmarks/bench_threads.py --load 2        # plus two busy single-threaded PyTorch processes

Each setting runs in a fresh process (OpenMP reads its environment once) and times two workloads:
`train`, five optimisation steps of mmdr-mini on a batch of 32 patches of 64x64 (the shipped recipe's
shape), and `fuse`, a forward pass of mlkd-student on a 320x240 pair, under mimalloc as the command line
runs. Printed: the median wall-clock seconds per repeat, the machine, torch's version and the load
average before and after.

Settings: `torch default` (one thread per core, OpenMP's own wait policy), `passive wait`
(OMP_WAIT_POLICY=PASSIVE), `1 thread`, and `distilfuse default` (PASSIVE and `default_threads()`,
which the command line uses).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

SETTINGS = {
    "torch default": ({}, None),
    "passive wait": ({"OMP_WAIT_POLICY": "PASSIVE"}, None),
    "1 thread": ({}, 1),
    "distilfuse default": ({"OMP_WAIT_POLICY": "PASSIVE"}, "auto"),
}
# A busy neighbour: single-threaded matrix products, as another PyTorch job would run.
LOAD_CODE = "import torch\ntorch.set_num_threads(1)\na = torch.rand(384, 384)\nwhile True:\n    a = (a @ a).tanh()\n"


def child(workload: str, threads: str, repeats: int) -> None:
    """Runs in the fresh process: set the threads, warm up, time `repeats` runs, print JSON."""
    import torch

    from distilfuse.models import create
    from distilfuse.threads import apply_threads

    count = apply_threads(None) if threads == "auto" else apply_threads(int(threads)) if threads else None
    torch.manual_seed(0)
    if workload == "train":
        model = create("mmdr-mini", weights=None).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        ir, vis = torch.rand(32, 1, 64, 64), torch.rand(32, 1, 64, 64)

        def run() -> None:
            for _ in range(5):
                out = model(ir, vis, raw=True)
                target = torch.maximum(ir, vis)
                loss = (out - target).abs().mean() + (out.diff(dim=-1) - target.diff(dim=-1)).abs().mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    else:
        model = create("mlkd-student", weights=None).eval()
        ir, vis = torch.rand(1, 1, 240, 320), torch.rand(1, 1, 240, 320)

        def run() -> None:
            with torch.inference_mode():
                model(ir, vis)

    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    print(json.dumps({"times": times, "threads": count or torch.get_num_threads()}))


def measure(setting: str, workload: str, repeats: int) -> tuple[float, int]:
    extra, threads = SETTINGS[setting]
    from distilfuse.allocator import find_mimalloc

    env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_") and k != "DISTILFUSE_THREADS"}
    env.update(extra, PYTHONPATH=str(SRC))
    mimalloc = find_mimalloc()
    if mimalloc is not None:
        env["LD_PRELOAD"] = str(mimalloc)
    argv = [sys.executable, __file__, "--child", workload, str(threads or ""), str(repeats)]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return statistics.median(result["times"]), result["threads"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--load", type=int, default=0, help="busy single-threaded PyTorch processes to add")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per setting (median shown)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return

    import torch

    from distilfuse.allocator import find_mimalloc
    from distilfuse.bench.measure import cpu_model_name
    from distilfuse.threads import usable_cores

    print(f"machine: {cpu_model_name()}, {usable_cores()} usable cores, {platform.system()} {platform.release()}")
    allocator = "mimalloc" if find_mimalloc() is not None else "system"
    print(f"torch {torch.__version__}, python {platform.python_version()}, allocator {allocator}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; added load: {args.load} process(es)")
    load = [subprocess.Popen([sys.executable, "-c", LOAD_CODE]) for _ in range(args.load)]
    try:
        time.sleep(2 if load else 0)
        print("\n| workload | setting | threads | median s |")
        print("|---|---|---:|---:|")
        for workload in ("train", "fuse"):
            for setting in SETTINGS:
                median, threads = measure(setting, workload, args.repeats)
                print(f"| {workload} | {setting} | {threads} | {median:.3f} |", flush=True)
    finally:
        for process in load:
            process.kill()
            process.wait()
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

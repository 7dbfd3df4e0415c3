"""What a CPU's cores buy the orchard-tiny recipes: threads in one process against data-parallel
processes (torchrun, gloo), in seconds per training step, side by side in one run.

    OMP_NUM_THREADS=1 samgap bench parallel              # both models, 2 cores
    samgap bench parallel --models sam2 --cores 4 --steps 60 --out parallel.json

Each setting trains the recipe through ``samgap train`` in a fresh subprocess and reads the
time per step from the run's own log (`samgap_lib.studies.parallel.recipe_step_seconds`). The
settings alternate (one thread, all threads, all processes, and again) so that a neighbour's
load on a shared machine falls on each alike; the median of the repeats is reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys


def main(argv: list[str] | None = None) -> int:
    from ..io import write_json
    from ..provenance import environment
    from ..studies.parallel import recipe_step_seconds

    p = argparse.ArgumentParser(description="samgap: threads against processes per recipe step")
    p.add_argument("--models", nargs="*", default=["sam2", "sam3"], choices=["sam2", "sam3"])
    p.add_argument("--cores", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--steps", type=int, default=40, help="steps per run, the first --skip untimed")
    p.add_argument("--skip", type=int, default=10)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", help="also write the rows as JSON")
    args = p.parse_args(argv)

    settings = [(1, 1), (1, args.cores), (args.cores, 1)]  # (processes, threads)
    rows = []
    for model in args.models:
        times: dict[tuple[int, int], list[float]] = {s: [] for s in settings}
        for _ in range(args.repeats):
            for procs, threads in settings:
                r = recipe_step_seconds(model, procs, threads, args.steps, args.skip)
                times[(procs, threads)].append(r["s_per_step"])
        base = statistics.median(times[(1, 1)])
        for (procs, threads), ts in times.items():
            med = statistics.median(ts)
            rows.append(
                {
                    "model": model,
                    "processes": procs,
                    "threads": threads,
                    "s_per_step": med,
                    "speedup_vs_one_thread": base / med,
                    "repeats": ts,
                }
            )
            print(
                f"{model:5} {procs} process(es) x {threads} thread(s): {med:.3f} s/step "
                f"({base / med:.2f}x one thread)",
                flush=True,
            )
        if args.out:
            write_json(
                {"rows": rows, "args": vars(args), "environment": environment("cpu")},
                args.out,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

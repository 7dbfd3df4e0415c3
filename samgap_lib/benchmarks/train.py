"""Training speed and peak memory by freezing option (SAM2 and SAM3).

    samgap bench train                      # tiny models on CPU (what CI can run)
    samgap bench train --out bench_train.json
    samgap bench train --device cuda --sam2-arch hiera_t hiera_l --sam3-arch sam3 --batch 1

On CPU the memory is the peak resident set size of a fresh process per configuration; on CUDA
the peak allocated memory. The GPU variants build random-init models of the released sizes
(hiera_t / hiera_l at 1024 px, SAM3 at 1008 px): no download, same code path as training.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    from ..io import write_json
    from ..provenance import environment
    from ..studies.train_bench import ARCHS, OPTIONS, run_isolated

    p = argparse.ArgumentParser(description="samgap training benchmark")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--sam2-arch", nargs="*", default=["orchard-m"], choices=list(ARCHS["sam2"]))
    p.add_argument("--sam3-arch", nargs="*", default=["orchard-s"], choices=list(ARCHS["sam3"]))
    p.add_argument("--steps", type=int, default=4, help="timed steps per configuration")
    p.add_argument("--batch", type=int, default=4, help="images per step")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    p.add_argument("--options", nargs="*", help="only these option names")
    p.add_argument("--out", help="also write the rows as JSON")
    args = p.parse_args(argv)

    rows = []
    env = environment(args.device)
    for kind, archs in (("sam2", args.sam2_arch), ("sam3", args.sam3_arch)):
        for arch in archs:
            for option in OPTIONS[kind]:
                if args.options and option not in args.options:
                    continue
                r = run_isolated(
                    kind, arch, option, args.device, args.steps, args.batch, args.threads
                )
                r.update(model=kind, arch=arch, option=option)
                rows.append(r)
                if args.out:  # after every row: a run cut short keeps what it measured
                    write_json(
                        {"rows": rows, "args": vars(args), "environment": env}, args.out, indent=2
                    )
                if "error" in r:
                    print(f"{kind:5} {arch:10} {option:24} ERROR {r['error']}", flush=True)
                else:
                    print(
                        f"{kind:5} {arch:10} {option:24} {r['steps_per_s']:7.2f} steps/s "
                        f"{r['peak_mem_mb']:9.0f} MB peak {r['activations_mb']:8.1f} MB activations "
                        f"{r['trainable_params']:>10,d} trainable",
                        flush=True,
                    )
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

"""What a chapter studies beyond the gap's core, each on top of the library's layers.

- Chapter 2: `architecture` (parameters per component, per-stage latency) and `diagram` (which
  module exists in which model, which prompt reaches which module, the presence head).
- The miniature's appendix and chapter 4: `seed_spread` (the orchard-tiny recipes with other
  seeds, longer, and changed), `token_only` (SAM2 prompted through its tokens alone),
  `train_bench` (training speed and memory by freezing option; the CUDA record) and `parallel`
  (what two CPU cores buy a training step).
- Chapter 5: `perturb` (controlled errors and what each metric sees of them) and `simulate`
  (simulated click curves).

Runs too long for a page are recorded as data under ``samgap_lib/results/`` with their
provenance (`samgap_lib.io.recorded_result`).
"""

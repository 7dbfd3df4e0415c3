"""What a chapter studies beyond the gap's core, each on top of the library's layers.

- Chapter 2: `architecture` (parameters per component, per-stage latency) and `diagram` (which
  module exists in which model, which prompt reaches which module, the presence head).
- The appendix on the miniature: `seed_spread` (the orchard-tiny recipes with other seeds,
  longer, and changed), `token_only` (SAM2 prompted through its tokens alone) and `video_seeds`
  (the SAM2 memory path fine-tuned on clips with two seeds).
- Chapter 4: `train_bench` (training speed and memory by freezing option; the CUDA record).
- Chapter 5: `perturb` (controlled errors and what each metric sees of them) and `simulate`
  (simulated click curves).
- The appendix on the seed paper's claims: `claims` (each claim, its metric and the verdict the
  numbers give) and `zero_shot` (orchard-tiny SAM3 asked phrasings it was never trained on).
- `samgap bench parallel`: `parallel` (what two CPU cores buy a training step).

Runs too long for a page are recorded as data under ``samgap_lib/results/`` with their
provenance (`samgap_lib.io.recorded_result`).
"""

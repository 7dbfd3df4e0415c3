"""Benchmarks, run as ``samgap bench NAME`` (each module's ``main(argv)``):

- ``metrics``: the metrics against their reference implementations, speed and agreement;
- ``models``: the role objects' latency (SAM2 boxes and clicks, SAM3 phrases batched or one by one);
- ``train``: training speed and memory by freezing option (`samgap_lib.studies.train_bench`);
- ``parallel``: what two CPU cores buy an orchard-tiny step (`samgap_lib.studies.parallel`);
- ``gpu``: the paper profile's code paths on CUDA with released-size models (`gpu_check`).

Speed targets live here, not in timed tests: timings on shared cores are noisy.
"""

BENCHMARKS = {
    "metrics": "samgap_lib.benchmarks.metrics",
    "models": "samgap_lib.benchmarks.models",
    "train": "samgap_lib.benchmarks.train",
    "parallel": "samgap_lib.benchmarks.parallel",
    "gpu": "samgap_lib.benchmarks.gpu_check",
}

__all__ = ["BENCHMARKS"]

"""Measurement of MSVMamba models (torch only; configs need mmengine): FLOP counts in the official convention
(:mod:`.flops`), throughput and memory with the official protocol (:mod:`.benchmark`), op-level scan timings
(:mod:`.scan_bench`), plots (:mod:`.plots`), the models measured (:mod:`.models`), the published figures they are
compared with (:mod:`.published`, from ``metafile.yml``, package data) and the GPU report (:mod:`.gpu_report`). The
tools in ``tools/`` are command lines over these modules."""

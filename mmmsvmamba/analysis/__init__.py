"""Measurement of MSVMamba models (torch only; configs need mmengine): FLOP counts in the official convention
(:mod:`.flops`), throughput and memory with the official protocol (:mod:`.benchmark`), op-level scan timings
(:mod:`.scan_bench`), plots (:mod:`.plots`), and the models measured (:mod:`.models`). The tools in ``tools/`` are
command lines over these modules."""

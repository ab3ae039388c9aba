"""hilt's reference suites: boot, NVLink, topology, device tree, NVML, NCCL, DDP, NVLink-C2C, coherent memory and
the multi-node NVLink domain.

Run them as ``pytest --pyargs hilt.suites --rig NAME`` or ``hilt run``; a team's own suite repository can
include any of them with ``from hilt.suites.test_nvlink import *`` (docs/suites.md).
"""

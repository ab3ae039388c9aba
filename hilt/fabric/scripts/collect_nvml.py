#!/usr/bin/env python3
"""Collect the GPU fabric's state through NVML and print one JSON document (runs ON the node).

Self-contained on purpose: it is piped to the node's own python and needs only pynvml (nvidia-ml-py).
On NVML failure it prints {"error": ...} and exits 1, so the caller can tell "no GPU driver" from "bad link".
"""

import json
import sys


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def _maybe(fn, *args):
    """NVML raises NotSupported on parts that lack a feature; that is data (None), not a failure."""
    import pynvml  # NVIDIA's bindings exist on GPU nodes only; this script runs there, hilt never imports it

    try:
        return fn(*args)
    except pynvml.NVMLError:
        return None


def _links(pynvml, handle):
    links = []
    counters = {
        "replay": pynvml.NVML_NVLINK_ERROR_DL_REPLAY,
        "recovery": pynvml.NVML_NVLINK_ERROR_DL_RECOVERY,
        "crc_flit": pynvml.NVML_NVLINK_ERROR_DL_CRC_FLIT,
        "crc_data": pynvml.NVML_NVLINK_ERROR_DL_CRC_DATA,
    }
    for link in range(pynvml.NVML_NVLINK_MAX_LINKS):
        try:
            state = pynvml.nvmlDeviceGetNvLinkState(handle, link)
        except pynvml.NVMLError:
            continue  # link does not exist on this part
        remote = _maybe(pynvml.nvmlDeviceGetNvLinkRemotePciInfo, handle, link) if state else None
        links.append(
            {
                "index": link,
                "active": bool(state),
                "remote_pci_bus_id": _text(remote.busId) if remote is not None else None,
                "errors": {
                    name: _maybe(pynvml.nvmlDeviceGetNvLinkErrorCounter, handle, link, counter)
                    for name, counter in counters.items()
                },
            }
        )
    return links


def _ecc(pynvml, handle):
    def count(kind, counter):
        return _maybe(pynvml.nvmlDeviceGetTotalEccErrors, handle, kind, counter)

    corrected, uncorrected = (
        pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED,
        pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
    )
    return {
        "volatile": {
            "corrected": count(corrected, pynvml.NVML_VOLATILE_ECC),
            "uncorrected": count(uncorrected, pynvml.NVML_VOLATILE_ECC),
        },
        "aggregate": {
            "corrected": count(corrected, pynvml.NVML_AGGREGATE_ECC),
            "uncorrected": count(uncorrected, pynvml.NVML_AGGREGATE_ECC),
        },
    }


def collect():
    import pynvml  # on the node only (see _maybe)

    pynvml.nvmlInit()
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        report = {
            "driver": driver,
            "nvml_version": _text(_maybe(pynvml.nvmlSystemGetNVMLVersion)),
            "gpus": [],
        }
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            remap = _maybe(pynvml.nvmlDeviceGetRemappedRows, handle)
            report["gpus"].append(
                {
                    "index": index,
                    "name": _text(pynvml.nvmlDeviceGetName(handle)),
                    "uuid": _text(pynvml.nvmlDeviceGetUUID(handle)),
                    "pci_bus_id": _text(pynvml.nvmlDeviceGetPciInfo(handle).busId),
                    "driver": driver,
                    "vbios": _text(_maybe(pynvml.nvmlDeviceGetVbiosVersion, handle)),
                    "inforom": _text(_maybe(pynvml.nvmlDeviceGetInforomImageVersion, handle)),
                    "nvlinks": _links(pynvml, handle),
                    "ecc": _ecc(pynvml, handle),
                    "row_remap": None
                    if remap is None
                    else {
                        "corrected_rows": remap[0],
                        "uncorrectable_rows": remap[1],
                        "pending": bool(remap[2]),
                        "failure": bool(remap[3]),
                    },
                }
            )
        return report
    finally:
        pynvml.nvmlShutdown()


def main():
    try:
        report = collect()
    except Exception as exc:  # ImportError, NVMLError_LibraryNotFound, DriverNotLoaded, ...
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run sushy-emulator with its fake driver's power delay shortened.

sushy's fake driver applies a power change ``random.randint(1, 11)`` seconds after the request (and only on
a later read). Real BMCs take seconds too, but a test suite cannot wait 11 s per boot; we replace the
module's ``random`` with one whose ``randint`` returns ``SUSHY_FAST_POWER_DELAY_S`` (default 1), and teach the
fake driver UEFI HTTP boot (``_uefi_http_boot``), firmware versions (``_firmware_versions``) and serial numbers
(``_serial_numbers``); then call sushy's own ``main``.
Usage: ``python -m hilt.sim.sushy_fast --config FILE``.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any


class _FixedDelay:
    def __init__(self, delay_s: float):
        # fakedriver computes int(time.time()) + randint(...); round up so the delay is at least delay_s.
        self._delay = max(0, math.ceil(delay_s))

    def randint(self, a: int, b: int) -> int:
        return self._delay


def _uefi_http_boot(sushy_main: Any, fakedriver: Any) -> None:
    """UEFI HTTP boot as firmware does it: the override reads back ``UefiHttp`` with its ``HttpBootUri``.

    sushy's PATCH handler turns ``UefiHttp`` + ``HttpBootUri`` into a virtual CD boot (it downloads the image and
    reports ``Cd``) and keeps one URI for all systems; the fake driver stores none. The simulated rack serves
    several systems from one emulator, so the URI is kept per system, and the rack's daemon boots it.
    """
    import flask  # the sim extra, as in main()

    fakedriver.FakeDriver.get_http_boot_uri = lambda self, identity: self._get(identity).get("http_boot_uri")
    app = sushy_main.app
    original = app.view_functions["system_resource"]

    def system_resource(identity: str) -> Any:
        boot = {}
        if flask.request.method == "PATCH":
            boot = (flask.request.get_json(silent=True) or {}).get("Boot") or {}
        if boot.get("BootSourceOverrideTarget") == "UefiHttp" and boot.get("HttpBootUri"):
            systems = app.systems
            if boot.get("BootSourceOverrideMode"):
                systems.set_boot_mode(identity, boot["BootSourceOverrideMode"])
            if systems.get_boot_mode(identity) != "UEFI":
                return flask.Response("UefiHttp needs BootSourceOverrideMode UEFI", status=400)
            systems._update(identity, http_boot_uri=boot["HttpBootUri"])
            systems.set_boot_device(identity, "UefiHttp")
            return flask.Response("", status=204)
        return original(identity)

    app.view_functions["system_resource"] = system_resource


def _firmware_versions(fakedriver: Any) -> None:
    """The fake driver reports a system's firmware versions (Redfish ``BiosVersion``) from its ``versions``.

    sushy's fake driver has no versions (the System then shows no BiosVersion); its libvirt driver keeps them
    per domain. The simulated rack declares each system's BIOS version in its fake-system entry, as it does
    ``secure_boot`` (which the fake driver already serves as the SecureBoot resource).
    """
    fakedriver.FakeDriver.get_versions = lambda self, identity: dict(self._get(identity).get("versions") or {})


def _serial_numbers(sushy_main: Any) -> None:
    """A System's ``SerialNumber`` from its fake-system entry's ``serial_number`` (sushy's template has none).

    Real BMCs report the board serial there; the RISC-V rack's boards carry the same serial in their device
    tree, so provisioning can prove identity on hosts without DMI.
    """
    import flask  # the sim extra, as in main()

    app = sushy_main.app
    original = app.view_functions["system_resource"]

    def system_resource(identity: str) -> Any:
        response = original(identity)
        if flask.request.method != "GET" or not isinstance(response, flask.Response) or response.status_code != 200:
            return response
        serial = app.systems._get(identity).get("serial_number") if hasattr(app.systems, "_get") else None
        if serial:
            body = json.loads(response.get_data())
            body["SerialNumber"] = serial
            response.set_data(json.dumps(body))
        return response

    app.view_functions["system_resource"] = system_resource


def main() -> int:
    # the sim extra (sushy-tools, which brings flask): present in the emulator's process, which runs this module
    from sushy_tools.emulator import main as sushy_main
    from sushy_tools.emulator.resources.systems import fakedriver

    fakedriver.random = _FixedDelay(float(os.environ.get("SUSHY_FAST_POWER_DELAY_S", "1")))
    _uefi_http_boot(sushy_main, fakedriver)
    _firmware_versions(fakedriver)
    _serial_numbers(sushy_main)
    return sushy_main.main() or 0


if __name__ == "__main__":
    sys.exit(main())

"""Run sushy-emulator with its fake driver's power delay shortened.

sushy's fake driver applies a power change ``random.randint(1, 11)`` seconds after the request (and only on
a later read). Real BMCs take seconds too, but a test suite cannot wait 11 s per boot; we replace the
module's ``random`` with one whose ``randint`` returns ``SUSHY_FAST_POWER_DELAY_S`` (default 1), then call
sushy's own ``main``. Usage: ``python -m hilt.sim.sushy_fast --config FILE``.
"""

from __future__ import annotations

import math
import os
import sys


class _FixedDelay:
    def __init__(self, delay_s: float):
        # fakedriver computes int(time.time()) + randint(...); round up so the delay is at least delay_s.
        self._delay = max(0, math.ceil(delay_s))

    def randint(self, a: int, b: int) -> int:
        return self._delay


def main() -> int:
    from sushy_tools.emulator import main as sushy_main
    from sushy_tools.emulator.resources.systems import fakedriver

    fakedriver.random = _FixedDelay(float(os.environ.get("SUSHY_FAST_POWER_DELAY_S", "1")))
    return sushy_main.main() or 0


if __name__ == "__main__":
    sys.exit(main())

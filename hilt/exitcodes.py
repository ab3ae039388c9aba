"""Exit codes of a hilt run, documented in docs/ci.md. CI scripts branch on them, so they never change.

pytest's own codes keep their meaning (2 interrupted, 3 internal error, 4 usage, 5 no tests); hilt adds
INCONCLUSIVE, for a run whose infrastructure failed or whose gate could not decide.
"""

from enum import IntEnum


class ExitCode(IntEnum):
    PASS = 0
    FAILED = 1  # a product failure or a performance regression: do not ship
    INTERRUPTED = 2
    INTERNAL_ERROR = 3
    USAGE_ERROR = 4  # bad rigs.yaml, profile, baseline file or option
    NO_TESTS = 5
    INCONCLUSIVE = 6  # infrastructure errors (BMC, boot, SSH, lease) or a gate that could not decide

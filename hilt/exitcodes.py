"""Exit codes of a hilt run, documented in docs/ci.md. CI scripts branch on them, so they never change.

pytest's own codes keep their meaning (2 interrupted, 3 internal error, 4 usage, 5 no tests); hilt adds
INCONCLUSIVE, for a run whose infrastructure failed or whose gate could not decide.
"""

from enum import IntEnum

from hilt.errors import ConfigError, HiltError, ParseError


class ExitCode(IntEnum):
    PASS = 0
    FAILED = 1  # a product failure or a performance regression: do not ship
    INTERRUPTED = 2
    INTERNAL_ERROR = 3
    USAGE_ERROR = 4  # bad rigs.yaml, profile, baseline file or option
    NO_TESTS = 5
    INCONCLUSIVE = 6  # infrastructure errors (BMC, boot, SSH, lease) or a gate that could not decide


def exit_code_for(exc: BaseException) -> ExitCode:
    """The one exit code of an error, whichever sub-command met it (the table in docs/ci.md).

    Bad input (rigs.yaml, a profile, a baseline or summary file, an option, an unknown name) is a usage error;
    a rig, BMC, node or lease store that failed is inconclusive; any other error hilt raised on purpose is
    inconclusive too (the run could not decide), and an unexpected exception is an internal error.
    """
    if isinstance(exc, ConfigError | ParseError):
        return ExitCode.USAGE_ERROR
    if isinstance(exc, HiltError):
        return ExitCode.INCONCLUSIVE
    return ExitCode.INTERNAL_ERROR

"""The release gate: metrics judged against baselines, with statistics that say when they cannot decide yet."""

from hilt.gate.canary import judge_against_control
from hilt.gate.judge import Baseline, Verdict, judge

__all__ = ["Baseline", "Verdict", "judge", "judge_against_control"]

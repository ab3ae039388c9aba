"""The gate run's pytest command line, shared by `hilt run` and each rollout wave (hilt/pytestplugin/command.py)."""

from __future__ import annotations

from hilt.pytestplugin.command import gate_run_args


def test_a_gate_run_asks_for_a_rig_session_decides_the_gate_and_runs_a_worker_per_node():
    args = gate_run_args(suites=None, rigs_file="rigs.yaml", reports="reports", rig="lab", image="good",
                         extra=["-k", "nccl"])
    assert args == ["--pyargs", "hilt.suites", "-o", "hilt_rig_suites=true", "--rigs-file", "rigs.yaml",
                    "--hilt-reports", "reports", "-p", "no:cacheprovider", "--gate", "--rig", "lab", "--image", "good",
                    "-k", "nccl", "-n", "1", "--workers-from-lease"]


def test_the_callers_own_xdist_setting_wins():
    for extra in (["-n", "0"], ["-n4"], ["--numprocesses=2"], ["-p", "no:xdist"]):
        args = gate_run_args(suites="suites/test_nccl.py::test_x", rigs_file="r.yaml", reports="out", no_boot=True,
                             extra=extra)
        assert args[0] == "suites/test_nccl.py::test_x" and "--no-boot" in args
        assert "--workers-from-lease" not in args and args[-len(extra):] == extra

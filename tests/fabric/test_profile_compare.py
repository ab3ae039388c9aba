import pytest

from hilt.errors import ConfigError
from hilt.fabric.compare import check_error_delta, compare_inventory, compare_nvlink, compare_topology
from hilt.fabric.nvlink import parse_nvlink_errors, parse_nvlink_status
from hilt.fabric.procinfo import parse_gpu_information
from hilt.fabric.topo import parse_topology
from hilt.profiles.model import known_profiles, load_profile


def test_all_shipped_profiles_load():
    names = known_profiles()
    for required in (
        "hgx-h100-8gpu",
        "dgx-a100-8gpu",
        "dgx1-v100-8gpu",
        "gh200-4gpu",
        "hgx-h200-8gpu",
        "sim-4gpu",
        "sim-riscv-nvlink",
        "gh200-1gpu",
        "gb200-nvl-tray-4gpu",
        "gb300-nvl-tray-4gpu",
    ):
        assert required in names
    for name in names:
        assert load_profile(name).gpu_count >= 1


@pytest.mark.parametrize(
    ("profile", "capture"),
    [
        ("hgx-h100-8gpu", "topo/h100-8gpu-nv18-8nic-pix-sglang-check-env.txt"),
        ("dgx-a100-8gpu", "topo/dgx-a100-8gpu-nv12-10nic-gpu-numa-id.txt"),
        ("dgx1-v100-8gpu", "topo/dgx1-v100-8gpu-hybrid-cube-mesh-nv1-nv2-mlx5.txt"),
        ("gh200-4gpu", "topo/gh200-4gpu-nv6-multi-numa-affinity-gpu-numa-id.txt"),
        ("gb200-nvl-tray-4gpu", "c2c_mnnvl/gb200-4gpu-nvidia-smi-topo-m-nv18-8nic-numa-affinity-lists-gpu-numa-id-"
                                "2-10-18-26.txt"),
    ],
)
def test_real_captures_match_their_profiles(corpus, profile, capture):
    assert compare_topology(load_profile(profile), parse_topology(corpus(capture))) == []


def test_wrong_platform_reports_each_pair(corpus):
    diffs = compare_topology(
        load_profile("hgx-h100-8gpu"), parse_topology(corpus("topo/dgx-a100-8gpu-nv12-10nic-gpu-numa-id.txt"))
    )
    assert "GPU3-GPU5: expected NV18, found NV12" in diffs and len(diffs) == 28


def test_dgx1_swapped_cell_is_named(corpus):
    text = corpus("topo/dgx1-v100-8gpu-hybrid-cube-mesh-nv1-nv2-mlx5.txt")
    lines = text.splitlines()
    lines[1] = lines[1].replace("NV2     NV2     SYS", "NV2     SYS     SYS", 1)  # GPU0-GPU4 lost
    lines[5] = lines[5].replace("GPU4    NV2", "GPU4    SYS", 1)
    diffs = compare_topology(load_profile("dgx1-v100-8gpu"), parse_topology("\n".join(lines)))
    assert diffs == ["GPU0-GPU4: expected NV2, found SYS"]


def test_nvlink_inactive_link_and_slow_link():
    p = load_profile("sim-4gpu")
    speed = {(2, 3): "<inactive>", (1, 0): "25.781 GB/s"}
    gpus = "".join(
        f"GPU {i}: NVIDIA H100 80GB HBM3\n"
        + "".join(f"\t Link {k}: {speed.get((i, k), '26.562 GB/s')}\n" for k in range(4))
        for i in range(4)
    )
    assert compare_nvlink(p, parse_nvlink_status(gpus)) == [
        "GPU1 link 0: 25.781 GB/s, below the minimum 26.562 GB/s",
        "GPU2 link 3 inactive (expected 4 active)",
    ]


def test_by_design_inactive_links_are_not_reported(corpus, tmp_path):
    path = tmp_path / "h100-pcie-pair.yaml"
    path.write_text(
        "gpu_count: 2\ntopology: {default_link: NV12}\n"
        "nvlink: {active_links_per_gpu: 12, inactive_links: [4, 5, 10, 11, 16, 17]}\n"
    )
    status = parse_nvlink_status(corpus("nvlink/h100-pcie-x2-nvlink-s-18links-6-inactive.txt"))
    assert compare_nvlink(load_profile(str(path)), status) == []


def test_inventory_driver_and_model(corpus):
    info = parse_gpu_information(corpus("proc/proc-driver-nvidia-gpus-information-h100-hbm3-gpu-firmware.txt"))
    diffs = compare_inventory(load_profile("sim-4gpu"), driver="535.129.03", gpus=[info])
    assert diffs == [
        "driver: expected 550.54.15, found 535.129.03",
        "GPU count: expected 4, found 1 in /proc/driver/nvidia/gpus",
    ]


def test_error_delta_recovery_and_crc_threshold():
    def errors(recovery, crc):
        return parse_nvlink_errors(
            f"GPU 0: X\n\t Link 2: Replay Errors: 9\n\t Link 2: Recovery Errors: {recovery}\n"
            f"\t Link 2: CRC Errors: {crc}\n"
        )

    assert check_error_delta(errors(0, 5), errors(0, 105)) == []
    assert check_error_delta(errors(1, 5), errors(2, 106)) == [
        "GPU0 link 2: 1 recovery errors during the run",
        "GPU0 link 2: 101 CRC errors during the run (threshold 100)",
    ]


def test_unknown_profile_lists_known():
    with pytest.raises(ConfigError, match="known profiles are .*hgx-h100-8gpu"):
        load_profile("hgx-b300-nonexistent")


@pytest.mark.parametrize(
    ("yaml_text", "needle"),
    [
        ("gpu_count: 0\ntopology: {default_link: NV4}\nnvlink: {active_links_per_gpu: 4}\n", "gpu_count"),
        ("gpu_count: 2\ntopology: {default_link: NV4}\nnvlink: {active_links_per_gpu: 4}\nlinks: 3\n", "links"),
        ("gpu_count: 2\ntopology: {default_link: NVX}\nnvlink: {active_links_per_gpu: 4}\n", "topology.default_link"),
        ("gpu_count: 3\ntopology: {pairs: {GPU0-GPU1: NV1}}\nnvlink: {active_links_per_gpu: 1}\n", "GPU0-GPU2"),
        ("gpu_count: 2\ntopology: {default_link: NV4}\n", "nvlink"),
        ("gpu_count: [\n", "not valid YAML"),
    ],
)
def test_bad_profile_names_file_and_field(tmp_path, yaml_text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as err:
        load_profile(str(path))
    assert str(path) in str(err.value) and needle in str(err.value)

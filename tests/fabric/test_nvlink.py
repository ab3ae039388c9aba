import pytest

from hilt.errors import ParseError as ErrorsParseError
from hilt.fabric import ParseError
from hilt.fabric.nvlink import (
    parse_nvlink_capabilities,
    parse_nvlink_errors,
    parse_nvlink_status,
    parse_nvlink_throughput,
)


def test_parse_error_is_the_shared_type():
    assert ParseError is ErrorsParseError


def test_h100_pcie_18_links_six_inactive(corpus):
    s = parse_nvlink_status(corpus("nvlink/h100-pcie-x2-nvlink-s-18links-6-inactive.txt"))
    assert [g.index for g in s] == [0, 1]
    assert s[0].name == "NVIDIA H100 PCIe" and s[0].uuid == "GPU-6968dfc2-d444-d92c-c36b-6abe53445cb9"
    assert len(s[1].links) == 18
    assert [lk.index for lk in s[1].links if not lk.active] == [4, 5, 10, 11, 16, 17]
    assert s[0].links[3].speed_gbps == 26.562 and s[0].links[4].speed_gbps is None


def test_h800_status_with_elided_gpus(corpus):
    s = parse_nvlink_status(corpus("nvlink/h800x8-nvlink-status-elided.txt"))
    assert [g.index for g in s] == [0, 1, 7]
    assert all(lk.active and lk.speed_gbps == 26.562 for g in s for lk in g.links)
    assert s[2].uuid == "GPU-474d838c-171f-d249-4f45-bbc01a8eb74a" and len(s[2].links) == 8


def test_status_variants_tab_indent_no_uuid_speeds_blank_lines():
    text = (
        "GPU 0: Tesla V100-SXM2-16GB\n\t Link 0: 25.781 GB/s\n\n\tLink 1: <inactive>\n...\n"
        "GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-1)\n    Link 0: 25 GB/s\n"
    )
    s = parse_nvlink_status(text)
    assert s[0].uuid is None and s[0].name == "Tesla V100-SXM2-16GB"
    assert s[0].links[0].speed_gbps == 25.781 and not s[0].link(1).active
    assert s[1].uuid == "GPU-1" and s[1].links[0].speed_gbps == 25.0


def test_error_counters_with_blank_lines_and_elision(corpus):
    e = parse_nvlink_errors(corpus("nvlink/h100-nvlink-e-error-counters-elided-anonymized-uuid.txt"))
    assert len(e) == 1 and e[0].uuid == "GPU-abcdefab-cdef-abdc-abcd-abababababab"
    assert [lk.index for lk in e[0].links] == [0, 1, 17]
    assert e[0].link(17).counters == {"replay": 0, "recovery": 0, "crc_flit": 0}


def test_error_counters_flit_and_data_names():
    text = (
        "GPU 0: Tesla V100-SXM2-32GB (UUID: GPU-x)\n"
        "\t Link 2: Replay Errors: 7\n\t Link 2: Recovery Errors: 1\n"
        "\t Link 2: CRC FLIT Errors: 40\n\t Link 2: CRC Data Errors: 3\n"
    )
    lk = parse_nvlink_errors(text)[0].link(2)
    assert (lk.replay, lk.recovery, lk.crc) == (7, 1, 43)


def test_capabilities_elided(corpus):
    c = parse_nvlink_capabilities(corpus("nvlink/h800x8-nvlink-capabilities-elided.txt"))
    assert c[0].index == 0 and c[-1].index == 7
    assert c[0].links[7]["P2P is supported"] is True and c[0].links[7]["Link is supported"] is False


def test_throughput_counters(corpus):
    t = parse_nvlink_throughput(corpus("nvlink/h800-gpu0-nvlink-gt-d-data-tx-rx-idle-and-training.txt"))
    assert t[0].links[0] == {"tx": 1390774681, "rx": 1387831436}


@pytest.mark.parametrize(
    ("parse", "text", "line_no"),
    [
        (parse_nvlink_status, "No devices were found\n", 1),
        (parse_nvlink_status, "GPU 0: X (UUID: GPU-1)\n\t Link 0: 26.562 GB/s\n\t Link 1: fast\n", 3),
        (parse_nvlink_errors, "GPU 0: X\n\t Link 0: 26.562 GB/s\n", 2),
        (parse_nvlink_capabilities, "GPU 0: X\n\t Link 0: Replay Errors: 0\n", 2),
        (parse_nvlink_status, "", 1),
    ],
)
def test_unparseable_raises_with_line(parse, text, line_no):
    with pytest.raises(ParseError) as err:
        parse(text)
    assert err.value.line_no == line_no

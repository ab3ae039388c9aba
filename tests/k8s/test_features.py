"""hilt's NFD feature file obeys NFD's rules: what hilt writes is what the cluster gets, and nothing the reader
would drop is ever written. The reader follows NFD's local source and nfd-master (source/local/local.go: 64 kB
limit, dot-files, ``# +expiry-time``, ``name[=value]``; the default and denied namespaces)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hilt.errors import ConfigError
from hilt.k8s.features import MAX_FILE_BYTES, read_feature_file, render_feature_file

NOW = datetime(2026, 3, 1, 2, 0, 0, tzinfo=UTC)
LABELS = {"hilt.gate": "pass", "nvlink.groups": "2", "hilt.run": "20260301T020000-abc123"}


def test_written_file_reads_back_as_the_labels_in_the_default_namespace_until_it_expires():
    text = render_feature_file(LABELS, NOW + timedelta(hours=24), comment="hilt: run r1\nsecond line")
    lines = text.splitlines()
    assert lines[:2] == ["# hilt: run r1", "# second line"]
    assert lines[2] == "# +expiry-time=2026-03-02T02:00:00Z"  # before every label: it applies to the lines after
    read = read_feature_file("hilt", text.encode(), NOW)
    assert read.labels == {f"feature.node.kubernetes.io/{k}": v for k, v in LABELS.items()} and not read.dropped
    assert read.expires == NOW + timedelta(hours=24)
    later = read_feature_file("hilt", text.encode(), NOW + timedelta(hours=25))
    assert later.labels == {} and len(later.dropped) == len(LABELS)


def test_reader_follows_nfd_lines_comments_defaults_and_directive_order():
    data = (b"# a comment\nbare\n  spaced = x\nnvidia.com/gpu.count=4\n# +expiry-time=2026-03-01T01:00:00Z\n"
            b"late=1\n# +expiry-time=2026-03-01T03:00:00+00:00\nfresh=2\n\n")
    read = read_feature_file("gfd", data, NOW)
    assert read.labels == {"feature.node.kubernetes.io/bare": "true", "nvidia.com/gpu.count": "4",
                           "feature.node.kubernetes.io/fresh": "2"}
    assert any("late" in d or "expired" in d for d in read.dropped)
    assert any("spaced" in d for d in read.dropped)  # "spaced " is not a label name


def test_namespace_rules():
    ok = {"feature.node.kubernetes.io/a": "1", "profile.node.kubernetes.io/b": "2",
          "vendor.feature.node.kubernetes.io/c": "3", "nvidia.com/d": "4", "plain": "5"}
    read = read_feature_file("f", render_feature_file(ok, NOW + timedelta(hours=1)).encode(), NOW)
    assert set(read.labels) == {"feature.node.kubernetes.io/a", "profile.node.kubernetes.io/b", "nvidia.com/d",
                                "vendor.feature.node.kubernetes.io/c", "feature.node.kubernetes.io/plain"}
    for denied in ("kubernetes.io/x", "node-role.kubernetes.io/worker", "k8s.io/x", "node.k8s.io/y",
                   "topology.kubernetes.io/zone"):
        with pytest.raises(ConfigError, match="refused by NFD"):
            render_feature_file({denied: "1"}, NOW + timedelta(hours=1))
        assert read_feature_file("f", f"{denied}=1\n".encode(), NOW).labels == {}


@pytest.mark.parametrize("bad", [{"a=b": "1"}, {"#x": "1"}, {"x": "a b"}, {"x": "-a"}, {"x" * 64: "1"},
                                 {"Bad.Prefix/x": "1"}])
def test_writer_refuses_what_the_cluster_would_refuse_or_misread(bad):
    with pytest.raises(ConfigError):
        render_feature_file(bad, NOW + timedelta(hours=1))


def test_the_64_kB_limit_both_ways():
    many = {f"n{i:05d}": "v" * 60 for i in range(2000)}
    with pytest.raises(ConfigError, match=f"over {MAX_FILE_BYTES} bytes"):
        render_feature_file(many, NOW + timedelta(hours=1))
    exactly = b"a=" + b"b" * (MAX_FILE_BYTES - 3) + b"\n"  # 65536 bytes: read (the value is too long for a label)
    assert len(exactly) == MAX_FILE_BYTES and read_feature_file("f", exactly, NOW).dropped[0].startswith("f:1:")
    over = b"ok=1\n" + b"#" * (MAX_FILE_BYTES - 4)
    dropped = read_feature_file("f", over, NOW)
    assert dropped.labels == {} and "whole file ignored" in dropped.dropped[0]
    fits = {f"n{i:04d}": "v" * 40 for i in range(1000)}
    assert len(render_feature_file(fits, NOW + timedelta(hours=1)).encode()) <= MAX_FILE_BYTES


def test_dot_files_are_not_read_and_the_expiry_needs_a_time_zone():
    text = render_feature_file(LABELS, NOW + timedelta(hours=1))
    assert read_feature_file(".hilt", text.encode(), NOW).labels == {}
    with pytest.raises(ConfigError, match="time zone"):
        render_feature_file(LABELS, datetime(2026, 3, 1))

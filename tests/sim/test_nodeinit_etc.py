"""A simulated node's /etc/hosts and resolv.conf on a host that lacks them (a debootstrap root has no /etc/hosts).

nodeinit binds the node's files over the host's; with no host file to bind on it must still give the node its
own, without creating anything in the host's /etc. Each test runs in a private mount namespace of its own
(``unshare --mount``), so nothing it mounts is seen outside; needs root.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.sessions import session_env

pytestmark = pytest.mark.needs_root("each test mounts in a private mount namespace (unshare --mount)")

ROOT = Path(__file__).resolve().parents[2]

NODE_VIEW = textwrap.dedent("""\
    import json, sys
    from pathlib import Path
    from hilt.sim.nodeinit import mount_etc_files
    run_dir, etc = Path(sys.argv[1]), sys.argv[2]
    mount_etc_files(run_dir, ("hosts", "resolv.conf"), etc=etc)
    Path(etc, "written-by-the-node").write_text("x")  # a node may write its /etc; the host's must not change
    print(json.dumps({name: Path(etc, name).read_text() for name in ("hosts", "resolv.conf", "passwd")}))
    """)


def node_view(run_dir: Path, etc: Path) -> dict[str, str]:
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", sys.executable, "-c", NODE_VIEW,
                           str(run_dir), str(etc)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """What a booting sim node writes for itself (hilt/sim/machine.py)."""
    directory = tmp_path / "boot-1"
    directory.mkdir()
    (directory / "hosts").write_text("127.0.0.1 localhost\n10.200.53.2 node1\n")
    (directory / "resolv.conf").write_text("# no DNS on a simulated node\n")
    return directory


def test_a_host_without_etc_hosts_still_gives_the_node_its_own(tmp_path: Path, run_dir: Path) -> None:
    etc = tmp_path / "etc"  # the host's /etc as a debootstrap root has it: resolv.conf, no hosts
    etc.mkdir()
    (etc / "resolv.conf").write_text("nameserver 192.0.2.53\n")
    (etc / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    seen = node_view(run_dir, etc)
    assert seen["hosts"] == "127.0.0.1 localhost\n10.200.53.2 node1\n"
    assert seen["resolv.conf"] == "# no DNS on a simulated node\n"
    assert seen["passwd"] == "root:x:0:0::/root:/bin/sh\n"  # the rest of the host's /etc is still there
    assert sorted(p.name for p in etc.iterdir()) == ["passwd", "resolv.conf"]  # the host's /etc did not change
    assert (etc / "resolv.conf").read_text() == "nameserver 192.0.2.53\n"


def test_a_node_runs_none_of_the_hosts_shell_startup_but_sees_the_rest_of_its_home(tmp_path: Path,
                                                                                  run_dir: Path) -> None:
    host_home = tmp_path / "root"
    (host_home / "project" / ".venv").mkdir(parents=True)  # a CI clone under /root: the nodes run its Python
    (host_home / ".bashrc").write_text('eval "$(pyenv init -)"\n')
    (host_home / ".profile").write_text("echo hello\n")
    script = ("import os, sys; from pathlib import Path; from hilt.sim.nodeinit import mount_home; "
              "mount_home(Path(sys.argv[1]), sys.argv[2]); h = Path(sys.argv[2]); "
              "print(sorted(os.listdir(h)), repr((h / '.bashrc').read_text()), repr((h / '.profile').read_text()))")
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", sys.executable, "-c", script,
                           str(run_dir), str(host_home)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['.bashrc', '.profile', 'project'] '' ''"  # start-up files empty, checkout there
    assert (host_home / ".bashrc").read_text().startswith("eval")  # the host's home is as it was


def test_a_host_with_both_files_gets_them_bound_as_before(tmp_path: Path, run_dir: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    for name, text in (("hosts", "127.0.0.1 host\n"), ("resolv.conf", "nameserver 192.0.2.53\n"),
                       ("passwd", "root:x:0:0::/root:/bin/sh\n")):
        (etc / name).write_text(text)
    seen = node_view(run_dir, etc)
    assert seen["hosts"] == "127.0.0.1 localhost\n10.200.53.2 node1\n"
    assert seen["resolv.conf"] == "# no DNS on a simulated node\n"
    assert (etc / "hosts").read_text() == "127.0.0.1 host\n"


RIGS = """\
default_rig: sim
lease_store: sqlite://leases.sqlite
history: history.sqlite
rigs:
  sim:
    default_image: good
    provider:
      factory: hilt.sim.provider:SimProvider
      options: {nodes: 1, boot_delay_s: 0.5, name: etchosts, subnet: 57, boot_timeout_s: 20}
"""

SUITE = """\
def test_node_resolves_its_own_name(node):
    found = node.run(["getent", "hosts", node.name]).stdout.split()
    assert found[1:] == [node.name], found


def test_node_runs_no_shell_startup_of_the_host(node):
    found = node.run(["sh", "-c", 'cat ~/.bashrc ~/.profile 2>/dev/null; echo end']).stdout.split()
    assert found == ["end"], found  # empty (or absent): not the host's /root shell profile
"""

# the host's /etc seen through a writable overlay, in this mount namespace only, with hosts removed from it
WITHOUT_ETC_HOSTS = """\
mount -t tmpfs none "$1"
mkdir "$1/up" "$1/work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1/up,workdir=$1/work" /etc
rm /etc/hosts
shift
exec "$@"
"""


def test_a_sim_session_boots_on_a_host_without_etc_hosts(tmp_path: Path) -> None:
    """What a fresh debootstrap root looked like: every node failed to boot (bind on /etc/hosts: no such file)."""
    (tmp_path / "rigs.yaml").write_text(RIGS)
    (tmp_path / "test_hosts.py").write_text(SUITE)
    (tmp_path / "upper").mkdir()
    pytest_argv = [sys.executable, "-m", "pytest", "test_hosts.py", "--rigs-file", "rigs.yaml", "--hilt-reports",
                   "reports", "-o", "hilt_rig_suites=true", "-p", "no:cacheprovider", "-p", "no:xdist"]
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-ec", WITHOUT_ETC_HOSTS,
                           "sh", str(tmp_path / "upper"), "sh", "-c", "test ! -e /etc/hosts && exec \"$@\"", "sh",
                           *pytest_argv], cwd=tmp_path, capture_output=True, text=True, timeout=240,
                          env=session_env(PYTHONPATH=str(ROOT), HILT_NO_HISTORY="1"))
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "2 passed" in done.stdout
    assert Path("/etc/hosts").exists()  # the host's own file was never touched


DISK = textwrap.dedent("""\
    import json, os, sys
    from pathlib import Path
    from hilt.sim.nodeinit import mount_node_disk
    node_dir, action = Path(sys.argv[1]), sys.argv[2]
    mount_node_disk(node_dir, ())
    nfd, sock = Path("/etc/kubernetes/node-feature-discovery/features.d/hilt"), Path("/var/lib/kubelet/x.sock")
    if action == "write":
        nfd.parent.mkdir(parents=True, exist_ok=True); nfd.write_text("hilt.gate=pass\\n")
        sock.parent.mkdir(parents=True, exist_ok=True); sock.write_text("s")
    print(json.dumps({"nfd": nfd.read_text() if nfd.exists() else None, "sock": sock.exists(),
                      "passwd": Path("/etc/passwd").exists()}))
    """)


def test_the_node_disk_keeps_its_etc_and_var_lib_across_boots_and_never_writes_the_hosts(tmp_path: Path) -> None:
    node_dir = tmp_path / "node1"

    def boot(action: str) -> dict:
        done = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", sys.executable, "-c", DISK,
                               str(node_dir), action], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    host_had = Path("/etc/kubernetes/node-feature-discovery/features.d/hilt").exists()
    assert boot("write") == {"nfd": "hilt.gate=pass\n", "sock": True, "passwd": True}
    assert boot("read") == {"nfd": "hilt.gate=pass\n", "sock": True, "passwd": True}  # the next boot still has it
    assert Path("/etc/kubernetes/node-feature-discovery/features.d/hilt").exists() == host_had
    assert (node_dir / "disk" / "etc" / "upper" / "kubernetes" / "node-feature-discovery" / "features.d" /
            "hilt").read_text() == "hilt.gate=pass\n"

"""A wave's gate run adopts the nodes the rollout leased and booted: no lease, no boot, nothing released."""

from __future__ import annotations

from hilt.session.rig_session import HANDOFF_ENV, RigSession, SessionState, utc_now


def test_a_run_adopts_a_handed_over_session_without_leasing(tmp_path, monkeypatch):
    handed = SessionState(run_id="20260301T020000-abcdef", rig="sim", rigs_file=str(tmp_path / "rigs.yaml"),
                          image_name="good", image={"url": "http://x/good.tar"}, boot=False, started_at=utc_now(),
                          lease_id="L1", node_images={"node2": {"url": "http://x/old.tar"}})
    path = tmp_path / "handoff.json"
    handed.save(path)
    monkeypatch.setenv(HANDOFF_ENV, str(path))
    # the rigs file does not exist: adopting must not read it (nor any lease store)
    session = RigSession(tmp_path / "missing.yaml", None, None, boot=True, reports_dir=tmp_path / "reports")
    state = session.start()
    assert state == handed
    assert session.run_id == handed.run_id
    assert SessionState.load(session.state_path) == handed
    assert session.state_path.parent == tmp_path / "reports" / ".hilt" / handed.run_id
    session.finish()  # nothing held, nothing to release
    assert session.hold is None and session.provider is None

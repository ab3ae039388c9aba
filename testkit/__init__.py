"""Instruments shared by tests/ and bench/ (not shipped with hilt): Redfish peers that speak the real protocol
(redfish_peer: quirk modes; redfish_replay: captured vendor trees), a throwaway PostgreSQL server (pgserver), the
lease contender process and its independent double-grant check (lease_worker, lease_checker), and the canary
power model (canary_study). bench/ imports these, never tests/; test-only helpers live in tests/support/."""

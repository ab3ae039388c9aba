"""`hilt rollout`: boot a new image on a rig wave by wave, gate each wave against the baseline and against the
nodes still on the old image, and roll back what got the new image when a wave regresses (docs/rollout.md)."""

"""One run on a rig: reserve, provision, hand off to the suites, release."""

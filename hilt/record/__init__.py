"""A run's record: the RunRecord schema (summary.json, a history entry) and the metrics it carries."""

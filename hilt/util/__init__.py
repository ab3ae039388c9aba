"""Small shared basics with no domain of their own: safe YAML, locations, extras, CI environment, CLI output."""

"""Platform profiles: the expected fabric of each platform (YAML files here) and their schema."""

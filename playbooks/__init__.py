"""leakbench's built-in playbooks: TOML files, one per investigation sequence."""

"""The `deploy` flow: artefacts, release, health, diagnosis and recovery (see flow.py)."""

"""taxi-serve drift monitor: live feature windows from Redis vs each model's training reference.

Its own package and Python environment (``drift_monitor/pyproject.toml`` and ``uv.lock``):
alibi-detect needs numpy<2 and is BSL 1.1, so no other component imports it. Importing this
package does no work; ``python -m drift_monitor`` runs the CLI (``drift_monitor.cli``).
"""

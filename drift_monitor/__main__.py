"""``python -m drift_monitor``: the CLI (``run`` by default)."""

from drift_monitor.cli import main

if __name__ == "__main__":
    main()

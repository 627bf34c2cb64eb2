"""Numbers tests measure on real data, printed at the end of the run (`make test` shows them).

Tests put what they measured here (JSON-serialisable), so a closing note can quote the run.
"""

MEASURED: dict[str, object] = {}

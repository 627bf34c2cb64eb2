"""Offline half of taxi-serve: ingest -> validate -> features -> train -> evaluate -> register."""

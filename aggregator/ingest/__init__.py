"""Ingest pipeline: fetch, parse, normalise and deduplicate what sources publish."""

"""Topics: the query language and tagging papers with it (pure: no I/O)."""

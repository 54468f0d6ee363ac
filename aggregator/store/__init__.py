"""Storage: the schema, its migrations, and the repository that holds the only SQL."""

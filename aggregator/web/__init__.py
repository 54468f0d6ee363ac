"""The web layer: thin Flask blueprints over the store. No SQL here."""

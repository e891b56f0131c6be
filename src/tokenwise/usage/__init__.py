"""Usage data: the normalized schema, ingestion of usage logs, datasets, and the price table."""

"""Data quality checks as mlbatch steps."""

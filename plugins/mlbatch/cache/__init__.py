"""The step-output cache: cache keys, the store behind `python -m mlbatch cache`, and lease locks."""

"""The step-output cache: cache keys, the store behind `mlbatch cache`, and lease locks."""

"""mlbatch: YAML batch specs run as Airflow DAGs whose steps run in isolated workers."""

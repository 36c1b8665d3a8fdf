"""Experiment tracking with MLflow: one run per Airflow run, a nested run per model step.

Runs on the Airflow side after a step commits; mlflow is imported only inside functions,
never when a DAG file is parsed.
"""

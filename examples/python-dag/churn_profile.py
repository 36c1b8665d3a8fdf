"""Example Python DAG: profile the churn features each time churn_training publishes them.

Copy this file and churn_profile_steps.py into dags/ (or put the steps module in your own package):
a plain Airflow @task reads the asset event of the YAML batch's `features` step, two @step functions
run as isolated, cached steps (one in two shards), and a plain task prints the result.
"""
from airflow.sdk import DAG, task

from churn_profile_steps import column_profile, drift_alarm
from mlbatch.sdk import output_of, result

FEATURES = output_of("churn_training.features")  # the asset a YAML batch's step publishes

with DAG("churn_profile", schedule=[FEATURES], tags=["mlbatch", "example"], doc_md=__doc__,
         default_args={"owner": "ml-platform"}) as dag:

    @task(inlets=[FEATURES])
    def published_features(*, inlet_events=None) -> str:
        events = inlet_events[FEATURES]
        if not events:
            raise ValueError("churn_training.features has published nothing yet: run churn_training first")
        return events[-1].extra["uri"]  # the committed output's URI: the data stays where it is

    profiles = column_profile(published_features())
    alarm = drift_alarm(profiles, baseline={"tenure_months": 32.0, "monthly_charges": 65.0})

    @task
    def show(summary: dict) -> None:
        print(f"drift alarm: {result(summary)}")

    show(alarm)

"""Airflow DAG loader for the article_recommendation batch (dags/specs/article_recommendation.yaml).

One tiny loader per spec: a broken spec then shows as an import error of this file
alone, and every other batch keeps loading. `python -m mlbatch new` writes these.
"""
from mlbatch.run.factory import build_dag

dag = build_dag(__file__, "specs/article_recommendation.yaml")

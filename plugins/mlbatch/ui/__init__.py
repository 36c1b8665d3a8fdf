"""The mlbatch page in Airflow's web UI: every batch's runs, each step's numbers, cost and advice.

Served by the api-server through the plugin (plugin.py) and read-only: it reads Airflow's
metadata DB (runs, task instances, the steps' XCom summaries), the specs and the manifests the
steps wrote. Nothing here is imported at DAG parse time but link.py (the operator's extra link).
"""

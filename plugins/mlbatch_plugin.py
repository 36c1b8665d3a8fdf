"""The mlbatch plugin for an Airflow whose plugins folder holds a copy of mlbatch not installed with pip.

Installed with pip, the package registers the plugin through its `airflow.plugins` entry point;
this file then defines no plugin, so Airflow never registers it twice.
"""
from importlib.metadata import entry_points

if not any(point.name == "mlbatch" for point in entry_points(group="airflow.plugins")):
    from mlbatch.ui.plugin import MlbatchPlugin  # noqa: F401  (found by Airflow's plugins-folder scan)

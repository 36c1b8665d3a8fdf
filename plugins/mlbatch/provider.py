"""Provider metadata for Airflow (`airflow providers list`), through the `apache_airflow_provider` entry point.

The plugin itself registers through `airflow.plugins` only: listing it here too would load it twice.
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def get_provider_info() -> dict:
    try:
        installed = version("mlbatch")
    except PackageNotFoundError:  # imported from a source tree
        installed = "0+unknown"
    return {
        "package-name": "mlbatch",
        "name": "mlbatch",
        "description": "Machine-learning batches as YAML specs, each step in its own isolated worker",
        "versions": [installed],
        "extra-links": ["mlbatch.ui.link.MlbatchPageLink"],
    }

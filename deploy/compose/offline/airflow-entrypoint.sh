#!/bin/bash
# The official image's entrypoint contract, the part docker-compose.yaml uses: an Airflow subcommand
# (`scheduler`, `api-server`) runs `airflow SUBCOMMAND`; `airflow ...`, `bash ...`, `python ...`
# or a path run as they are.
set -euo pipefail
case "${1:-}" in
    airflow|bash|python|python3|/*) exec "$@" ;;
    *) exec airflow "$@" ;;
esac

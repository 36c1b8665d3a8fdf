"""`python -m mlbatch ...`"""
from __future__ import annotations

import sys

from mlbatch.cli.main import main

sys.exit(main())

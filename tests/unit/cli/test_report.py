"""The run summary: resources each computed step used (budget x time), spot or not."""
from __future__ import annotations

from mlbatch.cli.report import RunReport, StepRow, format_report


def test_resources_used_are_listed_for_computed_steps_only():
    computed = {"shard_count": 3, "peak_rss_mib": 410.0, "cache_hit": False, "uri": "s3://b/train",
                "usage": {"backend": "batch", "vcpu_s": 24.5, "gpu_s": 0.0, "memory_mib": 1536, "spot": True}}
    hit = {"shard_count": 1, "cache_hit": True, "uri": "s3://b/features",
           "usage": {"backend": "batch", "vcpu_s": 3.0, "gpu_s": 0.0, "memory_mib": 2048, "spot": False}}
    text = format_report(RunReport("churn", "run-1", "success",
                                   [StepRow("features", "success", 1, 1.0, hit), StepRow("train", "success", 1, 9.0, computed)]))
    assert "resources used" in text
    assert "train      batch  vcpu-s     24.5  gpu-s     0.0  memory 1536 MiB (peak 410 MiB)  spot" in text
    assert "features   batch" not in text  # a cache hit used nothing


def test_no_usage_section_without_usage():
    text = format_report(RunReport("d", "r", "success", [StepRow("s", "success", 1, 1.0, {"shard_count": 1})]))
    assert "resources used" not in text

"""Estimated cost of a step try from what it used: vCPU-, GB- and GPU-hours at the [prices] settings.

What each backend bills for (mlbatch.settings.PriceSettings says where the defaults come from):
- ecs (Fargate, Fargate Spot), local and docker: vCPU-hours plus GB-hours at Fargate's rates; a step
  on this machine or one Docker host is priced as it would be on Fargate (what moving it there would cost);
- batch (EC2 instances of the stack's compute environments): vCPU-hours at the instance family's
  price per vCPU, memory included; on spot at the spot price;
- any step that held a GPU: GPU-hours at the price of one GPU instance of the configured type.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlbatch.settings import PriceSettings


@dataclass(frozen=True)
class Cost:
    usd: float
    basis: str  # how it was priced, for the page's tooltip


def step_cost(usage: dict[str, Any] | None, vcpu: float, prices: PriceSettings) -> Cost | None:
    """The cost of one computed step (None: nothing ran, e.g. a cache hit, or no usage recorded)."""
    if not usage or not usage.get("vcpu_s"):
        return None
    vcpu_hours = usage["vcpu_s"] / 3600
    spot = bool(usage.get("spot")) or usage.get("capacity_provider") == "FARGATE_SPOT"
    if usage.get("gpu_s"):
        rate = prices.gpu_spot_hour if spot else prices.gpu_hour
        return Cost(usage["gpu_s"] / 3600 * rate, f"{prices.gpu_type} {'spot' if spot else 'on-demand'} ${rate:g}/GPU-hour")
    if _priced_as(usage.get("backend")) == "ec2":
        rate = prices.ec2_spot_vcpu_hour if spot else prices.ec2_vcpu_hour
        return Cost(vcpu_hours * rate, f"EC2 {'spot' if spot else 'on-demand'} ${rate:g}/vCPU-hour")
    seconds = usage["vcpu_s"] / max(vcpu, 0.001)
    gb_hours = (usage.get("memory_mib") or 0) / 1024 * seconds / 3600
    vcpu_rate, gb_rate = (prices.spot_vcpu_hour, prices.spot_gb_hour) if spot else (prices.vcpu_hour, prices.gb_hour)
    where = "Fargate Spot" if spot else "Fargate"
    return Cost(vcpu_hours * vcpu_rate + gb_hours * gb_rate, f"{where} ${vcpu_rate:g}/vCPU-hour + ${gb_rate:g}/GB-hour")


def _priced_as(backend: str | None) -> str:
    from mlbatch.backends.traits import BACKEND_INFO

    info = BACKEND_INFO.get(backend or "")
    return info.priced_as if info else "fargate"


def run_cost(costs: list[Cost | None]) -> float:
    return round(sum(cost.usd for cost in costs if cost is not None), 6)

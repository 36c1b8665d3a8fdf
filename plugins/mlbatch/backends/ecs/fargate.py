"""Fargate's task sizes: which (vCPU, memory) pairs exist, and the nearest one to a request.

Pure and cheap: lint imports it while checking a spec.
"""
from __future__ import annotations

# vCPU -> allowed memory in MiB (AWS Fargate task size table)
SIZES: dict[float, range] = {
    0.25: range(512, 2048 + 1, 512),
    0.5: range(1024, 4096 + 1, 1024),
    1: range(2048, 8192 + 1, 1024),
    2: range(4096, 16384 + 1, 1024),
    4: range(8192, 30720 + 1, 1024),
    8: range(16384, 61440 + 1, 4096),
    16: range(32768, 122880 + 1, 8192),
}


def is_valid(vcpu: float, memory_mib: int) -> bool:
    return vcpu in SIZES and memory_mib in SIZES[vcpu]


def nearest(vcpu: float, memory_mib: int) -> tuple[float, int]:
    """The smallest valid size with at least the requested vCPU and memory (else the largest)."""
    for cpu in sorted(SIZES):
        if cpu < vcpu:
            continue
        fitting = [m for m in SIZES[cpu] if m >= memory_mib]
        if fitting:
            return cpu, fitting[0]
    return 16, SIZES[16][-1]


def cpu_units(vcpu: float) -> str:
    """Task-level cpu as ECS wants it: 1024 units per vCPU."""
    return str(int(vcpu * 1024))


def format_size(vcpu: float, memory_mib: int) -> str:
    memory = f"{memory_mib // 1024}Gi" if memory_mib % 1024 == 0 else f"{memory_mib}Mi"
    return f"{{vcpu: {vcpu:g}, memory: {memory}}}"

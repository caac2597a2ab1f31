"""EC2 instance types a self-hosted model may run on, and how many NVIDIA GPUs each one has.

A model may name any EC2 instance type (as in LISA): the list is the ``InstanceType`` enum of the
EC2 service model bundled with botocore, loaded once on first use (about half a second, so it is not
paid at import time by a cold Lambda or by the serve app, which never validates instance types).
"""

from __future__ import annotations

from functools import cache

import botocore.session

#: NVIDIA GPUs per instance type. The task definition asks for all of them; a type not listed here
#: runs its container without a GPU reservation (CPU-only, e.g. an embedding model on ``c7i``).
GPU_COUNTS: dict[str, int] = {
    **dict.fromkeys(["g4dn.xlarge", "g4dn.2xlarge", "g4dn.4xlarge", "g4dn.8xlarge", "g4dn.16xlarge"], 1),
    "g4dn.12xlarge": 4,
    "g4dn.metal": 8,
    **{
        f"{family}.{size}": 1
        for family in ("g5", "g6", "g6e")
        for size in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge")
    },
    **{f"{family}.{size}": 4 for family in ("g5", "g6", "g6e") for size in ("12xlarge", "24xlarge")},
    **{f"{family}.48xlarge": 8 for family in ("g5", "g6", "g6e")},
    "gr6.4xlarge": 1,
    "gr6.8xlarge": 1,
    "p3.2xlarge": 1,
    "p3.8xlarge": 4,
    "p3.16xlarge": 8,
    "p3dn.24xlarge": 8,
    "p4d.24xlarge": 8,
    "p4de.24xlarge": 8,
    "p5.4xlarge": 1,
    "p5.48xlarge": 8,
    "p5e.48xlarge": 8,
    "p5en.48xlarge": 8,
}


@cache
def instance_types() -> tuple[str, ...]:
    """Every EC2 instance type botocore knows, in the service model's order."""
    shape = botocore.session.get_session().get_service_model("ec2").shape_for("InstanceType")
    return tuple(shape.enum)


@cache
def _known() -> frozenset[str]:
    return frozenset(instance_types())


def is_instance_type(name: str) -> bool:
    return name in _known()


def gpu_count(instance_type: str) -> int:
    """NVIDIA GPUs of ``instance_type`` (0 when it has none or is not in ``GPU_COUNTS``)."""
    return GPU_COUNTS.get(instance_type, 0)

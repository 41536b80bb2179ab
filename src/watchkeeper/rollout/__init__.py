"""Progressive rollouts: a candidate version gets traffic step by step while its live metrics
are compared with the baseline's, and is promoted or rolled back (docs/rollouts.md).

``spec.py`` the rollout spec, ``metrics.py`` per-arm summaries from the monitor's windows,
``analysis.py`` one look (sample-ratio check, a verdict per metric), ``controller.py`` the
state machine and manual commands, ``traffic.py`` the seam to the router (``router.py`` for
:class:`watchkeeper.serving.Serving`), ``alerting.py`` the rollback alert.
"""

from __future__ import annotations

from watchkeeper.rollout.controller import RolloutController, RolloutState
from watchkeeper.rollout.spec import RolloutSpec, parse_spec
from watchkeeper.rollout.traffic import InMemoryTraffic, TrafficControl

__all__ = [
    "InMemoryTraffic",
    "RolloutController",
    "RolloutSpec",
    "RolloutState",
    "TrafficControl",
    "parse_spec",
]

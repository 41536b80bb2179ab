"""Progressive rollouts: a candidate version gets traffic step by step while its live metrics
are compared with the baseline's, and is promoted or rolled back (docs/rollouts.md).

``spec.py`` the rollout spec, ``metrics.py`` per-arm summaries from the monitor's windows,
``analysis.py`` one look (sample-ratio check, a verdict per metric), ``controller.py`` the
state machine and manual commands, ``traffic.py`` the seam to the router (``router.py`` for
:class:`watchkeeper.serving.Serving`), ``alerting.py`` the rollback alert. Experiments (A/B
tests of versions, docs/experiments.md): ``experiment_spec.py`` the spec, ``experiments.py``
create / stop / results, ``experiment_analysis.py`` the results from the arms' windows.
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

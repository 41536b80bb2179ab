"""The post-promotion guard: an accuracy rule with ``action: rollback`` on the champion moves it
back to the version before, says why in the alias history, and acts once."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.dummy import DummyRegressor

from watchkeeper.alerts.engine import AlertingEngine
from watchkeeper.alerts.rulespec import RuleSpec
from watchkeeper.errors import ConfigError
from watchkeeper.registry import ArtifactStore, Registry
from watchkeeper.rollout.guard import champion_guard
from watchkeeper.store import Store

T0 = 1_700_000_000.0
RULE = {
    "name": "ChurnAccuracyGuard",
    "model": "churn",
    "signal": "accuracy",
    "condition": {"op": "<", "threshold": 0.8},
    "action": "rollback",
    "severity": "critical",
}


def _accuracy(version: str, value: float) -> dict[str, object]:
    labels = {"model": "churn", "version": version, "segment": "*", "signal": "accuracy"}
    return {"labels": labels, "value": value, "timestamp": T0}


def test_a_firing_accuracy_rule_rolls_the_champion_back_once(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'wk.db'}") as store:
        registry = Registry(store, ArtifactStore(tmp_path / "artifacts"))
        for constant in (1.0, 2.0):
            model = DummyRegressor(strategy="constant", constant=constant).fit([[0]], [0])
            registry.register("churn", model, registered_by="ana")
        registry.set_alias("churn", "champion", 1, moved_by="ana", reason="first")
        registry.set_alias("churn", "champion", 2, moved_by="ana", reason="promoted")
        engine = AlertingEngine(db=store.engine, clock=lambda: T0)
        try:
            engine.on_action("rollback", champion_guard(registry))
            engine.apply_rules([RuleSpec.from_dict(RULE)], replace=False)
            # Healthy champion: nothing moves. An alert on another version moves nothing.
            engine.evaluate(T0, [_accuracy("2", 0.93), _accuracy("1", 0.4)])
            assert registry.alias_version("churn", "champion") == 2
            # The champion's accuracy falls: the alert fires and the champion goes back to 1.
            report = engine.evaluate(T0 + 60, [_accuracy("2", 0.55)])
            fired = [c.labels["version"] for c in report.transitions if c.state.value == "firing"]
            assert fired == ["2"]
            assert registry.alias_version("churn", "champion") == 1
            latest = registry.history("churn", "champion")[0]
            assert (latest.from_version, latest.to_version, latest.moved_by) == (2, 1, "alerting")
            assert "ChurnAccuracyGuard fired on version 2: accuracy = 0.55" in latest.reason
            # Still firing: no second move (a rollback of the rollback would put 2 back).
            engine.evaluate(T0 + 120, [_accuracy("2", 0.5)])
            assert registry.alias_version("churn", "champion") == 1
            assert len(registry.history("churn", "champion")) == 3
        finally:
            engine.close()


def test_an_unknown_action_is_refused_naming_the_field() -> None:
    with pytest.raises(ConfigError, match=r"rules\[0\]\.action: expected one of rollback"):
        RuleSpec.from_dict({**RULE, "action": "rollbak"}, path="rules[0]")

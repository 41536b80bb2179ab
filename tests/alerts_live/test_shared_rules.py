"""Two alerting engines on one database (a server and the CLI, or two servers) share one
rule set: what one stores, the other evaluates and lists at once, and no change is lost."""

from __future__ import annotations

import threading

from watchkeeper.alerts import load_rules
from watchkeeper.alerts.engine import AlertingEngine

RULE = """rules:
  - name: {name}
    model: credit
    signal: error_rate
    condition: "> 0.5"
"""


def _sample(value: float) -> dict[str, object]:
    return {"labels": {"model": "credit", "signal": "error_rate"}, "value": value, "timestamp": 0.0}


def test_rules_stored_by_one_engine_are_evaluated_by_the_other(sql_url: str) -> None:
    server = AlertingEngine(db=sql_url, clock=lambda: 0.0)
    cli = AlertingEngine(db=sql_url, clock=lambda: 0.0)
    try:
        assert server.rules() == []
        added = cli.add_default_rules("credit")
        assert [spec.name for spec in server.rules()] == [spec.name for spec in added]
        report = server.evaluate(0.0, [_sample(0.9)])
        assert "CreditErrorRateHigh" in {alert.rule for alert in server.alerts()}
        assert report.transitions, "the server evaluated the rules the other engine stored"

        # A merge by the server keeps the pack it never stored itself; a replace is a replace.
        merged = server.apply_rules(load_rules(RULE.format(name="Extra")), replace=False)
        assert [spec.name for spec in merged] == [*(spec.name for spec in added), "Extra"]
        assert cli.rules() == merged
        assert cli.add_default_rules("credit") == [], "taken names are kept as they are"
        cli.apply_rules(load_rules(RULE.format(name="Only")), replace=True)
        assert [spec.name for spec in server.rules()] == ["Only"]
        assert {alert.rule for alert in server.alerts()} <= {"Only", "CreditErrorRateHigh"}
    finally:
        server.close()
        cli.close()


def test_concurrent_merges_from_two_engines_lose_nothing(sql_url: str) -> None:
    engines = [AlertingEngine(db=sql_url, clock=lambda: 0.0) for _ in range(2)]
    errors: list[BaseException] = []

    def merge(engine: AlertingEngine, prefix: str) -> None:
        try:
            for index in range(10):
                name = f"{prefix}{index}"
                engine.apply_rules(load_rules(RULE.format(name=name)), replace=False)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [
        threading.Thread(target=merge, args=(engine, prefix))
        for engine, prefix in zip(engines, ("A", "B"), strict=True)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        names = {spec.name for spec in engines[0].rules()}
        assert names == {f"{prefix}{index}" for prefix in "AB" for index in range(10)}
        assert engines[1].rules() == engines[0].rules()
    finally:
        for engine in engines:
            engine.close()

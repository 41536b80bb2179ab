from __future__ import annotations

import time

import pytest

from watchkeeper.alerts import Alert, Matcher, Route, Silence
from watchkeeper.alerts.model import AlertState
from watchkeeper.alerts.routing import InhibitRule, MatchOp, inhibited_fingerprints, parse_matchers
from watchkeeper.errors import ConfigError


def alert(**labels: str) -> Alert:
    return Alert(
        labels=labels,
        annotations={},
        state=AlertState.FIRING,
        starts_at=0.0,
        ends_at=None,
        value=1.0,
        updated_at=0.0,
    )


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ('severity="critical"', {"severity": "critical"}, True),
        ("severity=critical", {"severity": "warning"}, False),
        ('severity!="critical"', {}, True),
        ('model=~"credit.*"', {"model": "credit-eu"}, True),
        ('model=~"credit"', {"model": "credit-eu"}, False),  # anchored
        ('model!~"credit|fraud"', {"model": "fraud"}, False),
        ('team=""', {}, True),  # a missing label reads as ""
    ],
)
def test_matchers(text: str, labels: dict[str, str], expected: bool) -> None:
    assert Matcher.parse(text).matches(labels) is expected


def test_matcher_parse_errors_name_the_path() -> None:
    with pytest.raises(ConfigError, match=r"route\.matchers\[1\]: expected a matcher"):
        parse_matchers(['a="b"', "no operator"], key="route.matchers")
    with pytest.raises(ConfigError, match="bad regular expression"):
        Matcher(name="a", op=MatchOp.REGEX, value="(")
    assert str(Matcher.parse('x=~"a\\"b"')) == 'x=~"a\\"b"'


def test_route_tree_first_match_continue_and_inheritance() -> None:
    tree = Route(
        receiver="default",
        group_by=("alertname",),
        repeat_interval=3600.0,
        routes=(
            Route(
                matchers=(Matcher.parse('severity="critical"'),),
                receiver="pager",
                continue_=True,
                group_wait=5.0,
            ),
            Route(
                matchers=(Matcher.parse('team="risk"'),), receiver="risk-slack", group_by=("model",)
            ),
            Route(matchers=(Matcher.parse('team=~".+"'),), receiver="never"),
        ),
    )
    matches = tree.match({"alertname": "A", "severity": "critical", "team": "risk", "model": "m"})
    assert [match.receiver for match in matches] == ["pager", "risk-slack"]
    pager, risk = matches
    assert (pager.group_wait, pager.repeat_interval, pager.group_interval) == (5.0, 3600.0, 300.0)
    assert risk.group_by == ("model",)
    assert risk.group_wait == 30.0
    assert risk.group_key({"model": "m", "x": "y"}).endswith(':{model="m"}')
    # Nothing matches a child: the root itself is the route.
    assert [match.receiver for match in tree.match({"alertname": "B"})] == ["default"]
    assert tree.receivers() == {"default", "pager", "risk-slack", "never"}


def test_silence_window_and_validation() -> None:
    silence = Silence(
        matchers=(Matcher.parse('model="credit"'),),
        starts_at=100.0,
        ends_at=200.0,
        created_by="ana",
        comment="retraining",
    )
    assert not silence.mutes({"model": "credit"}, 99.0)
    assert silence.mutes({"model": "credit"}, 150.0)
    assert not silence.mutes({"model": "fraud"}, 150.0)
    assert not silence.mutes({"model": "credit"}, 200.0)
    assert not silence.expired(150.0).is_active(150.0)
    assert Silence.from_dict(silence.to_dict()) == silence
    with pytest.raises(ConfigError, match="ends_at"):
        Silence(matchers=silence.matchers, starts_at=5, ends_at=5, created_by="a", comment="")
    with pytest.raises(ConfigError, match="created_by"):
        Silence(matchers=silence.matchers, starts_at=0, ends_at=5, created_by=" ", comment="")


def test_inhibition_needs_equal_labels_and_never_self_inhibits() -> None:
    rule = InhibitRule(
        source_matchers=(Matcher.parse('severity="critical"'),),
        target_matchers=(Matcher.parse('severity=~"warning|critical"'),),
        equal=("model",),
    )
    critical = alert(alertname="Acc", severity="critical", model="credit")
    warning_same = alert(alertname="Drift", severity="warning", model="credit")
    warning_other = alert(alertname="Drift", severity="warning", model="fraud")
    muted = inhibited_fingerprints([rule], [critical, warning_same, warning_other], now=0.0)
    assert muted == {warning_same.fingerprint}
    resolved_source = Alert(
        labels=critical.labels,
        annotations={},
        state=AlertState.RESOLVED,
        starts_at=0.0,
        ends_at=10.0,
        value=None,
        updated_at=10.0,
    )
    assert inhibited_fingerprints([rule], [resolved_source, warning_same], now=20.0) == set()


def test_regex_matchers_run_in_linear_time() -> None:
    """A pattern that backtracks exponentially in Python's engine matches at once with RE2."""
    matcher = Matcher.parse('model=~"(a+)+$"')
    started = time.perf_counter()
    assert not matcher.matches({"model": "a" * 40 + "b"})
    assert time.perf_counter() - started < 0.1
    with pytest.raises(ConfigError, match="without backreferences"):
        Matcher.parse('model=~"(a)\\\\1"')

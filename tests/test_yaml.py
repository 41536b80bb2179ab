"""Strict, bounded YAML for every configuration document."""

from __future__ import annotations

import time

import pytest
import yaml

from watchkeeper._yaml import MAX_NODES, load_yaml
from watchkeeper.alerts import load_rules
from watchkeeper.errors import ConfigError

LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + level)}: &{chr(98 + level)} [{', '.join([f'*{chr(97 + level)}'] * 9)}]\n"
    for level in range(8)
)


def test_a_repeated_key_is_an_error_naming_it_and_its_line() -> None:
    with pytest.raises(yaml.YAMLError, match="the key 'condition' appears twice") as raised:
        load_yaml("name: A\ncondition: '> 1'\ncondition: '< 1'\n")
    assert "line 3" in str(raised.value)
    text = "rules:\n  - name: A\n    signal: accuracy\n    condition: '< 0.8'\n    signal: count\n"
    with pytest.raises(ConfigError, match="the key 'signal' appears twice"):
        load_rules(text)


def test_a_billion_laughs_is_refused_before_it_is_walked() -> None:
    started = time.perf_counter()
    with pytest.raises(
        yaml.YAMLError, match=f"more than {MAX_NODES:,} values once its aliases are expanded"
    ):
        load_yaml(LAUGHS)
    assert time.perf_counter() - started < 1.0


def test_ordinary_documents_merge_keys_and_a_few_aliases_still_load() -> None:
    document = load_yaml("base: &b {for: 5m}\nrule:\n  <<: *b\n  name: A\nsame: [*b, *b]\n")
    assert document["rule"] == {"for": "5m", "name": "A"}
    assert document["same"] == [{"for": "5m"}, {"for": "5m"}]
    assert load_yaml('{"a": 1}') == {"a": 1}

"""Every rule's own valid and invalid examples, run against the rule alone."""

from __future__ import annotations

import pytest

from conftest import lint_text
from tfgradlint.rules import all_rules

RULES = [r for r in all_rules() if r.code not in ("TGL001", "TGL002")]


def _cases(kind):
    for rule in RULES:
        for i, example in enumerate(getattr(rule, kind)):
            yield pytest.param(rule, example, id=f"{rule.code}-{kind}-{i}")


@pytest.mark.parametrize("rule,example", list(_cases("valid")))
def test_valid_example(rule, example):
    findings = lint_text(example.code, select=[rule.code], preview=True)
    assert [f for f in findings if f.code == rule.code] == []


@pytest.mark.parametrize("rule,example", list(_cases("invalid")))
def test_invalid_example(rule, example):
    findings = [f for f in lint_text(example.code, select=[rule.code], preview=True, project=example.project) if f.code == rule.code]
    assert [f.start.row for f in findings] == example.expected_lines(), [
        (f.start.row, f.message) for f in findings
    ]
    for f in findings:
        for text in example.message_contains:
            assert text in f.message


def test_every_rule_has_examples_and_docs():
    for rule in RULES:
        assert rule.invalid, f"{rule.code} has no invalid example"
        assert rule.code in rule.documentation()
        assert rule.summary and rule.why, rule.code

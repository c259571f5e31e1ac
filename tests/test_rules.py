import pandas as pd
import pytest

from mouse_facial_expressions.data.rules import RuleError, apply_rules, parse_rule


@pytest.fixture
def table():
    return pd.DataFrame(
        {
            "animal": ["a", "a", "b", "b", "c", "c"],
            "recording": [1, 4, 1, 4, 1, 4],
            "treatment": ["high", "high", "saline", "saline", "low", "low"],
        }
    )


def test_simple_rule_labels_matching_rows(table):
    labels = apply_rules(table, ["recording == 1 -> 0"])
    assert labels.tolist() == [0, pd.NA, 0, pd.NA, 0, pd.NA]


def test_and_combines_conditions(table):
    labels = apply_rules(table, ["recording == 1 -> 0", 'recording == 4 and treatment == "high" -> 1'])
    assert labels.fillna(-1).tolist() == [0, 1, 0, -1, 0, -1]


def test_in_not_or_and_parentheses(table):
    rule = parse_rule('treatment in ["low", "high"] and not (recording < 2 or animal == "c") -> 1')
    assert rule.mask(table).tolist() == [False, True, False, False, False, False]


def test_all_comparison_operators(table):
    for text, expected in [
        ("recording != 1 -> 1", [False, True] * 3),
        ("recording <= 1 -> 1", [True, False] * 3),
        ("recording > 1 -> 1", [False, True] * 3),
        ("recording >= 4 -> 1", [False, True] * 3),
        ("1 < recording <= 4 -> 1", [False, True] * 3),
        ('treatment not in ["saline"] -> 1', [True, True, False, False, True, True]),
    ]:
        assert parse_rule(text).mask(table).tolist() == expected, text


@pytest.mark.parametrize(
    "text",
    [
        '__import__("os").system("echo hi") -> 1',
        "animal.upper() == 'A' -> 1",
        "recording + 1 == 2 -> 1",
        "[x for x in animal] -> 1",
        "lambda: 1 -> 1",
    ],
)
def test_code_is_rejected(text):
    with pytest.raises(RuleError, match="not allowed"):
        parse_rule(text)


def test_unknown_column_is_named(table):
    with pytest.raises(RuleError, match="unknown column 'dose'"):
        apply_rules(table, ["dose == 1 -> 1"])


def test_rule_matching_nothing_is_an_error(table):
    with pytest.raises(RuleError, match=r"recording == 7 -> 1.*matches no row"):
        apply_rules(table, ["recording == 1 -> 0", "recording == 7 -> 1"])


def test_conflicting_rules_name_both_and_rows(table):
    with pytest.raises(RuleError, match=r"'recording == 1 -> 0' and 'animal == \"a\" -> 1'.*first rows: \[0\]"):
        apply_rules(table, ["recording == 1 -> 0", 'animal == "a" -> 1'])


def test_missing_arrow_or_bad_label():
    with pytest.raises(RuleError, match="expected"):
        parse_rule("recording == 1")
    with pytest.raises(RuleError, match="not an integer"):
        parse_rule("recording == 1 -> high")


def test_incomparable_values_are_a_rule_error(table):
    with pytest.raises(RuleError, match="cannot compare"):
        apply_rules(table, ['recording < "x" -> 1'])

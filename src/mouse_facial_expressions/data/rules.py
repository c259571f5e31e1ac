"""Label rules over metadata columns, parsed safely (no ``eval``).

A rule is ``<condition> -> <label>``, for example::

    recording == 1 -> 0
    recording == 4 and treatment == "high" -> 1
    treatment in ["low", "mid"] and not (recording < 2) -> 1

Conditions may use column names, string/number/bool constants, lists of constants,
``== != < <= > >= in, not in``, ``and``, ``or``, ``not`` and parentheses. They are parsed
with :mod:`ast` against a whitelist of node types and evaluated on a whole DataFrame at
once (vectorised with pandas), so nothing a user writes is ever executed as code.
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass

import numpy as np
import pandas as pd


class RuleError(ValueError):
    """A label rule that cannot be parsed or applied; the message names the rule."""


_CMP = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


@dataclass(frozen=True)
class Rule:
    """One parsed rule: rows where ``condition`` holds get ``label``."""

    text: str
    condition: str
    label: int
    tree: ast.Expression

    def mask(self, df: pd.DataFrame) -> pd.Series:
        """Boolean Series: which rows of ``df`` the condition selects."""
        out = _eval(self.tree.body, df, self.text)
        if np.isscalar(out) or isinstance(out, (bool, np.bool_)):
            out = pd.Series(bool(out), index=df.index)
        if not isinstance(out, pd.Series) or out.dtype != bool:
            raise RuleError(f"rule {self.text!r}: the condition is not a comparison (yes/no per row)")
        return out


def parse_rule(text: str) -> Rule:
    """Parse ``"<condition> -> <label>"``.

    Raises:
        RuleError: bad syntax, a forbidden construct (calls, attributes, arithmetic...),
            or a label that is not an integer.
    """
    if "->" not in text:
        raise RuleError(f"rule {text!r}: expected '<condition> -> <label>', e.g. 'recording == 1 -> 0'")
    condition, _, label_text = text.rpartition("->")
    condition, label_text = condition.strip(), label_text.strip()
    try:
        label = int(label_text)
    except ValueError:
        raise RuleError(f"rule {text!r}: the label {label_text!r} is not an integer") from None
    try:
        tree = ast.parse(condition, mode="eval")
    except SyntaxError as err:
        raise RuleError(f"rule {text!r}: cannot parse the condition: {err.msg}") from None
    _check(tree.body, text)
    return Rule(text=text, condition=condition, label=label, tree=tree)


def _check(node: ast.AST, text: str) -> None:
    """Reject every node type outside the whitelist."""
    if isinstance(node, ast.BoolOp):
        for v in node.values:
            _check(v, text)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
        _check(node.operand, text)
    elif isinstance(node, ast.Compare):
        for op in node.ops:
            if not (type(op) in _CMP or isinstance(op, (ast.In, ast.NotIn))):
                raise RuleError(f"rule {text!r}: operator {type(op).__name__} is not allowed")
        for v in [node.left, *node.comparators]:
            _check(v, text)
    elif isinstance(node, ast.Name):
        pass
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, (str, int, float, bool)) or node.value is None:
            raise RuleError(f"rule {text!r}: constant {node.value!r} is not allowed")
    elif isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        for v in node.elts:
            if not isinstance(v, ast.Constant) and not (
                isinstance(v, ast.UnaryOp) and isinstance(v.op, ast.USub)
            ):
                raise RuleError(f"rule {text!r}: lists may only hold constants")
            _check(v, text)
    else:
        raise RuleError(
            f"rule {text!r}: {type(node).__name__} is not allowed (use column names, constants, "
            "comparisons, 'in [...]', and/or/not, parentheses)"
        )


def _eval(node: ast.AST, df: pd.DataFrame, text: str):
    if isinstance(node, ast.BoolOp):
        vals = [_as_mask(_eval(v, df, text), df, text) for v in node.values]
        out = vals[0]
        for v in vals[1:]:
            out = (out & v) if isinstance(node.op, ast.And) else (out | v)
        return out
    if isinstance(node, ast.UnaryOp):
        val = _eval(node.operand, df, text)
        if isinstance(node.op, ast.USub):
            return -val
        return ~_as_mask(val, df, text)
    if isinstance(node, ast.Compare):
        out = None
        left = _eval(node.left, df, text)
        for op, comp in zip(node.ops, node.comparators):
            right = _eval(comp, df, text)
            if isinstance(op, (ast.In, ast.NotIn)):
                if not isinstance(right, list):
                    raise RuleError(f"rule {text!r}: 'in' needs a list of constants, e.g. in [\"low\", \"mid\"]")
                res = _as_series(left, df).isin(right)
                if isinstance(op, ast.NotIn):
                    res = ~res
            else:
                try:
                    res = _CMP[type(op)](_as_series(left, df), right)
                except TypeError as err:
                    raise RuleError(f"rule {text!r}: cannot compare these values ({err})") from None
                res = res.fillna(False).astype(bool) if res.dtype != bool else res
            out = res if out is None else (out & res)
            left = right
        return out
    if isinstance(node, ast.Name):
        if node.id not in df.columns:
            raise RuleError(
                f"rule {text!r}: unknown column {node.id!r} (columns: {', '.join(map(str, df.columns))})"
            )
        return df[node.id]
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [_eval(v, df, text) for v in node.elts]
    raise RuleError(f"rule {text!r}: {type(node).__name__} is not allowed")  # pragma: no cover


def _as_series(val, df: pd.DataFrame) -> pd.Series:
    return val if isinstance(val, pd.Series) else pd.Series([val] * len(df), index=df.index)


def _as_mask(val, df: pd.DataFrame, text: str) -> pd.Series:
    s = _as_series(val, df)
    if s.dtype != bool:
        raise RuleError(f"rule {text!r}: 'and'/'or'/'not' need comparisons on both sides")
    return s


def apply_rules(df: pd.DataFrame, rules: list[str] | list[Rule], *, where: str = "the table") -> pd.Series:
    """Label each row by the rules; rows no rule selects get ``<NA>``.

    Args:
        df: one row per item (frame or video) with the metadata columns the rules name.
        rules: rule strings or parsed :class:`Rule` objects.
        where: name of the table, for error messages.

    Returns:
        ``Int64`` Series aligned with ``df`` (``<NA>`` = unlabelled).

    Raises:
        RuleError: a rule that selects no row, or a row two rules give different labels
            (the message names the rules and the first rows).
    """
    parsed = [r if isinstance(r, Rule) else parse_rule(r) for r in rules]
    if not parsed:
        raise RuleError("no label rules given")
    labels = pd.Series(pd.NA, index=df.index, dtype="Int64")
    who = pd.Series("", index=df.index, dtype=object)
    for rule in parsed:
        m = rule.mask(df)
        if not m.any():
            raise RuleError(f"rule {rule.text!r} matches no row of {where} ({len(df)} rows)")
        clash = m & labels.notna() & (labels != rule.label).fillna(False)
        if clash.any():
            idx = list(df.index[clash][:5])
            raise RuleError(
                f"rules {who[clash].iloc[0]!r} and {rule.text!r} give different labels to "
                f"{int(clash.sum())} rows of {where} (first rows: {idx}); make them exclusive"
            )
        labels[m] = rule.label
        who[m] = rule.text
    return labels

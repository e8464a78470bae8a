"""``--where``: a row filter that is data, never code.

A filter is a Python-syntax expression over result columns, parsed with ``ast`` and
evaluated here on whole columns, with nothing but an allow-list of node kinds: column
names, constants (numbers, strings, booleans, None), lists or tuples of constants,
comparisons (``== != < <= > >= in not in is is not``), arithmetic (``+ - * / % **``)
and ``and`` / ``or`` / ``not``. No attribute, call, subscript or ``@`` variable is
accepted, so a filter cannot reach any code (pandas' own ``query`` can).
"""

from __future__ import annotations

import ast
import operator

import pandas as pd

from additive.errors import AdxError

_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_ARITH = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_WHAT = {
    ast.Call: "a function call",
    ast.Attribute: "an attribute",
    ast.Subscript: "a subscript",
    ast.Lambda: "a lambda",
    ast.NamedExpr: "an assignment",
}


def _refuse(where: str, node: ast.AST | None, why: str | None = None) -> AdxError:
    what = why or _WHAT.get(type(node), f"{type(node).__name__}")
    return AdxError(
        f"--where: must be a filter of column names, constants, comparisons and and/or/not, but got {what} in {where!r}"
    )


def filter_rows(df: pd.DataFrame, where: str | None) -> pd.DataFrame:
    """The rows of ``df`` for which ``where`` holds (all rows for an empty filter)."""
    if not where or not where.strip():
        return df
    try:
        tree = ast.parse(where.strip(), mode="eval")
    except SyntaxError as exc:
        raise AdxError(f"--where: cannot evaluate {where!r}: SyntaxError: {exc.msg}") from None
    mask = _eval(tree.body, df, where)
    if isinstance(mask, pd.Series):
        if mask.dtype != bool and not pd.api.types.is_bool_dtype(mask):
            raise _refuse(where, None, "an expression that is not a condition")
        return df[mask.fillna(False).astype(bool)].reset_index(drop=True)
    if isinstance(mask, bool):
        return df.reset_index(drop=True) if mask else df.iloc[0:0].reset_index(drop=True)
    raise _refuse(where, None, "an expression that is not a condition")


def _constant(node: ast.AST, where: str):
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, (bool, int, float, str))):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _constant(node.operand, where)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value
    raise _refuse(where, node)


def _eval(node: ast.AST, df: pd.DataFrame, where: str):
    if isinstance(node, ast.Name):
        if node.id not in df.columns:
            raise AdxError(f"--where: must name result columns, but got unknown column {node.id!r} in {where!r}")
        return df[node.id]
    if isinstance(node, ast.Constant):
        return _constant(node, where)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_constant(e, where) for e in node.elts]
    if isinstance(node, ast.BoolOp):
        values = [_as_mask(_eval(v, df, where), df, where) for v in node.values]
        out = values[0]
        for v in values[1:]:
            out = (out & v) if isinstance(node.op, ast.And) else (out | v)
        return out
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.Not):
            return ~_as_mask(_eval(node.operand, df, where), df, where)
        if isinstance(node.op, ast.USub):
            return -_eval(node.operand, df, where)
        raise _refuse(where, node)
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
        return _ARITH[type(node.op)](_eval(node.left, df, where), _eval(node.right, df, where))
    if isinstance(node, ast.Compare):
        result = None
        left = _eval(node.left, df, where)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, df, where)
            step = _compare(op, left, right, node, where)
            result = step if result is None else (result & step)
            left = right
        return result
    raise _refuse(where, node)


def _compare(op: ast.cmpop, left, right, node: ast.AST, where: str):
    if isinstance(op, (ast.In, ast.NotIn)):
        if not isinstance(left, pd.Series) or not isinstance(right, list):
            raise _refuse(where, node, "'in' other than COLUMN in [constants]")
        inside = left.isin(right)
        return inside if isinstance(op, ast.In) else ~inside
    if isinstance(op, (ast.Is, ast.IsNot)):
        if not isinstance(left, pd.Series) or right is not None:
            raise _refuse(where, node, "'is' other than COLUMN is None")
        return left.isna() if isinstance(op, ast.Is) else left.notna()
    if type(op) in _COMPARE:
        if isinstance(right, list) or isinstance(left, list):
            raise _refuse(where, node, "a comparison with a list")
        return _COMPARE[type(op)](left, right)
    raise _refuse(where, node)


def _as_mask(value, df: pd.DataFrame, where: str) -> pd.Series:
    if isinstance(value, bool):
        return pd.Series(value, index=df.index)
    if isinstance(value, pd.Series) and pd.api.types.is_bool_dtype(value):
        return value.fillna(False).astype(bool)
    raise _refuse(where, None, "and/or/not of something that is not a condition")

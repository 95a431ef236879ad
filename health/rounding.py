"""The one rounding rule of scores, shared by the Python and the SQL paths.

`round_half_up(x, n)`: the float's shortest decimal form (Python's repr, PostgreSQL's float8
text output) rounded half away from zero, which is exactly what PostgreSQL's
`round(x::text::numeric, n)` does. Python's built-in round() is half-even on the binary value
(3.125 -> 3.12, 2.675 -> 2.67) and has no SQL twin; the two rules differ only on such exact ties.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

_QUANTUM = {2: Decimal("0.01"), 3: Decimal("0.001"), 4: Decimal("0.0001")}


def round_half_up(value: float, digits: int) -> float:
    return float(Decimal(repr(value)).quantize(_QUANTUM[digits], rounding=ROUND_HALF_UP))

"""Other apps register here what must go when a customer is purged (events, signals, history).

Kept as an explicit registry, not Django signals, so a reader finds every purger with one grep.
"""

from __future__ import annotations

from collections.abc import Callable

CustomerPurger = Callable[[str], None]
_purgers: list[CustomerPurger] = []


def register_customer_purger(purger: CustomerPurger) -> CustomerPurger:
    if purger not in _purgers:
        _purgers.append(purger)
    return purger


def run_customer_purgers(customer_id: str) -> None:
    for purger in _purgers:
        purger(customer_id)

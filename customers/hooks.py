"""Other apps register here what must go when a customer is purged (events, signals, history),
and what must forget it the moment it is deleted (cached reads), before the purge runs.

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


CustomerDeleted = Callable[[str, str], None]  # (workspace_id, customer_id), after the commit
_deleted_listeners: list[CustomerDeleted] = []


def on_customer_deleted(listener: CustomerDeleted) -> CustomerDeleted:
    if listener not in _deleted_listeners:
        _deleted_listeners.append(listener)
    return listener


def notify_customer_deleted(workspace_id: str, customer_id: str) -> None:
    for listener in _deleted_listeners:
        listener(workspace_id, customer_id)


ChurnChanged = Callable[[str, str], None]  # (workspace_id, customer_id), after the commit
_churn_listeners: list[ChurnChanged] = []


def on_churn_changed(listener: ChurnChanged) -> ChurnChanged:
    """Called after a churn or win-back commits (health rescores the customer: its status)."""
    if listener not in _churn_listeners:
        _churn_listeners.append(listener)
    return listener


def notify_churn_changed(workspace_id: str, customer_id: str) -> None:
    for listener in _churn_listeners:
        listener(workspace_id, customer_id)

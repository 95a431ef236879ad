from __future__ import annotations

from celery import shared_task

from customers import services


@shared_task(acks_late=True)
def purge_customer(customer_id: str) -> str:
    return "purged" if services.customer_purge(customer_id=customer_id) else "nothing to purge"


@shared_task
def purge_pending_customers() -> str:
    return f"purged {services.purge_pending_customers()}"

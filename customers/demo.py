"""Demo customers for `manage.py seed_demo`: about 50 companies with realistic attributes."""

from __future__ import annotations

import random

from customers import services
from customers.models import Customer
from perly.models import Workspace

_PREFIXES = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Massive",
    "Oscorp",
    "Gringotts",
    "Monarch",
    "Aperture",
    "Black Mesa",
    "Pied Piper",
    "Dunder",
    "Prestige",
    "Sterling",
    "Bluth",
    "Los Pollos",
    "Paper Street",
]
_SUFFIXES = ["Labs", "Logistics", "Analytics", "Health", "Systems", "Foods", "Studio", "Capital"]
_PLANS = ["starter", "growth", "growth", "business", "enterprise"]
_OWNERS = ["maya@perly-demo.io", "jon@perly-demo.io", "ines@perly-demo.io", "li@perly-demo.io"]
_STAGES = ["trial", "onboarding", "active", "active", "active", "active", "churned"]
_REGIONS = ["emea", "na", "apac", "latam"]


def seed(workspace: Workspace, count: int = 50) -> list[Customer]:
    rng = random.Random(42)  # the same demo every time
    customers = []
    names = set()
    while len(names) < count:
        names.add(f"{rng.choice(_PREFIXES)} {rng.choice(_SUFFIXES)}")
    for index, name in enumerate(sorted(names)):
        slug = name.lower().replace(" ", "")
        domain = f"{slug}.example.com"
        customers.append(
            services.customer_create(
                workspace_id=workspace.id,
                data={
                    "name": name,
                    "email": f"billing@{domain}",
                    "domain": domain,
                    "external_id": f"acct_{1000 + index}",
                    "plan": rng.choice(_PLANS),
                    "owner": rng.choice(_OWNERS),
                    "lifecycle_stage": rng.choice(_STAGES),
                    "metadata": {"region": rng.choice(_REGIONS), "seats": str(rng.randint(3, 400))},
                },
            )
        )
    return customers

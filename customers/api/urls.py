from django.urls import path
from rest_framework.routers import SimpleRouter

from customers.api.views import CustomerOutcomeViewSet, CustomerViewSet

router = SimpleRouter(trailing_slash=False)
router.register("customers", CustomerViewSet, basename="customer")

urlpatterns = [
    path(
        "customers/<str:pk>/outcomes",
        CustomerOutcomeViewSet.as_view({"get": "list"}),
        name="customer-outcomes",
    ),
    *router.urls,
]

from django.urls import path
from rest_framework.routers import SimpleRouter

from webhooks.api.views import WebhookDeliveryViewSet, WebhookEndpointViewSet

router = SimpleRouter(trailing_slash=False)
router.register("webhooks", WebhookEndpointViewSet, basename="webhook-endpoint")

deliveries = WebhookDeliveryViewSet.as_view({"get": "list"})
delivery = WebhookDeliveryViewSet.as_view({"get": "retrieve"})
delivery_retry = WebhookDeliveryViewSet.as_view({"post": "retry"})

urlpatterns = [
    *router.urls,
    path("webhooks/<str:webhook_id>/deliveries", deliveries, name="webhook-delivery-list"),
    path("webhooks/<str:webhook_id>/deliveries/<str:pk>", delivery, name="webhook-delivery-detail"),
    path(
        "webhooks/<str:webhook_id>/deliveries/<str:pk>/retry", delivery_retry, name="webhook-delivery-retry"
    ),
]

from django.urls import path
from rest_framework.routers import SimpleRouter

from events.api.views import EventTypeViewSet, EventViewSet

router = SimpleRouter(trailing_slash=False)
router.register("events", EventViewSet, basename="event")

urlpatterns = [
    path("events/types", EventTypeViewSet.as_view({"get": "list"}), name="event-type-list"),
    *router.urls,
]

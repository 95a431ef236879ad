from __future__ import annotations

from django.db import models
from django.utils import timezone

from perly.ids import id_factory
from perly.scopes import ALL_SCOPES  # noqa: F401  (re-exported for admin forms)


class Workspace(models.Model):
    """A tenant: one company using Perly. Every domain row belongs to exactly one."""

    id = models.CharField(primary_key=True, max_length=32, default=id_factory("ws"), editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=63, unique=True)
    is_test = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class ApiKey(models.Model):
    """A workspace's API key. Only a SHA-256 hash of the secret is stored."""

    id = models.CharField(primary_key=True, max_length=32, default=id_factory("key"), editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200, blank=True)
    # First characters of the key, shown to staff so a leaked key can be identified.
    prefix = models.CharField(max_length=20, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list)
    rate_limit_read = models.PositiveIntegerField(null=True, blank=True)
    rate_limit_write = models.PositiveIntegerField(null=True, blank=True)
    rate_limit_events = models.PositiveIntegerField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name or self.id} ({self.prefix}…)"


class IdempotencyRecord(models.Model):
    """The first response to a POST carrying an Idempotency-Key, replayed for 24 hours."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.BinaryField(null=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "key"], name="idempotency_unique_key")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

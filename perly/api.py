"""The base classes every resource's API is built on: tenant scoping, strict input, metadata."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers, viewsets
from rest_framework.exceptions import ErrorDetail, MethodNotAllowed, NotFound, ValidationError
from rest_framework.fields import empty

from perly.errors import not_found_message
from perly.ids import is_valid_id
from perly.lookup import fetch_one
from perly.pagination import PAGINATION_PARAMS

METADATA_MAX_KEYS = 50
METADATA_KEY_MAX_LENGTH = 40
METADATA_VALUE_MAX_LENGTH = 500


def _error(param: str, message: str, code: str = "parameter_invalid") -> ValidationError:
    return ValidationError({param: [ErrorDetail(message, code=code)]})


class WorkspaceScopedViewSet(viewsets.GenericViewSet):
    """Every queryset a resource uses passes through `get_queryset`, which filters by the
    key's workspace. Subclasses narrow it in `scope_queryset` and cannot replace it."""

    queryset = None
    scope_resource: str | None = None
    id_prefix: str = ""
    resource_name: str = "object"
    lookup_value_regex = "[^/]+"
    # No OPTIONS (DRF's metadata would run object lookups without an id) and no TRACE: a 405.
    http_method_names = ["get", "post", "put", "patch", "delete", "head"]
    extra_query_params: tuple[str, ...] = ()
    # Query parameters that read another resource, with the scope each needs (perly.scopes).
    param_scopes: dict[str, str] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(f"{cls.__name__} must override scope_queryset(), not get_queryset().")

    @property
    def workspace_id(self) -> str:
        return self.request.auth.workspace_id

    def scope_queryset(self, queryset):
        return queryset

    def get_queryset(self):
        return self.scope_queryset(self._workspace_rows(self.workspace_id))

    def _workspace_rows(self, workspace_id: str):
        return self.queryset.model._default_manager.filter(workspace_id=workspace_id)

    def get_object(self):
        object_id = self.kwargs[self.lookup_url_kwarg or self.lookup_field]
        not_found = NotFound(not_found_message(self.resource_name, object_id))
        if not is_valid_id(object_id, self.id_prefix):
            raise not_found
        if type(self).scope_queryset is WorkspaceScopedViewSet.scope_queryset:
            # Same rows as get_queryset(), without recompiling the SQL per request (perly.lookup).
            obj = fetch_one(type(self), self._workspace_rows, self.workspace_id, object_id)
        else:  # a narrowing that may depend on the request: plain ORM
            obj = next(iter(self.get_queryset().filter(pk=object_id)[:1]), None)
        if obj is None:
            raise not_found
        self.check_object_permissions(self.request, obj)
        return obj

    def allowed_query_params(self) -> set[str]:
        allowed = set(self.extra_query_params)
        if self.action == "list":
            allowed.update(PAGINATION_PARAMS)
            if getattr(self, "filterset_class", None) is not None:
                allowed.update(self.filterset_class.base_filters)
        return allowed

    def initial(self, request, *args, **kwargs):
        # An undeclared method is a 405 whatever its query string says (DRF would check it later).
        method = request.method.lower()
        if method not in self.http_method_names or not hasattr(self, method):
            raise MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)
        unknown = sorted(set(request.query_params) - self.allowed_query_params())
        if unknown:
            raise ValidationError(
                {
                    name: [
                        ErrorDetail(f"Received unknown query parameter: {name}.", code="parameter_unknown")
                    ]
                    for name in unknown
                }
            )
        for name in set(request.query_params):
            if len(request.query_params.getlist(name)) > 1 and name not in getattr(
                self, "repeatable_params", ()
            ):
                raise _error(name, f"{name} may be given only once.")
        for name in sorted(request.query_params):
            # A parameter that is present must say something: `?created_before=` is a mistake,
            # not "no filter" (the OpenAPI hook documents minLength 1 for every query parameter).
            values = request.query_params.getlist(name)
            if any(value == "" for value in values):
                raise _error(name, f"{name} must not be empty; leave the parameter out instead.")
            # PostgreSQL refuses NUL in text: refuse it here once, not in every filter.
            if any("\x00" in value for value in values):
                raise _error(name, f"{name} must not contain NUL characters (\\u0000).")


def _too_long(field, value) -> bool:
    max_length = getattr(field, "max_length", None)
    return (
        isinstance(field, serializers.CharField)
        and max_length is not None
        and isinstance(value, str)
        and len(value) > max_length
    )


def _not_a_string(field, value) -> bool:
    return isinstance(field, serializers.CharField) and value is not None and not isinstance(value, str)


class StrictSerializerMixin:
    """Rejects unknown fields and values for read-only fields instead of ignoring them."""

    def run_validation(self, data=empty):
        # Before DRF's empty-value handling, so a JSON `null` body gets the same answer as `[]`.
        if data is not empty and not isinstance(data, dict):
            raise ValidationError(
                {
                    "non_field_errors": [
                        ErrorDetail("The request body must be a JSON object.", code="parameter_invalid")
                    ]
                }
            )
        return super().run_validation(data)

    def to_internal_value(self, data):
        errors = {}
        for name in data:
            field = self.fields.get(name)
            if field is None:
                errors[name] = [ErrorDetail(f"Received unknown parameter: {name}.", code="parameter_unknown")]
            elif field.read_only:
                errors[name] = [
                    ErrorDetail(f"{name} is read-only and cannot be set.", code="parameter_read_only")
                ]
            elif _not_a_string(field, data[name]):
                # DRF's CharField would turn 42 into "42": a client sending the wrong type should
                # hear so, as the schema says `type: string`.
                errors[name] = [ErrorDetail("Must be a string.", code="invalid")]
            elif _too_long(field, data[name]):
                # DRF trims whitespace before checking max_length; the documented maxLength (and
                # any client validating against it) counts what was sent.
                errors[name] = [
                    ErrorDetail(
                        f"Ensure this field has no more than {field.max_length} characters.",
                        code="max_length",
                    )
                ]
        if errors:
            raise ValidationError(errors)
        return super().to_internal_value(data)


@extend_schema_field(
    {
        "type": "object",
        "maxProperties": METADATA_MAX_KEYS,
        "additionalProperties": {"type": "string", "maxLength": METADATA_VALUE_MAX_LENGTH, "nullable": True},
        "description": (
            f"Up to {METADATA_MAX_KEYS} keys of at most {METADATA_KEY_MAX_LENGTH} characters, string values "
            f'of at most {METADATA_VALUE_MAX_LENGTH}. On update keys merge; null or "" removes a key.'
        ),
    }
)
class MetadataField(serializers.Field):
    """A flat object of string values (CONVENTIONS: 50 keys, 40-char keys, 500-char values).

    Input values may be null or "" to mean "remove this key"; merging is the service's job."""

    default_error_messages = {"invalid": "metadata must be a JSON object of string values."}

    def to_representation(self, value):
        return value or {}

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("invalid")
        errors = {}
        for key, value in data.items():
            if not key or len(key) > METADATA_KEY_MAX_LENGTH:
                errors[key] = [f"Metadata keys must be 1 to {METADATA_KEY_MAX_LENGTH} characters."]
            elif value is not None and not isinstance(value, str):
                errors[key] = ["Metadata values must be strings (or null to remove the key)."]
            elif value is not None and len(value) > METADATA_VALUE_MAX_LENGTH:
                errors[key] = [f"Metadata values must be at most {METADATA_VALUE_MAX_LENGTH} characters."]
        if errors:
            raise ValidationError(errors)
        if len(data) > METADATA_MAX_KEYS:
            raise ValidationError(f"metadata can have at most {METADATA_MAX_KEYS} keys.")
        return data


def merge_metadata(current: dict, changes: dict) -> dict:
    """PATCH semantics: keys set to null or "" are removed, others are set. Enforces the key cap."""
    merged = dict(current or {})
    for key, value in changes.items():
        if value is None or value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > METADATA_MAX_KEYS:
        raise _error("metadata", f"metadata can have at most {METADATA_MAX_KEYS} keys.")
    return merged

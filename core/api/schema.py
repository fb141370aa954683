"""How the OpenAPI schema describes the portal's own authentication (imported when the core app is ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class PersonalTokenScheme(OpenApiAuthenticationExtension):
    target_class = "core.api.auth.PersonalTokenAuthentication"
    name = "personalToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token (page “API tokens”), sent as `Authorization: Bearer <token>`; "
            "`Authorization: Token <token>` is accepted too.",
        }

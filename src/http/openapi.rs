//! The OpenAPI document's fixed parts; the paths come from the routes themselves.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Almanac",
        description = "An event store with typed trait queries. It speaks the OpenStack Panko v2 \
API (events, event types, traits, capabilities) and adds ingestion. Errors always have the shape \
{\"error_message\": {\"faultcode\", \"faultstring\", \"debuginfo\"}}; every response carries \
x-openstack-request-id and X-Request-Id. Paths under /v2 also answer with a trailing slash; \
other methods on a known path get 405 with Allow. \
Authentication (auth = token, the default): send a token as Authorization: Bearer <token> or \
X-Auth-Token: <token>; missing, unknown, revoked and expired tokens get 401, a caller the policy \
or the token's own restriction refuses gets 403. With auth = headers, the X-User-Id, \
X-Project-Id and X-Roles headers are trusted instead (behind Keystone's middleware or a gateway).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "versions", description = "API versions and health"),
        (name = "capabilities", description = "What the server supports"),
        (name = "events", description = "Query, show and ingest events"),
        (name = "event_types", description = "Event types and their traits (admin)"),
        (name = "tokens", description = "API tokens (admin)"),
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail)),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("x_auth_token" = []))
)]
pub struct ApiDoc;

/// The two ways to present a token (auth = token).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An Almanac token: Authorization: Bearer alm_…"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "x_auth_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Auth-Token",
                "The same token as Keystone clients (pankoclient) send it",
            ))),
        );
    }
}

// Only describes the document; the decoder in `crate::ingest` does the parsing.
/// A trait value as ingested: a string or a JSON number (objects, arrays, booleans and null are
/// refused).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum TraitValue {
    String(String),
    Number(f64),
}

//! The OpenAPI document's fixed parts; the paths come from the routes themselves.

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Almanac",
        description = "An event store with typed trait queries. It speaks the OpenStack Panko v2 \
API (events, event types, traits, capabilities) and adds ingestion. Errors always have the shape \
{\"error_message\": {\"faultcode\", \"faultstring\", \"debuginfo\"}}; every response carries \
x-openstack-request-id and X-Request-Id. Paths under /v2 also answer with a trailing slash; \
other methods on a known path get 405 with Allow.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "versions", description = "API versions and health"),
        (name = "capabilities", description = "What the server supports"),
        (name = "events", description = "Query, show and ingest events"),
        (name = "event_types", description = "Event types and their traits (admin)"),
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail))
)]
pub struct ApiDoc;

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

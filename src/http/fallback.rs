//! What happens when no route matched: 405 with `Allow` for a known path and another method
//! (an empty 200 for OPTIONS, as Panko), 404 otherwise. The known paths and their methods come
//! from the OpenAPI document, so this table cannot drift from the routes.

use actix_web::dev::ResourceDef;
use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;

pub struct RouteTable {
    routes: Vec<(ResourceDef, String)>,
}

impl RouteTable {
    pub fn from_openapi(api: &utoipa::openapi::OpenApi) -> RouteTable {
        let mut routes = Vec::new();
        for (path, item) in &api.paths.paths {
            let mut methods = Vec::new();
            let ops = [
                ("GET", item.get.is_some()),
                ("POST", item.post.is_some()),
                ("PUT", item.put.is_some()),
                ("PATCH", item.patch.is_some()),
                ("DELETE", item.delete.is_some()),
            ];
            for (name, present) in ops {
                if present {
                    methods.push(name);
                }
            }
            routes.push((ResourceDef::new(path.as_str()), methods.join(", ")));
        }
        RouteTable { routes }
    }

    fn allowed(&self, path: &str) -> Option<&str> {
        self.routes
            .iter()
            .find(|(def, _)| def.is_match(path))
            .map(|(_, allow)| allow.as_str())
    }
}

pub async fn fallback(
    req: HttpRequest,
    table: web::Data<RouteTable>,
) -> Result<HttpResponse, ApiError> {
    match table.allowed(req.path()) {
        Some(allow) if req.method() == Method::OPTIONS => Ok(HttpResponse::Ok()
            .insert_header((header::ALLOW, allow.to_string()))
            .finish()),
        Some(allow) => Err(ApiError::MethodNotAllowed {
            method: req.method().to_string(),
            allow: allow.to_string(),
        }),
        None => Err(ApiError::not_found("The resource could not be found.")),
    }
}

//! Route handlers: parse and authorize, then call the store.

mod event_types;
mod events;
mod root;
mod tokens;

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(root::versions)
        .service(root::v2_version)
        .service(root::healthcheck)
        .service(root::readyz)
        .service(root::metrics)
        .service(root::capabilities)
        .service(events::list_events)
        .service(events::ingest_events)
        .service(events::show_event)
        .service(event_types::list_event_types)
        .service(event_types::show_event_type)
        .service(event_types::list_traits)
        .service(event_types::list_trait_values)
        .service(tokens::create_token)
        .service(tokens::list_tokens)
        .service(tokens::show_token)
        .service(tokens::revoke_token);
}

//! The standard query mix, with parameters taken from the generated data, and a check that every
//! request of it succeeds with a non-empty answer before it is put under load.

use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use super::credentials::{Credentials, Headers};
use super::gen::{self, Facts, DAY_MICROS, START_MICROS};

/// Page size of every list query.
const LIMIT: usize = 100;
/// The page query 6 reads.
const DEEP_PAGE: usize = 50;
/// Projects the project-scoped queries (2, 5, 6) cycle over: the largest ones.
const PROJECT_VARIANTS: usize = 4;
/// Days of the month (0-based) whose one-day windows query 4 cycles over.
const DAYS: [i64; 4] = [2, 9, 16, 23];

/// One HTTP request of a query: a GET path and its identity headers.
pub struct Request {
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    expect: Expect,
}

enum Expect {
    /// A JSON array with at least one element.
    NonEmptyArray,
    /// The event with this message_id.
    Event(String),
}

/// One line of the mix; wrk cycles over its requests.
pub struct Query {
    pub id: &'static str,
    pub name: String,
    pub requests: Vec<Request>,
}

/// A member (not admin): a read-only member token of the user's project.
fn member(creds: &Credentials, facts: &Facts, user: usize) -> anyhow::Result<Headers> {
    creds.member(
        &facts.user_ids[user],
        &facts.project_ids[user % gen::PROJECTS],
    )
}

/// `/v2/events?…` with q items in Panko's parallel-array encoding (field, op, value, type).
fn events_path(q: &[(&str, &str, &str, &str)], params: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (field, op, value, ty) in q {
        query
            .append_pair("q.field", field)
            .append_pair("q.op", op)
            .append_pair("q.value", value)
            .append_pair("q.type", ty);
    }
    for (key, value) in params {
        query.append_pair(key, value);
    }
    format!("/v2/events?{}", query.finish())
}

const ALL_TENANTS: (&str, &str, &str, &str) = ("all_tenants", "eq", "true", "");
const LIMIT_100: (&str, &str) = ("limit", "100");

fn list(path: String, headers: Headers) -> Request {
    Request {
        path,
        headers,
        expect: Expect::NonEmptyArray,
    }
}

/// Query 2: an admin's one-trait filter across tenants.
fn project_path(project_id: &str, marker: Option<&str>) -> String {
    let q = [ALL_TENANTS, ("project_id", "eq", project_id, "string")];
    match marker {
        Some(m) => events_path(&q, &[LIMIT_100, ("marker", m)]),
        None => events_path(&q, &[LIMIT_100]),
    }
}

/// Builds the mix. Query 6 needs markers, found by paging query 2 through the API.
pub fn mix(facts: &Facts, base: &str, creds: &Credentials) -> anyhow::Result<Vec<Query>> {
    let admin = || creds.admin();
    let agent = agent();
    let projects: Vec<usize> = facts
        .projects_by_size()
        .into_iter()
        .filter(|&p| facts.per_project[p] > 0)
        .take(PROJECT_VARIANTS)
        .collect();
    anyhow::ensure!(!projects.is_empty(), "the data set has no events");
    let types: Vec<&str> = gen::event_types().collect();
    let mut mix = Vec::new();

    mix.push(Query {
        id: "1",
        name: "newest page (admin, all_tenants, sort=generated:desc)".into(),
        requests: vec![list(
            events_path(&[ALL_TENANTS], &[LIMIT_100, ("sort", "generated:desc")]),
            admin(),
        )],
    });

    mix.push(Query {
        id: "2",
        name: "project_id eq {p} (string trait)".into(),
        requests: projects
            .iter()
            .map(|&p| list(project_path(&facts.project_ids[p], None), admin()))
            .collect(),
    });

    mix.push(Query {
        id: "3",
        name: "memory_mb gt 2048 (integer) and cpu_util lt 1.5 (float)".into(),
        requests: vec![list(
            events_path(
                &[
                    ALL_TENANTS,
                    ("memory_mb", "gt", "2048", "integer"),
                    ("cpu_util", "lt", "1.5", "float"),
                ],
                &[LIMIT_100],
            ),
            admin(),
        )],
    });

    let mut windows = Vec::new();
    for (kind, t) in types.iter().enumerate() {
        let counts = &facts.per_type_day[kind];
        // The standard days, where the type has events; a small data set may need another day.
        let mut days: Vec<i64> = DAYS
            .into_iter()
            .filter(|&d| counts[d as usize] > 0)
            .collect();
        if days.is_empty() {
            let busiest = (0..counts.len()).max_by_key(|&d| (counts[d], std::cmp::Reverse(d)));
            days.extend(busiest.filter(|&d| counts[d] > 0).map(|d| d as i64));
        }
        for day in days {
            let start = gen::iso(START_MICROS + day * DAY_MICROS);
            let end = gen::iso(START_MICROS + (day + 1) * DAY_MICROS);
            let q = [
                ALL_TENANTS,
                ("event_type", "eq", t, ""),
                ("start_timestamp", "ge", &start, ""),
                ("end_timestamp", "le", &end, ""),
            ];
            windows.push(list(events_path(&q, &[LIMIT_100]), admin()));
        }
    }
    mix.push(Query {
        id: "4",
        name: "event_type eq {t}, one-day window".into(),
        requests: windows,
    });

    mix.push(Query {
        id: "5",
        name: "member's default list (project + user scope)".into(),
        requests: projects
            .iter()
            .flat_map(|&p| facts.busiest_users(p, 2))
            .map(|u| {
                Ok(list(
                    events_path(&[], &[LIMIT_100]),
                    member(creds, facts, u)?,
                ))
            })
            .collect::<anyhow::Result<_>>()?,
    });

    mix.push(deep_pages(&agent, base, creds, facts, &projects)?);

    mix.push(Query {
        id: "7",
        name: "GET /v2/events/{id} (the owner)".into(),
        requests: facts
            .samples
            .iter()
            .map(|s| {
                Ok(Request {
                    path: format!("/v2/events/{}", s.message_id),
                    headers: member(creds, facts, s.user)?,
                    expect: Expect::Event(s.message_id.clone()),
                })
            })
            .collect::<anyhow::Result<_>>()?,
    });

    mix.push(Query {
        id: "8a",
        name: "GET /v2/event_types".into(),
        requests: vec![list("/v2/event_types".into(), admin())],
    });
    mix.push(Query {
        id: "8b",
        name: "GET /v2/event_types/{t}/traits".into(),
        requests: types
            .iter()
            .map(|t| list(format!("/v2/event_types/{t}/traits"), admin()))
            .collect(),
    });
    Ok(mix)
}

/// Query 6: page 50 of query 2, for each project that has 50 pages. A small data set may have
/// none; then the largest project's deepest page is used, and the name says which page.
fn deep_pages(
    agent: &ureq::Agent,
    base: &str,
    creds: &Credentials,
    facts: &Facts,
    projects: &[usize],
) -> anyhow::Result<Query> {
    let mut requests = Vec::new();
    let mut deepest = None;
    for &p in projects {
        let project_id = &facts.project_ids[p];
        let Some((page, marker)) = deepest_marker(agent, base, creds, project_id)? else {
            continue;
        };
        let request = list(project_path(project_id, Some(&marker)), creds.admin());
        if page == DEEP_PAGE {
            requests.push(request);
        } else if deepest.is_none() {
            deepest = Some((page, request));
        }
    }
    if requests.is_empty() {
        let (page, request) = deepest
            .context("query 6 needs a project with more than 100 events: generate more events")?;
        eprintln!("bench: no project has {DEEP_PAGE} pages; query 6 reads page {page}");
        return Ok(Query {
            id: "6",
            name: format!("page {page} of query 2 (marker)"),
            requests: vec![request],
        });
    }
    Ok(Query {
        id: "6",
        name: format!("page {DEEP_PAGE} of query 2 (marker)"),
        requests,
    })
}

/// Pages through query 2 and returns the deepest page (at most 50) that has events, with the
/// marker that reads it; `None` if the project fits on one page.
fn deepest_marker(
    agent: &ureq::Agent,
    base: &str,
    creds: &Credentials,
    project_id: &str,
) -> anyhow::Result<Option<(usize, String)>> {
    let mut found: Option<(usize, String)> = None;
    for page in 1..DEEP_PAGE {
        let marker = found.as_ref().map(|(_, m)| m.as_str());
        let request = list(project_path(project_id, marker), creds.admin());
        let events = get_json(agent, base, &request)?;
        let events = events.as_array().context("query 2 did not return a list")?;
        if events.len() < LIMIT {
            break;
        }
        let last = events[LIMIT - 1]["message_id"]
            .as_str()
            .context("an event without a message_id")?;
        found = Some((page + 1, last.to_string()));
    }
    Ok(found)
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build()
}

fn get_json(agent: &ureq::Agent, base: &str, request: &Request) -> anyhow::Result<Value> {
    let mut call = agent.get(&format!("{base}{}", request.path));
    for (name, value) in &request.headers {
        call = call.set(name, value);
    }
    match call.call() {
        Ok(response) => response
            .into_json()
            .with_context(|| format!("GET {}: the body is not JSON", request.path)),
        Err(ureq::Error::Status(status, response)) => {
            let text = response.into_string().unwrap_or_default();
            anyhow::bail!("GET {} answered {status}: {text}", request.path)
        }
        Err(error) => Err(error).with_context(|| format!("GET {}", request.path)),
    }
}

/// Sends every request of the mix once and checks the answer, so that a wrong parameter fails
/// the run here instead of being measured as a fast empty page. It also warms the caches.
pub fn verify(base: &str, mix: &[Query]) -> anyhow::Result<()> {
    let agent = agent();
    for query in mix {
        for request in &query.requests {
            let body = get_json(&agent, base, request)
                .with_context(|| format!("query {} ({})", query.id, query.name))?;
            let ok = match &request.expect {
                Expect::NonEmptyArray => body.as_array().is_some_and(|a| !a.is_empty()),
                Expect::Event(id) => body["message_id"].as_str() == Some(id.as_str()),
            };
            anyhow::ensure!(
                ok,
                "query {} ({}): GET {} returned an unexpected body: {:.300}",
                query.id,
                query.name,
                request.path,
                body.to_string()
            );
        }
    }
    Ok(())
}

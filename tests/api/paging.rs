//! `limit`, `sort` and `marker`: paging through events that share timestamps never skips or
//! repeats one, whatever the sort keys (message_id always ends the order, in byte order on both
//! backends).

use std::cmp::Ordering;

use serde_json::json;

use crate::backend_tests;
use crate::support::{app, app_with, event, headers_config, s, Backend};

backend_tests!(
    paging_visits_every_event_once_in_order,
    paging_with_a_filter,
    default_and_configured_limits,
);

const STAMPS: [&str; 3] = [
    "2014-01-01T00:00:00",
    "2014-01-01T00:00:00.5",
    "2014-01-01T01:00:00",
];

/// 41 events over three timestamps, with message_ids that sort differently in byte order and
/// in a locale (upper/lower case, digits, punctuation).
fn corpus() -> Vec<(String, usize)> {
    let prefixes = ["A", "a", "B", "_", "z", "0", "Z~"];
    (0..41)
        .map(|i| {
            (
                format!("{}{:02}", prefixes[i % prefixes.len()], i),
                (i * 7) % 3,
            )
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Key {
    Generated,
    MessageId,
}

/// The order the contract promises: the given keys (default generated asc), cut after
/// message_id, then message_id in the direction of the last key.
fn expected_order(sort: &[&str], events: &[(String, usize)]) -> Vec<String> {
    let mut keys: Vec<(Key, bool)> = Vec::new();
    for spec in sort {
        let (k, dir) = spec.split_once(':').unwrap_or((spec, "asc"));
        let key = if k == "generated" {
            Key::Generated
        } else {
            Key::MessageId
        };
        if keys.iter().any(|(existing, _)| *existing == key) {
            continue;
        }
        keys.push((key, dir == "desc"));
        if key == Key::MessageId {
            break;
        }
    }
    if keys.is_empty() {
        keys.push((Key::Generated, false));
    }
    if keys.last().map(|(k, _)| *k) != Some(Key::MessageId) {
        let last_desc = keys.last().map(|(_, d)| *d).unwrap_or(false);
        keys.push((Key::MessageId, last_desc));
    }
    let mut sorted = events.to_vec();
    sorted.sort_by(|a, b| {
        for (key, desc) in &keys {
            let ord = match key {
                Key::Generated => a.1.cmp(&b.1),
                Key::MessageId => a.0.as_bytes().cmp(b.0.as_bytes()),
            };
            let ord = if *desc { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    });
    sorted.into_iter().map(|(id, _)| id).collect()
}

const SORTS: &[&[&str]] = &[
    &[],
    &["generated"],
    &["generated:desc"],
    &["message_id"],
    &["message_id:desc"],
    &["generated:asc", "message_id:desc"],
    &["generated:desc", "message_id:asc"],
    &["message_id", "generated:desc"],
    &["generated:desc", "generated:asc"],
    &["generated:"],
];

async fn paging_visits_every_event_once_in_order(backend: Backend) {
    let app = app(backend).await;
    let events = corpus();
    let batch: Vec<_> = events
        .iter()
        .map(|(id, stamp)| event(id, "paged", STAMPS[*stamp], json!([s("k", "v")])))
        .collect();
    app.ingest(json!(batch)).await;

    for sort in SORTS {
        let expected = expected_order(sort, &events);
        let sort_params: String = sort.iter().map(|s| format!("&sort={s}")).collect();
        let base = format!("/v2/events?q.field=all_tenants&q.value=true{sort_params}");
        let everything = app.get_admin(&format!("{base}&limit=1000")).await.ids();
        assert_eq!(everything, expected, "full listing, sort {sort:?}");

        for limit in [1, 3, 7, 41, 50] {
            let mut seen = Vec::new();
            let mut marker: Option<String> = None;
            loop {
                let mut uri = format!("{base}&limit={limit}");
                if let Some(m) = &marker {
                    uri.push_str(&format!("&marker={m}"));
                }
                let page = app.get_admin(&uri).await.ids();
                assert!(page.len() <= limit);
                seen.extend(page.iter().cloned());
                if page.len() < limit {
                    break;
                }
                marker = page.last().cloned();
                assert!(
                    seen.len() <= events.len(),
                    "paging does not end, sort {sort:?}"
                );
            }
            assert_eq!(seen, expected, "pages of {limit}, sort {sort:?}");
        }
    }
}

async fn paging_with_a_filter(backend: Backend) {
    let app = app(backend).await;
    let batch: Vec<_> = (0..30)
        .map(|i| {
            let color = if i % 3 == 0 { "red" } else { "blue" };
            event(
                &format!("m{i:02}"),
                "x",
                STAMPS[i % 2],
                json!([s("color", color)]),
            )
        })
        .collect();
    app.ingest(json!(batch)).await;
    let base = "/v2/events?q.field=all_tenants&q.value=1&q.field=color&q.value=red&sort=generated:desc&limit=4";
    let first = app.get_admin(base).await.ids();
    let second = app
        .get_admin(&format!(
            "{base}&marker={}",
            first.last().expect("a full page")
        ))
        .await
        .ids();
    let third = app
        .get_admin(&format!(
            "{base}&marker={}",
            second.last().expect("a full page")
        ))
        .await
        .ids();
    let all: Vec<String> = first.into_iter().chain(second).chain(third).collect();
    // red: m00, m03, …, m27 (10 events); even numbers at stamp 0, odd at stamp 1; desc.
    let mut expected: Vec<(String, usize)> = (0..30)
        .filter(|i| i % 3 == 0)
        .map(|i| (format!("m{i:02}"), i % 2))
        .collect();
    expected.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
    let expected: Vec<String> = expected.into_iter().map(|(id, _)| id).collect();
    assert_eq!(all, expected);
}

async fn default_and_configured_limits(backend: Backend) {
    let app = app(backend).await;
    let batch: Vec<_> = (0..120)
        .map(|i| event(&format!("d{i:03}"), "x", STAMPS[0], json!([])))
        .collect();
    app.ingest(json!(batch)).await;
    let all = "/v2/events?q.field=all_tenants&q.value=1";
    assert_eq!(
        app.get_admin(all).await.ids().len(),
        100,
        "Panko's default page"
    );
    assert_eq!(
        app.get_admin(&format!("{all}&limit=0")).await.ids().len(),
        100,
        "0 means default"
    );
    assert_eq!(
        app.get_admin(&format!("{all}&limit=1")).await.ids(),
        ["d000"]
    );
    assert_eq!(
        app.get_admin(&format!("{all}&limit=10000"))
            .await
            .ids()
            .len(),
        120
    );

    let mut config = headers_config();
    config.limits.default_limit = 10;
    config.limits.max_limit = 50;
    let small = app_with(backend, config).await;
    small.ingest(json!(batch)).await;
    assert_eq!(small.get_admin(all).await.ids().len(), 10);
    let fault = small.get_admin(&format!("{all}&limit=51")).await.error(400);
    assert!(fault.contains("50"), "{fault}");
}

//! `GET /v2/events`: every operator × every type, the three q encodings, event fields, trait
//! rendering.

use actix_web::test::TestRequest;
use serde_json::json;

use crate::backend_tests;
use crate::support::{admin, app, event, s, t, Backend};

backend_tests!(
    every_operator_on_every_type,
    three_encodings_give_the_same_answer,
    event_fields,
    timestamps_are_inclusive_and_offsets_convert,
    untyped_filter_searches_strings_only,
    filters_are_anded_and_case_sensitive,
    generated_is_a_trait_name,
    event_is_rendered_as_panko_does,
    unknown_trait_or_type_finds_nothing,
    selective_and_broad_filters_agree,
);

/// Five events with a trait `v` of each of the four types (values ascending with the event
/// number), generated one hour apart, plus one event without `v`.
async fn seed<S, B>(app: &crate::support::TestApp<S>)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let mut events = Vec::new();
    for i in 1..=5 {
        events.push(event(
            &format!("e{i}"),
            "seeded",
            &format!("2014-01-01T0{i}:00:00"),
            json!([
                s("v", &"abcde"[i - 1..i]),
                t("v", "integer", &i.to_string()),
                t("v", "float", &format!("{i}.5")),
                t("v", "datetime", &format!("2014-02-0{i}T00:00:00")),
            ]),
        ));
    }
    events.push(event(
        "e6",
        "seeded",
        "2014-01-01T06:00:00",
        json!([s("w", "c")]),
    ));
    app.ingest(json!(events)).await;
}

async fn every_operator_on_every_type(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    let pivots = [
        ("string", "c"),
        ("integer", "3"),
        ("float", "3.5"),
        ("datetime", "2014-02-03T00:00:00"),
    ];
    let expected = [
        ("lt", vec!["e1", "e2"]),
        ("le", vec!["e1", "e2", "e3"]),
        ("eq", vec!["e3"]),
        // ne matches only events that have the trait, as in Panko: never e6.
        ("ne", vec!["e1", "e2", "e4", "e5"]),
        ("ge", vec!["e3", "e4", "e5"]),
        ("gt", vec!["e4", "e5"]),
    ];
    for (trait_type, value) in pivots {
        for (op, ids) in &expected {
            let uri = format!(
                "/v2/events?q.field=all_tenants&q.op=eq&q.value=true&q.type=\
                 &q.field=v&q.op={op}&q.value={value}&q.type={trait_type}"
            );
            let got = app.get_admin(&uri).await.ids();
            assert_eq!(&got, ids, "{trait_type} {op} {value}");
        }
    }
}

async fn three_encodings_give_the_same_answer(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    let parallel = app
        .get_admin(
            "/v2/events?q.field=all_tenants&q.field=v&q.field=v\
             &q.op=eq&q.op=ge&q.op=lt\
             &q.value=1&q.value=2&q.value=4.5\
             &q.type=&q.type=integer&q.type=float",
        )
        .await
        .ids();
    let indexed = app
        .get_admin(
            "/v2/events?q[0].field=all_tenants&q[0].value=1\
             &q[1].field=v&q[1].op=ge&q[1].value=2&q[1].type=integer\
             &q[2].field=v&q[2].op=lt&q[2].value=4.5&q[2].type=float",
        )
        .await
        .ids();
    let body = app
        .send(admin(TestRequest::get().uri("/v2/events")).set_json(json!({
            "q": [
                {"field": "all_tenants", "value": "1"},
                {"field": "v", "op": "ge", "value": "2", "type": "integer"},
                {"field": "v", "op": "lt", "value": 4.5, "type": "float"},
            ]
        })))
        .await
        .ids();
    assert_eq!(parallel, vec!["e2", "e3"]);
    assert_eq!(indexed, parallel);
    assert_eq!(body, parallel);
}

async fn event_fields(backend: Backend) {
    let app = app(backend).await;
    app.ingest(json!([
        event("a", "Foo", "2014-01-01T00:00:00", json!([])),
        event("b", "Bar", "2014-01-01T00:00:01", json!([])),
        event("c", "Foo", "2014-01-01T00:00:02", json!([])),
    ]))
    .await;
    let all = "q.field=all_tenants&q.value=true";
    let ids = |q: &str| format!("/v2/events?{all}&{q}");
    assert_eq!(
        app.get_admin(&ids("q.field=event_type&q.value=Foo"))
            .await
            .ids(),
        ["a", "c"]
    );
    assert_eq!(
        app.get_admin(&ids("q.field=message_id&q.value=b"))
            .await
            .ids(),
        ["b"]
    );
    // The last of a repeated event field wins, as in Panko.
    assert_eq!(
        app.get_admin(&ids(
            "q.field=event_type&q.value=Foo&q.field=event_type&q.value=Bar"
        ))
        .await
        .ids(),
        ["b"]
    );
    assert!(app
        .get_admin(&ids("q.field=event_type&q.value=foo"))
        .await
        .ids()
        .is_empty());
    assert!(app
        .get_admin(&ids("q.field=event_type&q.value=Nope"))
        .await
        .ids()
        .is_empty());
}

async fn timestamps_are_inclusive_and_offsets_convert(backend: Backend) {
    let app = app(backend).await;
    app.ingest(json!([
        event("t0", "x", "2013-12-31T23:59:59.999999", json!([])),
        event("t1", "x", "2014-01-01T00:00:00", json!([])),
        event("t2", "x", "2014-01-01T12:00:00.5", json!([])),
        event("t3", "x", "2014-01-02T00:00:00", json!([])),
    ]))
    .await;
    let window = |start: &str, end: &str| {
        format!(
            "/v2/events?q.field=all_tenants&q.op=&q.value=1\
             &q.field=start_timestamp&q.op=ge&q.value={start}\
             &q.field=end_timestamp&q.op=le&q.value={end}"
        )
    };
    assert_eq!(
        app.get_admin(&window("2014-01-01", "2014-01-02T00:00:00"))
            .await
            .ids(),
        ["t1", "t2", "t3"]
    );
    // +02:00 is two hours ahead of UTC: 02:00+02:00 is midnight UTC.
    assert_eq!(
        app.get_admin(&window(
            "2014-01-01T02:00:00%2B02:00",
            "2014-01-01T12:00:00.5Z"
        ))
        .await
        .ids(),
        ["t1", "t2"]
    );
    assert_eq!(
        app.get_admin(&window("2014-01-01T00:00:00.000001", "2014-01-01T23:59:59"))
            .await
            .ids(),
        ["t2"]
    );
}

async fn untyped_filter_searches_strings_only(backend: Backend) {
    let app = app(backend).await;
    app.ingest(json!([event(
        "n",
        "x",
        "2014-01-01T00:00:00",
        json!([t("trait_B", "integer", "101")])
    )]))
    .await;
    // pankoclient never sends q.type: a filter without type is a string filter, and finds
    // nothing for an integer trait, exactly as in Panko.
    let base = "/v2/events?q.field=all_tenants&q.value=1&q.field=trait_B&q.value=101";
    assert!(app.get_admin(base).await.ids().is_empty());
    let typed = format!("{base}&q.type=&q.type=integer");
    assert_eq!(app.get_admin(&typed).await.ids(), ["n"]);
}

async fn filters_are_anded_and_case_sensitive(backend: Backend) {
    let app = app(backend).await;
    app.ingest(json!([
        event(
            "1",
            "x",
            "2014-01-01T00:00:00",
            json!([s("trait_A", "my_Foo_text"), t("trait_B", "integer", "1")])
        ),
        event(
            "2",
            "x",
            "2014-01-01T00:00:01",
            json!([s("trait_A", "my_Foo_text"), t("trait_B", "integer", "2")])
        ),
    ]))
    .await;
    let q = |rest: &str| format!("/v2/events?q.field=all_tenants&q.value=1&{rest}");
    assert_eq!(
        app.get_admin(&q("q.field=trait_A&q.value=my_Foo_text"))
            .await
            .ids(),
        ["1", "2"]
    );
    let indexed = "/v2/events?q[0].field=all_tenants&q[0].value=1\
        &q[1].field=trait_A&q[1].value=my_Foo_text\
        &q[2].field=trait_B&q[2].value=2&q[2].type=integer";
    assert_eq!(app.get_admin(indexed).await.ids(), ["2"]);
    // The same key twice is ANDed: nothing has both values.
    assert!(app
        .get_admin(&q(
            "q.field=trait_A&q.value=my_Foo_text&q.field=trait_A&q.value=other"
        ))
        .await
        .ids()
        .is_empty());
    assert!(app
        .get_admin(&q("q.field=trait_A&q.value=MY_FOO_TEXT"))
        .await
        .ids()
        .is_empty());
}

async fn generated_is_a_trait_name(backend: Backend) {
    let app = app(backend).await;
    app.ingest(json!([event("g", "x", "2014-01-01T00:00:00", json!([]))]))
        .await;
    let res = app
        .get_admin("/v2/events?q.field=all_tenants&q.value=1&q.field=generated&q.value=2014-01-01T00:00:00")
        .await;
    assert!(res.ids().is_empty());
}

async fn event_is_rendered_as_panko_does(backend: Backend) {
    let app = app(backend).await;
    app.ingest(json!([{
        "message_id": "100",
        "event_type": "Bar",
        "generated": "2014-01-01T05:00:00",
        "traits": [
            {"name": "trait_D", "type": "datetime", "value": "2014-01-01T05:00:00.000005"},
            {"name": "trait_C", "type": "float", "value": "100.123456"},
            {"name": "trait_B", "type": "integer", "value": "99999999999999"},
            {"name": "trait_A", "type": "string", "value": "my_Bar_text"},
            {"name": "big", "type": "float", "value": 1e16},
        ],
        "raw": {"status": {"nested": "started"}},
    }]))
    .await;
    let res = app.get_admin("/v2/events/100").await;
    let expected = json!({
        "message_id": "100",
        "event_type": "Bar",
        "traits": [
            {"name": "big", "value": "1e+16", "type": "float"},
            {"name": "trait_A", "value": "my_Bar_text", "type": "string"},
            {"name": "trait_B", "value": "99999999999999", "type": "integer"},
            {"name": "trait_C", "value": "100.123456", "type": "float"},
            {"name": "trait_D", "value": "2014-01-01T05:00:00.000005", "type": "datetime"},
        ],
        "generated": "2014-01-01T05:00:00",
        "raw": {"status": {"nested": "started"}},
    });
    assert_eq!(res.ok(), expected);
    // Key order, as Panko emits it.
    let text = String::from_utf8_lossy(&res.body).to_string();
    let pos = |k: &str| {
        text.find(&format!("\"{k}\""))
            .unwrap_or_else(|| panic!("{k} in {text}"))
    };
    assert!(pos("message_id") < pos("event_type"));
    assert!(pos("event_type") < pos("traits"));
    assert!(pos("traits") < pos("generated"));
    assert!(pos("generated") < pos("raw"));
    assert!(
        text.contains(r#"{"name":"big","value":"1e+16","type":"float"}"#),
        "{text}"
    );
    assert_eq!(res.header("content-type"), Some("application/json"));
}

async fn unknown_trait_or_type_finds_nothing(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    for q in [
        "q[1].field=never_seen&q[1].op=ne&q[1].value=x",
        "q[1].field=v&q[1].value=1&q[1].type=integer&q[2].field=event_type&q[2].value=unknown",
    ] {
        let uri = format!("/v2/events?q[0].field=all_tenants&q[0].value=1&{q}");
        assert!(app.get_admin(&uri).await.ids().is_empty(), "{q}");
    }
}

/// A filter matching few events drives the query from its trait index; one matching many is
/// checked per event while reading in sort order. Both plans must give the same pages.
async fn selective_and_broad_filters_agree(backend: Backend) {
    let app = app(backend).await;
    let n = 2_600; // more matches than the store's driver threshold (2,000)
    let batch: Vec<_> = (0..n)
        .map(|i| {
            event(
                &format!("k{i:04}"),
                "bulk",
                &format!("2014-01-01T00:{:02}:{:02}", (i / 60) % 60, i % 60),
                json!([
                    t("n", "integer", &i.to_string()),
                    s("parity", if i % 2 == 0 { "even" } else { "odd" })
                ]),
            )
        })
        .collect();
    app.ingest(json!(batch)).await;
    let expect = |pred: &dyn Fn(usize) -> bool| -> Vec<String> {
        let mut v: Vec<(String, usize)> = (0..n)
            .filter(|i| pred(*i))
            .map(|i| (format!("k{i:04}"), i % 3600))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
        v.into_iter().map(|(id, _)| id).collect()
    };
    type Predicate = Box<dyn Fn(usize) -> bool>;
    let cases: Vec<(&str, Predicate)> = vec![
        ("q.field=n&q.op=lt&q.value=40&q.type=integer", Box::new(|i| i < 40)),
        ("q.field=n&q.op=ge&q.value=40&q.type=integer", Box::new(|i| i >= 40)),
        ("q.field=parity&q.op=eq&q.value=even&q.type=string", Box::new(|i| i % 2 == 0)),
        ("q.field=n&q.op=ne&q.value=7&q.type=integer", Box::new(|i| i != 7)),
        (
            "q.field=n&q.op=lt&q.value=40&q.type=integer&q.field=parity&q.op=eq&q.value=odd&q.type=string",
            Box::new(|i| i < 40 && i % 2 == 1),
        ),
    ];
    for (q, pred) in cases {
        let expected = expect(pred.as_ref());
        let base = format!(
            "/v2/events?q.field=all_tenants&q.op=eq&q.value=1&q.type=string&{q}&sort=generated:desc&limit=700"
        );
        let mut seen = Vec::new();
        let mut uri = base.clone();
        loop {
            let page = app.get_admin(&uri).await.ids();
            seen.extend(page.iter().cloned());
            if page.len() < 700 {
                break;
            }
            uri = format!("{base}&marker={}", page.last().expect("a full page"));
        }
        assert_eq!(seen.len(), expected.len(), "{q}");
        assert!(
            seen == expected,
            "{q}: pages differ from the expected order"
        );
    }
}

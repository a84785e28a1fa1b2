//! `log_format = "json"`: one JSON object a line, and every line of a request carries its id.

use super::*;

#[test]
fn json_logs_carry_the_request_id_on_every_line_of_a_request() {
    let cwd = tempdir();
    let server = Start {
        env: vec![
            ("ALMANAC_LOG_FORMAT".into(), "json".into()),
            ("ALMANAC_LOG".into(), "debug".into()),
        ],
        cwd: Some(cwd.path()),
        ..Start::on("sqlite://almanac.db")
    }
    .start();
    let reply = server.get("/v2/events?limit=5");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let request_id = reply.assert_request_id();

    // The access line is written after the response: poll for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let lines: Vec<Value> = loop {
        let log = server.stderr();
        let lines: Vec<Value> = log
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        let done = lines.iter().any(|l| {
            l["span"]["request_id"] == request_id.as_str() && l["fields"]["status"] == 200
        });
        if done {
            break lines;
        }
        assert!(
            Instant::now() < deadline,
            "no access line for {request_id}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let of_request: Vec<&Value> = lines
        .iter()
        .filter(|l| l["span"]["request_id"] == request_id.as_str())
        .collect();
    assert!(!of_request.is_empty());
    for line in &of_request {
        assert_eq!(line["span"]["path"], "/v2/events", "{line}");
        assert!(
            line["timestamp"].is_string() && line["level"].is_string(),
            "{line}"
        );
    }
}

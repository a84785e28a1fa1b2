//! Query load with wrk: a generated Lua script per query, and the numbers wrk reports.
//!
//! The script formats every request of the query once (`init`), hands them out in turn
//! (`request`), and at the end prints one machine-readable line (`done`) with the request count,
//! the duration, p50 and p99 from wrk's full latency histogram, and every error wrk counts. That
//! line is parsed instead of wrk's human-readable summary, whose rounding and units vary.

use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::query::Query;

const INSTALL_HINT: &str = "install wrk (apt-get install wrk)";
const RESULT_TAG: &str = "almanac-bench-result";
/// wrk's per-request timeout; a slower answer is counted as an error. Generous, so that a busy CI
/// machine does not fail a smoke run that only checks for errors.
const REQUEST_TIMEOUT: &str = "10s";

#[derive(Clone, Debug, PartialEq)]
pub struct WrkResult {
    pub requests: u64,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Responses with a status of 400 or more ("Non-2xx or 3xx responses").
    pub status_errors: u64,
    /// Socket errors: connect, read, write, timeout.
    pub socket_errors: [u64; 4],
}

impl WrkResult {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds.max(f64::EPSILON)
    }

    pub fn errors(&self) -> u64 {
        self.status_errors + self.socket_errors.iter().sum::<u64>()
    }
}

/// Fails with the install hint unless `wrk` can be run.
pub fn ensure_installed() -> anyhow::Result<()> {
    match Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            anyhow::bail!("wrk is not installed: {INSTALL_HINT}")
        }
        Err(error) => Err(error).context(format!("cannot run wrk: {INSTALL_HINT}")),
    }
}

/// Runs wrk against `base` for `duration` with `connections` connections, cycling over the
/// query's requests. Any non-2xx/3xx answer or socket error fails.
pub fn run(
    base: &str,
    query: &Query,
    connections: usize,
    duration: Duration,
    dir: &Path,
) -> anyhow::Result<WrkResult> {
    let script = dir.join(format!("query-{}.lua", query.id));
    std::fs::write(&script, lua_script(query))
        .with_context(|| format!("cannot write {}", script.display()))?;
    let output = dir.join(format!("query-{}.out", query.id));
    let out_file =
        File::create(&output).with_context(|| format!("cannot create {}", output.display()))?;
    let err_file = out_file.try_clone()?;

    let threads = connections.clamp(1, 2);
    let mut child = Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .args(["--latency", "--timeout", REQUEST_TIMEOUT, "-s"])
        .arg(&script)
        .arg(base)
        .stdin(Stdio::null())
        .stdout(out_file)
        .stderr(err_file)
        .spawn()
        .with_context(|| format!("cannot start wrk: {INSTALL_HINT}"))?;
    // wrk stops by itself after the duration; this bound only guards against a hung wrk.
    let deadline = Instant::now() + duration + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for wrk")? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("wrk did not finish in time (query {})", query.id);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&output)
        .with_context(|| format!("cannot read {}", output.display()))?;
    anyhow::ensure!(status.success(), "wrk failed ({status}):\n{text}");
    let result = parse(&text).with_context(|| format!("unexpected wrk output:\n{text}"))?;
    anyhow::ensure!(
        result.errors() == 0 && result.requests > 0,
        "query {} ({}): {} requests, {} answered with a status of 400 or more, socket errors \
         (connect, read, write, timeout) {:?}\n{text}",
        query.id,
        query.name,
        result.requests,
        result.status_errors,
        result.socket_errors,
    );
    Ok(result)
}

/// A Lua string literal (the values are ASCII, but nothing is assumed).
fn lua_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for b in s.bytes() {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => write!(out, "\\{b:03}").expect("writing to a String"),
        }
    }
    out.push('"');
    out
}

fn lua_script(query: &Query) -> String {
    let mut s = format!("-- almanac bench: query {} ({})\n", query.id, query.name);
    s.push_str("local specs = {\n");
    for request in &query.requests {
        write!(s, "  {{ {}, {{", lua_string(&request.path)).expect("writing to a String");
        for (name, value) in &request.headers {
            write!(s, " [{}] = {},", lua_string(name), lua_string(value))
                .expect("writing to a String");
        }
        s.push_str(" } },\n");
    }
    s.push_str(
        r#"}
local requests = {}
local i = 0

-- wrk.format needs the Host header, which wrk sets just before init.
function init(args)
  for n, spec in ipairs(specs) do
    requests[n] = wrk.format("GET", spec[1], spec[2])
  end
end

function request()
  i = i % #requests + 1
  return requests[i]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    "RESULT_TAG requests=%d duration_us=%d p50_us=%d p99_us=%d status=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout))
end
"#,
    );
    s.replace("RESULT_TAG", RESULT_TAG)
}

/// Reads the line the script's `done` prints.
fn parse(output: &str) -> anyhow::Result<WrkResult> {
    let line = output
        .lines()
        .find_map(|l| l.strip_prefix(RESULT_TAG))
        .context("no result line")?;
    let field = |key: &str| -> anyhow::Result<u64> {
        let text = line
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .with_context(|| format!("no {key} in the result line"))?;
        text.parse()
            .with_context(|| format!("{key}={text} is not a number"))
    };
    Ok(WrkResult {
        requests: field("requests")?,
        seconds: field("duration_us")? as f64 / 1e6,
        p50_ms: field("p50_us")? as f64 / 1e3,
        p99_ms: field("p99_us")? as f64 / 1e3,
        status_errors: field("status")?,
        socket_errors: [
            field("connect")?,
            field("read")?,
            field("write")?,
            field("timeout")?,
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_result_line() {
        let out = "Running 2s test @ http://127.0.0.1:1\n\
            almanac-bench-result requests=4000 duration_us=2000000 p50_us=1500 p99_us=9000 \
            status=0 connect=0 read=1 write=0 timeout=2\n";
        let r = parse(out).unwrap();
        assert_eq!(r.requests, 4000);
        assert_eq!(r.rps(), 2000.0);
        assert_eq!((r.p50_ms, r.p99_ms), (1.5, 9.0));
        assert_eq!(r.errors(), 3);
        assert!(parse("Requests/sec: 12\n").is_err());
    }

    #[test]
    fn quotes_lua_strings() {
        assert_eq!(lua_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(lua_string("é\n"), r#""\195\169\010""#);
    }
}

//! The deterministic data set: N events over 30 days, in the ingest shape.
//!
//! Everything comes from one ChaCha8 stream seeded by `--seed`. Only `next_u64` is used, and
//! every mapping to a range or a choice is written here, so the bytes depend on nothing but the
//! seed and this file: not on `rand`'s distribution code (which has changed between versions),
//! the machine or the clock.

use std::fmt::Write as _;

use rand_chacha::rand_core::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Tenants. Projects get Zipf-like shares (the first about a quarter of all events), as in a real
/// cloud, so that query 6 (page 50 of one project) has 50 pages even in a 20k-event smoke run.
pub const PROJECTS: usize = 20;
/// Users; user `k` belongs to project `k % PROJECTS`.
pub const USERS: usize = 200;
/// Resources (instances, images, volumes, …) that events refer to, reused across events.
const RESOURCES: usize = 2_000;
const HOSTS: usize = 50;

/// The generated month ends here (exclusive): 2026-01-01T00:00:00Z. A fixed instant, not "now",
/// so that the output is the same on every run.
pub const END_MICROS: i64 = 1_767_225_600 * 1_000_000;
pub const DAY_MICROS: i64 = 86_400 * 1_000_000;
pub const SPAN_MICROS: i64 = 30 * DAY_MICROS;
pub const START_MICROS: i64 = END_MICROS - SPAN_MICROS;

/// How one type-specific trait gets its value.
enum Gen {
    Str(&'static [&'static str]),
    Int(&'static [i64]),
    /// An integer in `lo..hi`.
    IntRange(i64, i64),
    /// A datetime up to this many hours before the event.
    HoursBefore(i64),
}

struct Kind {
    name: &'static str,
    /// Relative frequency (the weights add up to 100).
    weight: u64,
    states: &'static [&'static str],
    /// Each event carries the first 0 to 3 of these, so it has 9 to 12 traits.
    extras: [(&'static str, Gen); 3],
}

const FLAVORS: Gen = Gen::Str(&["m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge"]);
const VCPUS: Gen = Gen::Int(&[1, 2, 4, 8, 16]);
const ZONES: Gen = Gen::Str(&["nova", "az-1", "az-2"]);
const IMAGES: Gen = Gen::Str(&[
    "cirros-0.6.2",
    "ubuntu-24.04",
    "debian-12",
    "fedora-40",
    "centos-stream-9",
]);
const VOLUME_TYPES: Gen = Gen::Str(&["ssd", "hdd", "nvme"]);
const VOLUME_SIZES: Gen = Gen::Int(&[1, 10, 50, 100, 500]);

const KINDS: [Kind; 10] = [
    Kind {
        name: "compute.instance.create.end",
        weight: 10,
        states: &["active", "error"],
        extras: [
            ("instance_type", FLAVORS),
            ("vcpus", VCPUS),
            ("availability_zone", ZONES),
        ],
    },
    Kind {
        name: "compute.instance.delete.end",
        weight: 8,
        states: &["deleted"],
        extras: [
            ("instance_type", FLAVORS),
            ("terminated_at", Gen::HoursBefore(1)),
            ("vcpus", VCPUS),
        ],
    },
    Kind {
        name: "compute.instance.update",
        weight: 12,
        states: &["active", "stopped", "paused", "resized", "suspended"],
        extras: [
            ("instance_type", FLAVORS),
            ("old_state", Gen::Str(&["active", "stopped", "building"])),
            ("vcpus", VCPUS),
        ],
    },
    Kind {
        name: "compute.instance.exists",
        weight: 20,
        states: &["active", "stopped"],
        extras: [
            ("instance_type", FLAVORS),
            ("audit_period_beginning", Gen::HoursBefore(24)),
            ("vcpus", VCPUS),
        ],
    },
    Kind {
        name: "image.upload",
        weight: 5,
        states: &["active"],
        extras: [
            ("name", IMAGES),
            ("size", Gen::IntRange(10_000_000, 4_000_000_000)),
            ("container_format", Gen::Str(&["bare", "ovf"])),
        ],
    },
    Kind {
        name: "image.delete",
        weight: 3,
        states: &["deleted"],
        extras: [
            ("name", IMAGES),
            ("size", Gen::IntRange(10_000_000, 4_000_000_000)),
            ("deleted_at", Gen::HoursBefore(1)),
        ],
    },
    Kind {
        name: "volume.create.end",
        weight: 7,
        states: &["available", "error"],
        extras: [
            ("volume_type", VOLUME_TYPES),
            ("size", VOLUME_SIZES),
            ("availability_zone", ZONES),
        ],
    },
    Kind {
        name: "volume.delete.end",
        weight: 5,
        states: &["deleted"],
        extras: [
            ("volume_type", VOLUME_TYPES),
            ("size", VOLUME_SIZES),
            ("availability_zone", ZONES),
        ],
    },
    Kind {
        name: "identity.authenticate",
        weight: 22,
        states: &["success", "success", "success", "failure"],
        extras: [
            ("action", Gen::Str(&["authenticate"])),
            (
                "method",
                Gen::Str(&["password", "token", "application_credential"]),
            ),
            ("observer_id", Gen::Str(&["keystone-1", "keystone-2"])),
        ],
    },
    Kind {
        name: "network.create.end",
        weight: 8,
        states: &["active", "down"],
        extras: [
            (
                "network_name",
                Gen::Str(&["private", "public", "tenant-net", "mgmt"]),
            ),
            ("mtu", Gen::Int(&[1450, 1500, 9000])),
            ("shared", Gen::Str(&["False", "True"])),
        ],
    },
];

/// The event type names, in a fixed order.
pub fn event_types() -> impl Iterator<Item = &'static str> {
    KINDS.iter().map(|k| k.name)
}

const MEMORY_MB: [i64; 6] = [512, 1024, 2048, 4096, 8192, 16384];
const DISK_GB: [i64; 6] = [1, 10, 20, 40, 80, 160];

/// One event, serialized exactly as `POST /v2/events` takes it.
#[derive(Serialize)]
pub struct Event {
    pub message_id: String,
    pub event_type: &'static str,
    pub generated: String,
    pub traits: Vec<TraitOut>,
    /// Always `{}`: Ceilometer's default (`store_raw` off).
    pub raw: Empty,
    /// Not on the wire: the tenant, for the facts the query mix needs.
    #[serde(skip)]
    pub project: usize,
    #[serde(skip)]
    pub user: usize,
    /// Index of the event type in [`event_types`].
    #[serde(skip)]
    pub kind: usize,
    #[serde(skip)]
    pub generated_micros: i64,
}

#[derive(Serialize)]
pub struct Empty {}

#[derive(Serialize)]
pub struct TraitOut {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: Value,
}

#[derive(Serialize)]
#[serde(untagged)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
}

impl Event {
    /// One NDJSON line, without the newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a generated event serializes")
    }
}

/// The seeded stream and the few mappings the generator needs.
struct Stream(ChaCha8Rng);

impl Stream {
    fn new(seed: u64) -> Stream {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        Stream(ChaCha8Rng::from_seed(key))
    }

    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A number in `0..n` (multiply-shift; the bias is below 2^-40 for our small `n`).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An index drawn with the given relative weights.
    fn weighted(&mut self, cumulative: &[u64]) -> usize {
        let total = *cumulative.last().expect("weights");
        let x = self.below(total);
        cumulative.partition_point(|&c| c <= x)
    }

    fn hex(&mut self, bytes: usize) -> String {
        let mut s = String::with_capacity(bytes * 2);
        for _ in 0..bytes.div_ceil(8) {
            write!(s, "{:016x}", self.next()).expect("writing to a String");
        }
        s.truncate(bytes * 2);
        s
    }

    /// A UUID v4-shaped string.
    fn uuid(&mut self) -> String {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next().to_le_bytes());
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }
}

fn cumulative(weights: impl Iterator<Item = u64>) -> Vec<u64> {
    weights
        .scan(0, |sum, w| {
            *sum += w;
            Some(*sum)
        })
        .collect()
}

/// ISO 8601 in UTC with microseconds, as Ceilometer sends it.
pub fn iso(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .expect("generated instants are in range")
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// The events of one seed, in time order.
pub struct Generator {
    stream: Stream,
    total: u64,
    next: u64,
    pub project_ids: Vec<String>,
    pub user_ids: Vec<String>,
    resources: Vec<String>,
    hosts: Vec<String>,
    kinds: Vec<u64>,
    projects: Vec<u64>,
}

impl Generator {
    pub fn new(seed: u64, total: usize) -> Generator {
        let mut stream = Stream::new(seed);
        // Keystone ids are 32 hex digits; resources are UUIDs.
        let project_ids = (0..PROJECTS).map(|_| stream.hex(16)).collect();
        let user_ids = (0..USERS).map(|_| stream.hex(16)).collect();
        let resources = (0..RESOURCES).map(|_| stream.uuid()).collect();
        let hosts = (1..=HOSTS)
            .map(|n| format!("compute-{n:02}.example.org"))
            .collect();
        Generator {
            stream,
            total: total as u64,
            next: 0,
            project_ids,
            user_ids,
            resources,
            hosts,
            kinds: cumulative(KINDS.iter().map(|k| k.weight)),
            // Project p gets a share proportional to 1/(p+1).
            projects: cumulative((0..PROJECTS as u64).map(|p| 1_000_000 / (p + 1))),
        }
    }

    fn event(&mut self, index: u64) -> Event {
        let s = &mut self.stream;
        // Event i lies in the i-th of N equal slots of the month, so the output is in time order.
        let total = self.total.max(1);
        let slot_start = (u128::from(index) * SPAN_MICROS as u128 / u128::from(total)) as i64;
        let slot = (SPAN_MICROS as u64 / total).max(1);
        let generated = START_MICROS + slot_start + s.below(slot) as i64;
        let kind_index = s.weighted(&self.kinds);
        let kind = &KINDS[kind_index];
        let project = s.weighted(&self.projects);
        let user = project + PROJECTS * s.below((USERS / PROJECTS) as u64) as usize;
        let message_id = s.uuid();

        let string = |name, value: String| TraitOut {
            name,
            kind: "string",
            value: Value::Str(value),
        };
        let integer = |name, value| TraitOut {
            name,
            kind: "integer",
            value: Value::Int(value),
        };
        let datetime = |name, micros| TraitOut {
            name,
            kind: "datetime",
            value: Value::Str(iso(micros)),
        };
        let mut traits = vec![
            string("project_id", self.project_ids[project].clone()),
            string("user_id", self.user_ids[user].clone()),
            string("resource_id", s.pick(&self.resources).clone()),
            string("host", s.pick(&self.hosts).clone()),
            string("state", s.pick(kind.states).to_string()),
            integer("memory_mb", *s.pick(&MEMORY_MB)),
            integer("disk_gb", *s.pick(&DISK_GB)),
            TraitOut {
                name: "cpu_util",
                kind: "float",
                // Hundredths in [0, 4): exact decimal text, the same on every machine.
                value: Value::Float(s.below(400) as f64 / 100.0),
            },
            datetime(
                "launched_at",
                generated - s.below(7 * DAY_MICROS as u64) as i64,
            ),
        ];
        let extras = s.below(4) as usize;
        for (name, gen) in &kind.extras[..extras] {
            traits.push(match gen {
                Gen::Str(values) => string(name, s.pick(values).to_string()),
                Gen::Int(values) => integer(name, *s.pick(values)),
                Gen::IntRange(lo, hi) => integer(name, lo + s.below((hi - lo) as u64) as i64),
                Gen::HoursBefore(h) => {
                    datetime(name, generated - s.below((h * 3_600_000_000) as u64) as i64)
                }
            });
        }
        Event {
            message_id,
            event_type: kind.name,
            generated: iso(generated),
            traits,
            raw: Empty {},
            project,
            user,
            kind: kind_index,
            generated_micros: generated,
        }
    }
}

impl Iterator for Generator {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        if self.next >= self.total {
            return None;
        }
        let event = self.event(self.next);
        self.next += 1;
        Some(event)
    }
}

/// What the query mix needs to know about a data set: who has events, and real message_ids.
pub struct Facts {
    pub events: usize,
    pub project_ids: Vec<String>,
    pub user_ids: Vec<String>,
    /// Events per project and per user, by index.
    pub per_project: Vec<usize>,
    pub per_user: Vec<usize>,
    /// Events per event type (as in [`event_types`]) and day of the month (0..30).
    pub per_type_day: Vec<[usize; 30]>,
    /// About [`SAMPLES`] events spread evenly over the data set.
    pub samples: Vec<Sample>,
    stride: usize,
}

pub const SAMPLES: usize = 64;

pub struct Sample {
    pub message_id: String,
    /// The owner; their project is `user % PROJECTS`.
    pub user: usize,
}

impl Facts {
    pub fn new(generator: &Generator) -> Facts {
        Facts {
            events: 0,
            project_ids: generator.project_ids.clone(),
            user_ids: generator.user_ids.clone(),
            per_project: vec![0; PROJECTS],
            per_user: vec![0; USERS],
            per_type_day: vec![[0; 30]; KINDS.len()],
            samples: Vec::new(),
            stride: (generator.total as usize / SAMPLES).max(1),
        }
    }

    pub fn observe(&mut self, event: &Event) {
        if self.events.is_multiple_of(self.stride) && self.samples.len() < SAMPLES {
            self.samples.push(Sample {
                message_id: event.message_id.clone(),
                user: event.user,
            });
        }
        self.events += 1;
        self.per_project[event.project] += 1;
        self.per_user[event.user] += 1;
        let day = ((event.generated_micros - START_MICROS) / DAY_MICROS) as usize;
        self.per_type_day[event.kind][day] += 1;
    }

    /// Project indexes, most events first (ties by index, so the order is stable).
    pub fn projects_by_size(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..PROJECTS).collect();
        order.sort_by_key(|&p| (std::cmp::Reverse(self.per_project[p]), p));
        order
    }

    /// The `n` members of `project` with the most events (ties by index), only those with events.
    pub fn busiest_users(&self, project: usize, n: usize) -> Vec<usize> {
        let mut members: Vec<usize> = (project..USERS)
            .step_by(PROJECTS)
            .filter(|&u| self.per_user[u] > 0)
            .collect();
        members.sort_by_key(|&u| (std::cmp::Reverse(self.per_user[u]), u));
        members.truncate(n);
        members
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_events() {
        let a: Vec<String> = Generator::new(3, 50).map(|e| e.to_json()).collect();
        let b: Vec<String> = Generator::new(3, 50).map(|e| e.to_json()).collect();
        let c: Vec<String> = Generator::new(4, 50).map(|e| e.to_json()).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn events_are_in_time_order_within_the_month() {
        let times: Vec<String> = Generator::new(1, 1000).map(|e| e.generated).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        assert!(times[0].as_str() >= iso(START_MICROS).as_str());
        assert!(times[999].as_str() < iso(END_MICROS).as_str());
    }

    #[test]
    fn users_belong_to_their_project() {
        for e in Generator::new(1, 500) {
            assert_eq!(e.user % PROJECTS, e.project);
            assert!((9..=12).contains(&e.traits.len()));
        }
    }
}

//! The harness's identities, as tokens of the server under test: the bootstrap admin token the
//! server wrote at start, and member tokens made through `POST /v2/tokens` as the mix needs them.
//! So the benchmark pays for token authentication as a deployment does.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;

pub type Headers = Vec<(&'static str, String)>;

pub struct Credentials {
    base: String,
    admin: String,
    /// Member tokens by (user, project).
    members: Mutex<HashMap<(String, String), String>>,
}

impl Credentials {
    pub fn new(base: &str, admin_token: &str) -> Credentials {
        Credentials {
            base: base.to_string(),
            admin: admin_token.to_string(),
            members: Mutex::new(HashMap::new()),
        }
    }

    /// The admin's `Authorization` header.
    pub fn admin(&self) -> Headers {
        vec![("Authorization", format!("Bearer {}", self.admin))]
    }

    /// A member's `Authorization` header; the token is made on first use.
    pub fn member(&self, user_id: &str, project_id: &str) -> anyhow::Result<Headers> {
        let key = (user_id.to_string(), project_id.to_string());
        let mut members = self.members.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(token) = members.get(&key) {
            return Ok(vec![("Authorization", format!("Bearer {token}"))]);
        }
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            .build();
        let created: serde_json::Value = agent
            .post(&format!("{}/v2/tokens", self.base))
            .set("Authorization", &format!("Bearer {}", self.admin))
            .send_json(serde_json::json!({
                "user_id": user_id,
                "project_id": project_id,
                "roles": ["member"],
                "access": "read",
                "description": "almanac bench",
            }))
            .context("POST /v2/tokens")?
            .into_json()
            .context("reading the new token")?;
        let token = created["token"]
            .as_str()
            .context("POST /v2/tokens returned no token")?
            .to_string();
        members.insert(key, token.clone());
        Ok(vec![("Authorization", format!("Bearer {token}"))])
    }
}

//! Policy rules, with Panko's defaults. Each API action names a rule; a rule is a small boolean
//! expression over the caller's roles (oslo.policy's `role:admin`, `rule:other`, `or`, `and`,
//! and the empty rule that allows anyone).

use std::collections::BTreeMap;

use super::Identity;

/// The rule names.
pub const SEGREGATION: &str = "segregation";
pub const EVENTS_INDEX: &str = "events:index";
pub const EVENTS_SHOW: &str = "events:show";
pub const EVENTS_CREATE: &str = "events:create";
pub const EVENT_TYPES_INDEX: &str = "event_types:index";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// The empty rule: anyone.
    Anyone,
    /// `role:NAME`.
    Role(String),
    /// `rule:NAME`: another rule of the policy.
    Named(String),
    Or(Vec<Rule>),
    And(Vec<Rule>),
}

/// The set of rules in force.
#[derive(Clone, Debug)]
pub struct Policy {
    rules: BTreeMap<String, Rule>,
}

impl Default for Policy {
    /// Panko's defaults: admin means `role:admin` (the `segregation` rule); anyone may list and
    /// show events (then scoped to their tenant); only admins ingest or browse event types.
    fn default() -> Self {
        let admin = || Rule::Role("admin".into());
        let rules = [
            (SEGREGATION, admin()),
            (EVENTS_INDEX, Rule::Anyone),
            (EVENTS_SHOW, Rule::Anyone),
            (EVENTS_CREATE, Rule::Named(SEGREGATION.into())),
            (EVENT_TYPES_INDEX, Rule::Named(SEGREGATION.into())),
        ];
        Policy {
            rules: rules
                .into_iter()
                .map(|(name, rule)| (name.to_string(), rule))
                .collect(),
        }
    }
}

impl Policy {
    /// Whether the named rule allows this caller. An unknown rule allows nobody.
    pub fn allows(&self, rule: &str, who: &Identity) -> bool {
        match self.rules.get(rule) {
            Some(r) => self.eval(r, who, 0),
            None => false,
        }
    }

    /// Whether the caller is admin-scoped (Panko's `get_limited_to`: the `segregation` rule).
    pub fn is_admin(&self, who: &Identity) -> bool {
        self.allows(SEGREGATION, who)
    }

    fn eval(&self, rule: &Rule, who: &Identity, depth: usize) -> bool {
        // Rules referring to each other in a cycle deny rather than recurse forever.
        if depth > 16 {
            return false;
        }
        match rule {
            Rule::Anyone => true,
            Rule::Role(role) => who.has_role(role),
            Rule::Named(name) => self
                .rules
                .get(name)
                .is_some_and(|r| self.eval(r, who, depth + 1)),
            Rule::Or(rules) => rules.iter().any(|r| self.eval(r, who, depth + 1)),
            Rule::And(rules) => rules.iter().all(|r| self.eval(r, who, depth + 1)),
        }
    }
}

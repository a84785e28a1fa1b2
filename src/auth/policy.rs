//! Policy rules, with Panko's defaults. Each API action names a rule; a rule is a small boolean
//! expression over the caller's roles, in oslo.policy's syntax:
//!
//! ```text
//! ""  or "@"         anyone            "!"              nobody
//! role:NAME          the caller has the role (case-insensitive, as Panko)
//! rule:NAME          another rule of the policy
//! A or B, A and B, not A, ( … )      ("and" binds tighter than "or")
//! ```
//!
//! The config file's `[policy]` table overrides the defaults rule by rule; [`Policy::with_overrides`]
//! checks every rule (its name, its syntax, the rules it refers to, cycles) so that a bad policy
//! stops the server at start instead of denying or allowing by surprise later.

use std::collections::BTreeMap;

use super::Identity;

/// Who counts as admin (Panko's `segregation`; admins see all tenants with `all_tenants`).
pub const SEGREGATION: &str = "segregation";
/// Panko's base admin rule, which `segregation` refers to by default.
pub const CONTEXT_IS_ADMIN: &str = "context_is_admin";
pub const EVENTS_INDEX: &str = "events:index";
pub const EVENTS_SHOW: &str = "events:show";
pub const EVENTS_CREATE: &str = "events:create";
pub const EVENT_TYPES_INDEX: &str = "event_types:index";
pub const TOKENS_CREATE: &str = "tokens:create";
pub const TOKENS_INDEX: &str = "tokens:index";
pub const TOKENS_REVOKE: &str = "tokens:revoke";

/// Every rule name and its default, Panko's where Panko has one.
pub const DEFAULTS: &[(&str, &str)] = &[
    (CONTEXT_IS_ADMIN, "role:admin"),
    (SEGREGATION, "rule:context_is_admin"),
    (EVENTS_INDEX, ""),
    (EVENTS_SHOW, ""),
    (EVENTS_CREATE, "rule:segregation"),
    (EVENT_TYPES_INDEX, "rule:segregation"),
    (TOKENS_CREATE, "rule:segregation"),
    (TOKENS_INDEX, "rule:segregation"),
    (TOKENS_REVOKE, "rule:segregation"),
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// `""` or `@`: anyone.
    Anyone,
    /// `!`: nobody.
    Nobody,
    /// `role:NAME`.
    Role(String),
    /// `rule:NAME`: another rule of the policy.
    Named(String),
    Not(Box<Rule>),
    Or(Vec<Rule>),
    And(Vec<Rule>),
}

/// A rule that cannot be used, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("policy rule \"{rule}\": {message}")]
pub struct PolicyError {
    pub rule: String,
    pub message: String,
}

/// The set of rules in force.
#[derive(Clone, Debug)]
pub struct Policy {
    rules: BTreeMap<String, Rule>,
}

impl Default for Policy {
    /// Panko's defaults: admin means `role:admin`; anyone may list and show events (then scoped
    /// to their tenant); only admins ingest, browse event types or manage tokens.
    fn default() -> Self {
        Policy::with_overrides(&BTreeMap::new()).expect("the default policy is valid")
    }
}

impl Policy {
    /// The defaults, with some rules replaced. Every rule is checked.
    pub fn with_overrides(overrides: &BTreeMap<String, String>) -> Result<Policy, PolicyError> {
        let mut rules = BTreeMap::new();
        for (name, text) in DEFAULTS {
            rules.insert(name.to_string(), parse(text).expect("defaults parse"));
        }
        for (name, text) in overrides {
            if !rules.contains_key(name) {
                return Err(PolicyError {
                    rule: name.clone(),
                    message: format!(
                        "no such rule; the rules are {}",
                        DEFAULTS
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            let rule = parse(text).map_err(|message| PolicyError {
                rule: name.clone(),
                message,
            })?;
            rules.insert(name.clone(), rule);
        }
        let policy = Policy { rules };
        for name in policy.rules.keys() {
            policy.check_references(name, &mut Vec::new())?;
        }
        Ok(policy)
    }

    /// Every `rule:NAME` names an existing rule, and no rule refers back to itself.
    fn check_references<'a>(
        &'a self,
        name: &'a str,
        path: &mut Vec<&'a str>,
    ) -> Result<(), PolicyError> {
        if let Some(start) = path.iter().position(|p| *p == name) {
            let mut cycle = path[start..].to_vec();
            cycle.push(name);
            return Err(PolicyError {
                rule: name.to_string(),
                message: format!(
                    "rules refer to each other in a cycle: {}",
                    cycle.join(" -> ")
                ),
            });
        }
        let Some(rule) = self.rules.get(name) else {
            return Err(PolicyError {
                rule: path.last().unwrap_or(&name).to_string(),
                message: format!("rule:{name} refers to no rule"),
            });
        };
        path.push(name);
        let mut refs = Vec::new();
        rule.references(&mut refs);
        for r in refs {
            self.check_references(r, path)?;
        }
        path.pop();
        Ok(())
    }

    /// Whether the named rule allows this caller. An unknown rule allows nobody.
    pub fn allows(&self, rule: &str, who: &Identity) -> bool {
        self.rules.get(rule).is_some_and(|r| self.eval(r, who))
    }

    /// Whether the caller is admin-scoped (Panko's `get_limited_to`: the `segregation` rule).
    pub fn is_admin(&self, who: &Identity) -> bool {
        self.allows(SEGREGATION, who)
    }

    fn eval(&self, rule: &Rule, who: &Identity) -> bool {
        // Terminates: construction rejected cycles.
        match rule {
            Rule::Anyone => true,
            Rule::Nobody => false,
            Rule::Role(role) => who.has_role(role),
            Rule::Named(name) => self.allows(name, who),
            Rule::Not(r) => !self.eval(r, who),
            Rule::Or(rules) => rules.iter().any(|r| self.eval(r, who)),
            Rule::And(rules) => rules.iter().all(|r| self.eval(r, who)),
        }
    }
}

impl Rule {
    fn references<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Rule::Named(n) => out.push(n),
            Rule::Not(r) => r.references(out),
            Rule::Or(rs) | Rule::And(rs) => rs.iter().for_each(|r| r.references(out)),
            Rule::Anyone | Rule::Nobody | Rule::Role(_) => {}
        }
    }
}

/// Parses a rule's text; the error says what was expected where.
pub fn parse(text: &str) -> Result<Rule, String> {
    let tokens = tokenize(text);
    if tokens.is_empty() {
        return Ok(Rule::Anyone);
    }
    let mut parser = Parser { tokens, pos: 0 };
    let rule = parser.or()?;
    match parser.tokens.get(parser.pos) {
        None => Ok(rule),
        Some(t) => Err(format!("unexpected \"{t}\" after a complete rule")),
    }
}

fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        match c {
            '(' | ')' => {
                if !word.is_empty() {
                    tokens.push(std::mem::take(&mut word));
                }
                tokens.push(c.to_string());
            }
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    tokens.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    tokens
}

struct Parser {
    tokens: Vec<String>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.pos).map(String::as_str)
    }

    fn next(&mut self) -> Option<String> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<Rule, String> {
        let mut parts = vec![self.and()?];
        while self.peek().is_some_and(|t| t.eq_ignore_ascii_case("or")) {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Rule::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Rule, String> {
        let mut parts = vec![self.not()?];
        while self.peek().is_some_and(|t| t.eq_ignore_ascii_case("and")) {
            self.pos += 1;
            parts.push(self.not()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Rule::And(parts)
        })
    }

    fn not(&mut self) -> Result<Rule, String> {
        if self.peek().is_some_and(|t| t.eq_ignore_ascii_case("not")) {
            self.pos += 1;
            return Ok(Rule::Not(Box::new(self.not()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Rule, String> {
        let Some(token) = self.next() else {
            return Err("the rule ends where a check was expected".into());
        };
        match token.as_str() {
            "(" => {
                let inner = self.or()?;
                match self.next().as_deref() {
                    Some(")") => Ok(inner),
                    _ => Err("a \"(\" is not closed".into()),
                }
            }
            "@" => Ok(Rule::Anyone),
            "!" => Ok(Rule::Nobody),
            ")" => Err("unexpected \")\"".into()),
            word => match word.split_once(':') {
                Some(("role", role)) if !role.is_empty() => Ok(Rule::Role(role.to_string())),
                Some(("rule", rule)) if !rule.is_empty() => Ok(Rule::Named(rule.to_string())),
                _ => Err(format!(
                    "\"{word}\" is not a check; expected role:NAME, rule:NAME, @, !, not, or \"(\""
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(roles: &[&str]) -> Identity {
        Identity {
            user_id: Some("u".into()),
            project_id: Some("p".into()),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            token: None,
        }
    }

    fn policy(pairs: &[(&str, &str)]) -> Result<Policy, PolicyError> {
        Policy::with_overrides(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn panko_defaults() {
        let p = Policy::default();
        assert!(p.is_admin(&who(&["admin"])));
        assert!(p.is_admin(&who(&["ADMIN"])));
        assert!(!p.is_admin(&who(&["member"])));
        assert!(p.allows(EVENTS_INDEX, &who(&[])));
        assert!(!p.allows(EVENTS_CREATE, &who(&["member"])));
        assert!(p.allows(TOKENS_CREATE, &who(&["admin"])));
    }

    #[test]
    fn syntax() {
        assert_eq!(parse("").unwrap(), Rule::Anyone);
        assert_eq!(parse("  ").unwrap(), Rule::Anyone);
        assert_eq!(parse("@").unwrap(), Rule::Anyone);
        assert_eq!(parse("!").unwrap(), Rule::Nobody);
        assert_eq!(
            parse("role:a or role:b and not role:c").unwrap(),
            Rule::Or(vec![
                Rule::Role("a".into()),
                Rule::And(vec![
                    Rule::Role("b".into()),
                    Rule::Not(Box::new(Rule::Role("c".into())))
                ])
            ])
        );
        assert_eq!(
            parse("(role:a or role:b) and rule:x").unwrap(),
            Rule::And(vec![
                Rule::Or(vec![Rule::Role("a".into()), Rule::Role("b".into())]),
                Rule::Named("x".into())
            ])
        );
    }

    #[test]
    fn syntax_errors_say_what() {
        for (text, expected) in [
            ("role:", "is not a check"),
            ("admin", "is not a check"),
            ("role:a or", "ends where a check was expected"),
            ("(role:a", "not closed"),
            ("role:a)", "unexpected \")\""),
            ("role:a role:b", "after a complete rule"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(expected), "{text:?}: {e}");
        }
    }

    #[test]
    fn overrides_are_checked() {
        let e = policy(&[("events:indx", "")]).unwrap_err();
        assert_eq!(e.rule, "events:indx");
        assert!(e.message.contains("no such rule"), "{e}");

        let e = policy(&[("events:create", "rule:nope")]).unwrap_err();
        assert_eq!(e.rule, "events:create");
        assert!(e.message.contains("rule:nope refers to no rule"), "{e}");

        let e = policy(&[("segregation", "rule:events:create")]).unwrap_err();
        assert!(e.message.contains("cycle"), "{e}");

        let e = policy(&[("events:show", "role:a and")]).unwrap_err();
        assert_eq!(e.rule, "events:show");
    }

    #[test]
    fn overrides_take_effect() {
        let p = policy(&[
            ("context_is_admin", "role:admin or role:operator"),
            ("events:index", "not role:banned"),
            ("events:create", "rule:segregation or role:publisher"),
        ])
        .unwrap();
        assert!(p.is_admin(&who(&["operator"])));
        assert!(!p.allows(EVENTS_INDEX, &who(&["banned"])));
        assert!(p.allows(EVENTS_INDEX, &who(&["member"])));
        assert!(p.allows(EVENTS_CREATE, &who(&["publisher"])));
        assert!(!p.allows(EVENTS_CREATE, &who(&["member"])));
        let nobody = policy(&[("events:show", "!")]).unwrap();
        assert!(!nobody.allows(EVENTS_SHOW, &who(&["admin"])));
    }
}

//! `fds`: real-time fraud rules on transactions (seed `001` §3.3, "이상거래탐지"). On the
//! configured transaction paths the filter reads the amount, payee and account from the
//! form or JSON body, adds context (is the device new for this user, the local time of
//! day, the user's transfers in a sliding window and today's cumulative amount, whether the
//! payee is on a fraud list) and evaluates every rule, a CEL expression
//! (`cel` crate), against it. The fired rules' most severe action is taken: `allow`,
//! `alert` (forwarded, with an alert event for a call-back), `step-up` (redirect to the
//! additional-authentication page), `hold` (not forwarded; the customer is told the
//! transfer is held for review) or `block` (403). Every evaluation that fires a rule emits
//! `fds.decision` with the fired rules and a risk score (the sum of their scores, at most
//! 100).
//!
//! Counters live in the shared store (`haetae-bus` KV) so every gateway of a cluster sees
//! the same history: transfers per user in one-minute buckets (the window's buckets are
//! summed, so the window slides by the minute) and the cumulative amount per user and
//! local day. Only transactions that went through (`allow`, `alert`) are counted, and the
//! current one is included in the values the rules see.
//!
//! Variables a rule can use: `amount` (int, won), `payee`, `account`, `user` (strings),
//! `user_known`, `device_new`, `payee_fraud` (bools), `hour`, `minute`, `weekday` (ints;
//! local time, Monday = 1), `recent_count` (transfers in the last `window_minutes`,
//! this one included), `today_total` (today's cumulative amount, this one included),
//! `ip` (string).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use haetae_core::{EventCategory, EventKind, FilterInstance, ListKind, PolicySnapshot, Severity};
use http::{HeaderValue, Method, StatusCode, header};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::filter::{
    Decision, FilterContext, FilterError, LocalResponse, Notice, PhaseResult, Phases, Reason,
    SecurityFilter,
};
use crate::filters::{BuildResult, ConfigProblem, list_entries, typed_config};

/// The kind name in policies.
pub const KIND: &str = "fds";

/// The bucket of the sliding window, in seconds.
const BUCKET_SECS: i64 = 60;

/// The longest window (the shared store keeps entries at most 24 h).
const MAX_WINDOW_MINUTES: u64 = 24 * 60 - 5;

/// The most rules.
const MAX_RULES: usize = 256;

/// What a rule does when it fires; ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FdsAction {
    /// Nothing but the event.
    Allow,
    /// Forwarded, with an alert event (e.g. for a call-back to the customer).
    Alert,
    /// Sent to the additional-authentication page.
    StepUp,
    /// Not forwarded; the customer is told it is held for review.
    Hold,
    /// Refused.
    Block,
}

impl FdsAction {
    fn as_str(self) -> &'static str {
        match self {
            FdsAction::Allow => "allow",
            FdsAction::Alert => "alert",
            FdsAction::StepUp => "step-up",
            FdsAction::Hold => "hold",
            FdsAction::Block => "block",
        }
    }
}

/// One rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Its name in events.
    pub name: String,
    /// A CEL expression that is `true` when the rule fires.
    pub expr: String,
    /// What to do.
    pub action: FdsAction,
    /// Its share of the risk score (0 to 100).
    #[serde(default)]
    pub score: u32,
}

/// `fds`' configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FdsConfig {
    /// Path prefixes of transaction requests (`POST`, `PUT`).
    pub paths: Vec<String>,
    /// The body field with the amount (integer won; `,` and `_` separators allowed).
    pub amount_field: String,
    /// The body field with the payee's account.
    pub payee_field: String,
    /// The body field with the paying account.
    pub account_field: String,
    /// The body field naming the user when no earlier filter identified them.
    pub user_field: Option<String>,
    /// Local time is UTC plus this many minutes (540: Asia/Seoul).
    pub utc_offset_minutes: i32,
    /// The sliding window of `recent_count`, in minutes.
    pub window_minutes: u64,
    /// How long a device stays known for a user after a transaction went through from it,
    /// in hours (the shared store keeps entries at most 24 h; use a device registry for
    /// longer memory).
    pub device_memory_hours: u64,
    /// Named policy lists (kind `account`) of fraud accounts.
    pub fraud_lists: Vec<String>,
    /// Fraud accounts given inline.
    pub fraud_accounts: Vec<String>,
    /// Where `step-up` sends the client.
    pub step_up_path: String,
    /// The rules; empty: the default rule set.
    pub rules: Vec<RuleConfig>,
    /// The most body bytes read.
    pub max_body: usize,
    /// Separates unrelated services sharing one store: `[A-Za-z0-9_-]`.
    pub namespace: String,
    /// A MaxMind-format country database (`GeoLite2-Country.mmdb`, `GeoIP2-Country.mmdb`
    /// or a City one): the client's country for the `country` variable.
    pub geoip_country_db: Option<PathBuf>,
    /// A MaxMind-format ASN database (`GeoLite2-ASN.mmdb`): `asn` and `as_org`.
    pub geoip_asn_db: Option<PathBuf>,
}

impl Default for FdsConfig {
    fn default() -> Self {
        FdsConfig {
            paths: vec!["/transfer".into()],
            amount_field: "amount".into(),
            payee_field: "payee_account".into(),
            account_field: "account_number".into(),
            user_field: Some("user_id".into()),
            utc_offset_minutes: 9 * 60,
            window_minutes: 10,
            device_memory_hours: 23,
            fraud_lists: Vec::new(),
            fraud_accounts: Vec::new(),
            step_up_path: "/auth/step-up".into(),
            rules: Vec::new(),
            max_body: 64 * 1024,
            namespace: "default".into(),
            geoip_country_db: None,
            geoip_asn_db: None,
        }
    }
}

/// The default rule set, from the issue's examples.
#[must_use]
pub fn default_rules() -> Vec<RuleConfig> {
    let rule = |name: &str, expr: &str, action, score| RuleConfig {
        name: name.into(),
        expr: expr.into(),
        action,
        score,
    };
    vec![
        rule(
            "new-device-large-daily-total",
            "device_new && today_total >= 3000000",
            FdsAction::StepUp,
            40,
        ),
        rule("rapid-transfers", "recent_count > 5", FdsAction::Hold, 50),
        rule("fraud-payee", "payee_fraud", FdsAction::Block, 100),
        rule(
            "night-large-transfer",
            "(hour >= 22 || hour < 6) && amount >= 10000000",
            FdsAction::Alert,
            30,
        ),
    ]
}

struct CompiledRule {
    cfg: RuleConfig,
    program: cel::Program,
}

/// The `fds` filter.
pub struct FdsFilter {
    cfg: FdsConfig,
    rules: Vec<CompiledRule>,
    fraud: std::collections::HashSet<String>,
    geo: GeoIp,
}

/// The optional MaxMind-format databases, loaded and verified when the policy is applied.
#[derive(Default)]
pub struct GeoIp {
    country: Option<maxminddb::Reader<Vec<u8>>>,
    asn: Option<maxminddb::Reader<Vec<u8>>>,
}

/// The largest database file read (GeoLite2-City is about 60 MB).
const MAX_GEOIP_BYTES: u64 = 512 << 20;

#[derive(Deserialize)]
struct CountryRecord {
    country: Option<IsoCode>,
    registered_country: Option<IsoCode>,
}

#[derive(Deserialize)]
struct IsoCode {
    iso_code: Option<String>,
}

#[derive(Deserialize)]
struct AsnRecord {
    autonomous_system_number: Option<u32>,
    autonomous_system_organization: Option<String>,
}

impl GeoIp {
    /// Opens and verifies the configured databases; each problem names its field.
    fn load(cfg: &FdsConfig, problems: &mut Vec<ConfigProblem>) -> GeoIp {
        let open = |path: &Option<PathBuf>, field: &str, problems: &mut Vec<ConfigProblem>| {
            let path = path.as_ref()?;
            match read_mmdb(path) {
                Ok(reader) => Some(reader),
                Err(e) => {
                    problems.push(ConfigProblem::new(
                        format!("config.{field}"),
                        format!("{}: {e}", path.display()),
                    ));
                    None
                }
            }
        };
        GeoIp {
            country: open(&cfg.geoip_country_db, "geoip_country_db", problems),
            asn: open(&cfg.geoip_asn_db, "geoip_asn_db", problems),
        }
    }

    /// The client's country (ISO 3166-1 alpha-2, "" when unknown), AS number (0 when
    /// unknown) and AS organisation. A lookup error reads as unknown.
    #[must_use]
    pub fn lookup(&self, ip: std::net::IpAddr) -> (String, i64, String) {
        let country = self
            .country
            .as_ref()
            .and_then(|r| r.lookup(ip).ok()?.decode::<CountryRecord>().ok()?)
            .and_then(|c| {
                c.country
                    .and_then(|i| i.iso_code)
                    .or_else(|| c.registered_country.and_then(|i| i.iso_code))
            })
            .filter(|code| code.len() <= 8)
            .unwrap_or_default();
        let (asn, org) = self
            .asn
            .as_ref()
            .and_then(|r| r.lookup(ip).ok()?.decode::<AsnRecord>().ok()?)
            .map(|a| {
                (
                    i64::from(a.autonomous_system_number.unwrap_or(0)),
                    a.autonomous_system_organization
                        .unwrap_or_default()
                        .chars()
                        .take(128)
                        .collect(),
                )
            })
            .unwrap_or_default();
        (country, asn, org)
    }
}

/// Reads a MaxMind-format database, bounded in size, and verifies its search tree and data
/// section before any lookup trusts them.
fn read_mmdb(path: &std::path::Path) -> Result<maxminddb::Reader<Vec<u8>>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_GEOIP_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_GEOIP_BYTES {
        return Err(format!("larger than {} MiB", MAX_GEOIP_BYTES >> 20));
    }
    let reader = maxminddb::Reader::from_source(bytes)
        .map_err(|e| format!("not a MaxMind database: {e}"))?;
    reader
        .verify()
        .map_err(|e| format!("the database is damaged: {e}"))?;
    Ok(reader)
}

impl std::fmt::Debug for FdsFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FdsFilter")
            .field("paths", &self.cfg.paths)
            .field(
                "rules",
                &self.rules.iter().map(|r| &r.cfg.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Builds the filter from its instance.
pub fn build(instance: &FilterInstance, policy: &PolicySnapshot) -> BuildResult {
    let cfg: FdsConfig = typed_config(instance)?;
    let mut problems = Vec::new();
    let mut fraud = list_entries(
        policy,
        &cfg.fraud_lists,
        ListKind::Account,
        "fraud_lists",
        &mut problems,
    );
    fraud.extend(cfg.fraud_accounts.iter().cloned());
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Arc::new(FdsFilter::new(cfg, &fraud)?))
}

/// The facts about one transaction the rules see.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Amount, won.
    pub amount: i64,
    /// Payee account (normalised).
    pub payee: String,
    /// Paying account.
    pub account: String,
    /// User id ("" when unknown).
    pub user: String,
    /// Whether the user is known.
    pub user_known: bool,
    /// The device is not known for this user.
    pub device_new: bool,
    /// The payee is on a fraud list.
    pub payee_fraud: bool,
    /// Local hour.
    pub hour: i64,
    /// Local minute.
    pub minute: i64,
    /// Local weekday, Monday = 1.
    pub weekday: i64,
    /// Transfers in the window, this one included.
    pub recent_count: i64,
    /// Today's cumulative amount, this one included.
    pub today_total: i64,
    /// Client address.
    pub ip: String,
    /// The client's country, ISO 3166-1 alpha-2 (`KR`), "" when unknown or without a
    /// country database.
    pub country: String,
    /// The client's autonomous system number, 0 when unknown.
    pub asn: i64,
    /// The autonomous system's organisation, "" when unknown.
    pub as_org: String,
}

/// What evaluating the rules concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The most severe action of the fired rules (`allow` when none fired).
    pub action: FdsAction,
    /// The fired rules' names.
    pub fired: Vec<String>,
    /// Sum of the fired rules' scores, at most 100.
    pub score: u32,
    /// Rules whose evaluation failed (not a boolean, unknown variable), with the error.
    pub errors: Vec<String>,
}

fn normalise_account(a: &str) -> String {
    a.chars().filter(char::is_ascii_alphanumeric).collect()
}

impl FdsFilter {
    /// The filter with this configuration and fraud accounts, or every problem with it.
    pub fn new(cfg: FdsConfig, fraud: &[String]) -> Result<FdsFilter, Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        if cfg.paths.is_empty() || cfg.paths.iter().any(|p| !p.starts_with('/')) {
            problems.push(ConfigProblem::new(
                "config.paths",
                "name the transaction paths, each starting with '/', e.g. [\"/transfer\"]",
            ));
        }
        if !cfg.step_up_path.starts_with('/') {
            problems.push(ConfigProblem::new(
                "config.step_up_path",
                format!("{:?} must start with '/'", cfg.step_up_path),
            ));
        }
        if !(-14 * 60..=14 * 60).contains(&cfg.utc_offset_minutes) {
            problems.push(ConfigProblem::new(
                "config.utc_offset_minutes",
                format!(
                    "{} is not a UTC offset (-840 to 840)",
                    cfg.utc_offset_minutes
                ),
            ));
        }
        if cfg.window_minutes == 0 || cfg.window_minutes > MAX_WINDOW_MINUTES {
            problems.push(ConfigProblem::new(
                "config.window_minutes",
                format!("{}; use 1 to {MAX_WINDOW_MINUTES}", cfg.window_minutes),
            ));
        }
        if cfg.device_memory_hours == 0 || cfg.device_memory_hours > 23 {
            problems.push(ConfigProblem::new(
                "config.device_memory_hours",
                format!(
                    "{}; use 1 to 23 (the shared store keeps entries at most 24 h)",
                    cfg.device_memory_hours
                ),
            ));
        }
        if cfg.namespace.is_empty()
            || cfg.namespace.len() > 32
            || !cfg
                .namespace
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            problems.push(ConfigProblem::new(
                "config.namespace",
                format!("{:?}: use 1 to 32 of [A-Za-z0-9_-]", cfg.namespace),
            ));
        }
        let rule_cfgs = if cfg.rules.is_empty() {
            default_rules()
        } else {
            cfg.rules.clone()
        };
        if rule_cfgs.len() > MAX_RULES {
            problems.push(ConfigProblem::new(
                "config.rules",
                format!("{} rules; at most {MAX_RULES}", rule_cfgs.len()),
            ));
        }
        let mut rules = Vec::new();
        for (i, r) in rule_cfgs.into_iter().enumerate() {
            if r.score > 100 {
                problems.push(ConfigProblem::new(
                    format!("config.rules[{i}].score"),
                    format!("{}; use 0 to 100", r.score),
                ));
            }
            if r.expr.len() > 4096 {
                problems.push(ConfigProblem::new(
                    format!("config.rules[{i}].expr"),
                    "longer than 4096 characters",
                ));
                continue;
            }
            match cel::Program::compile(&r.expr) {
                Ok(program) => {
                    // Checked against sample facts now, so a typo fails the policy, not a
                    // transaction.
                    if let Err(e) = eval_rule(&program, &Facts::default()) {
                        problems.push(ConfigProblem::new(
                            format!("config.rules[{i}].expr"),
                            format!("rule {:?}: {e}", r.name),
                        ));
                    }
                    rules.push(CompiledRule { cfg: r, program });
                }
                Err(e) => problems.push(ConfigProblem::new(
                    format!("config.rules[{i}].expr"),
                    format!("rule {:?} is not a CEL expression: {e}", r.name),
                )),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let geo = GeoIp::load(&cfg, &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        let fraud = fraud.iter().map(|a| normalise_account(a)).collect();
        Ok(FdsFilter {
            cfg,
            rules,
            fraud,
            geo,
        })
    }

    /// Evaluates every rule on `facts`.
    #[must_use]
    pub fn evaluate(&self, facts: &Facts) -> Verdict {
        let mut v = Verdict {
            action: FdsAction::Allow,
            fired: Vec::new(),
            score: 0,
            errors: Vec::new(),
        };
        for r in &self.rules {
            match eval_rule(&r.program, facts) {
                Ok(true) => {
                    v.fired.push(r.cfg.name.clone());
                    v.score = (v.score + r.cfg.score).min(100);
                    v.action = v.action.max(r.cfg.action);
                }
                Ok(false) => {}
                Err(e) => v.errors.push(format!("{}: {e}", r.cfg.name)),
            }
        }
        v
    }

    fn key(&self, what: &str, user: &str, suffix: &str) -> String {
        let mut h = Sha256::new();
        h.update(b"haetae-fds\0");
        h.update(self.cfg.namespace.as_bytes());
        h.update([0]);
        h.update(user.as_bytes());
        let d = h.finalize();
        format!(
            "fds.{}.{what}.{}{suffix}",
            self.cfg.namespace,
            hex::encode(&d[..16])
        )
    }
}

fn eval_rule(program: &cel::Program, f: &Facts) -> Result<bool, String> {
    let mut ctx = cel::Context::default();
    ctx.add_variable_from_value("amount", f.amount);
    ctx.add_variable_from_value("payee", f.payee.clone());
    ctx.add_variable_from_value("account", f.account.clone());
    ctx.add_variable_from_value("user", f.user.clone());
    ctx.add_variable_from_value("user_known", f.user_known);
    ctx.add_variable_from_value("device_new", f.device_new);
    ctx.add_variable_from_value("payee_fraud", f.payee_fraud);
    ctx.add_variable_from_value("hour", f.hour);
    ctx.add_variable_from_value("minute", f.minute);
    ctx.add_variable_from_value("weekday", f.weekday);
    ctx.add_variable_from_value("recent_count", f.recent_count);
    ctx.add_variable_from_value("today_total", f.today_total);
    ctx.add_variable_from_value("ip", f.ip.clone());
    ctx.add_variable_from_value("country", f.country.clone());
    ctx.add_variable_from_value("asn", f.asn);
    ctx.add_variable_from_value("as_org", f.as_org.clone());
    match program.execute(&ctx) {
        Ok(cel::Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!("gives {other:?}, not a boolean")),
        Err(e) => Err(e.to_string()),
    }
}

/// Parses an amount: digits with optional `,` or `_` separators; at most 10^15 won.
fn parse_amount(text: &str) -> Option<i64> {
    let t = text.trim();
    if t.is_empty() || t.len() > 32 {
        return None;
    }
    let mut n: i64 = 0;
    let mut digits = 0;
    for c in t.chars() {
        match c {
            '0'..='9' => {
                n = n.checked_mul(10)?.checked_add(i64::from(c as u8 - b'0'))?;
                digits += 1;
            }
            ',' | '_' => {}
            _ => return None,
        }
    }
    (digits > 0 && n <= 1_000_000_000_000_000).then_some(n)
}

#[allow(clippy::needless_pass_by_value)]
fn kv_error(e: haetae_bus::BusError) -> FilterError {
    FilterError::new(format!("fds: shared transaction history unavailable: {e}"))
}

#[async_trait::async_trait]
impl SecurityFilter for FdsFilter {
    fn phases(&self) -> Phases {
        Phases {
            request_body: Some(self.cfg.max_body),
            ..Phases::default()
        }
    }

    #[allow(clippy::too_many_lines)]
    async fn on_request_body(&self, ctx: &mut FilterContext<'_>) -> PhaseResult {
        let req = ctx.request;
        if !(req.method() == Method::POST || req.method() == Method::PUT)
            || !self
                .cfg
                .paths
                .iter()
                .any(|p| req.path().starts_with(p.as_str()))
        {
            return Ok(Decision::Continue);
        }
        let params = req.body_params();
        let Some(amount_text) = params.get(&self.cfg.amount_field) else {
            return Ok(Decision::Continue);
        };
        let Some(amount) = parse_amount(amount_text) else {
            return Ok(Decision::Respond(
                LocalResponse::text(
                    StatusCode::BAD_REQUEST,
                    "The transfer amount could not be read.\n",
                ),
                Reason::new(
                    "fds-unreadable-amount",
                    Severity::Medium,
                    format!("field {:?} is not an amount in won", self.cfg.amount_field),
                ),
            ));
        };
        let payee = normalise_account(params.get(&self.cfg.payee_field).unwrap_or_default());
        let account = normalise_account(params.get(&self.cfg.account_field).unwrap_or_default());
        let user = ctx
            .attributes
            .user_id
            .clone()
            .or_else(|| {
                self.cfg
                    .user_field
                    .as_ref()
                    .and_then(|f| params.get(f))
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        let user_known = !user.is_empty();
        let device = ctx
            .attributes
            .device_id()
            .map(str::to_owned)
            .or_else(|| req.header("user-agent").map(str::to_owned))
            .unwrap_or_default();
        let now = ctx.clock().now_utc();
        let offset = time::UtcOffset::from_whole_seconds(self.cfg.utc_offset_minutes * 60)
            .unwrap_or(time::UtcOffset::UTC);
        let local = now.to_offset(offset);
        let unix = now.unix_timestamp();
        let day = format!(
            ".{:04}{:02}{:02}",
            local.year(),
            u8::from(local.month()),
            local.day()
        );

        let (country, asn, as_org) = self.geo.lookup(req.client_ip());
        let mut facts = Facts {
            amount,
            payee_fraud: !payee.is_empty() && self.fraud.contains(&payee),
            payee,
            account,
            user: user.clone(),
            user_known,
            device_new: true,
            hour: i64::from(local.hour()),
            minute: i64::from(local.minute()),
            weekday: i64::from(local.weekday().number_from_monday()),
            recent_count: 1,
            today_total: amount,
            ip: req.client_ip().to_string(),
            country,
            asn,
            as_org,
        };
        let kv = ctx.kv().cloned();
        let window_buckets =
            i64::try_from(self.cfg.window_minutes).unwrap_or(10) * 60 / BUCKET_SECS;
        let bucket = unix.div_euclid(BUCKET_SECS);
        if user_known {
            let kv = kv.as_ref().ok_or_else(|| {
                FilterError::new(
                    "fds needs the shared store for transaction history; none configured",
                )
            })?;
            let dev_key = self.key("d", &format!("{user}\0{device}"), "");
            facts.device_new =
                device.is_empty() || kv.get(&dev_key).await.map_err(kv_error)?.is_none();
            for b in (bucket - window_buckets + 1)..=bucket {
                if let Some(e) = kv
                    .get(&self.key("c", &user, &format!(".{b}")))
                    .await
                    .map_err(kv_error)?
                {
                    let n: i64 = std::str::from_utf8(&e.value)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    facts.recent_count += n;
                }
            }
            if let Some(e) = kv
                .get(&self.key("t", &user, &day))
                .await
                .map_err(kv_error)?
            {
                let n: i64 = std::str::from_utf8(&e.value)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                facts.today_total = facts.today_total.saturating_add(n);
            }
        }

        let verdict = self.evaluate(&facts);
        let passes = matches!(verdict.action, FdsAction::Allow | FdsAction::Alert);
        if passes
            && user_known
            && let Some(kv) = &kv
        {
            let window_ttl = Duration::from_secs(self.cfg.window_minutes * 60 + 120);
            kv.increment(
                &self.key("c", &user, &format!(".{bucket}")),
                1,
                Some(window_ttl),
            )
            .await
            .map_err(kv_error)?;
            // Until local midnight (and a minute), so the day's total ends with the day.
            let secs_today = i64::from(local.hour()) * 3600
                + i64::from(local.minute()) * 60
                + i64::from(local.second());
            let left = u64::try_from(86_400 - secs_today + 60)
                .unwrap_or(3600)
                .min(86_000);
            kv.increment(
                &self.key("t", &user, &day),
                amount,
                Some(Duration::from_secs(left)),
            )
            .await
            .map_err(kv_error)?;
            if !device.is_empty() {
                kv.put(
                    &self.key("d", &format!("{user}\0{device}"), ""),
                    b"1",
                    Some(Duration::from_secs(self.cfg.device_memory_hours * 3600)),
                )
                .await
                .map_err(kv_error)?;
            }
        }

        if !verdict.errors.is_empty() {
            let event = ctx
                .event("fds.rule_error")
                .kind(EventKind::PipelineError)
                .category(EventCategory::Host)
                .severity(Severity::Medium)
                .message(format!(
                    "rules failed to evaluate: {}",
                    verdict.errors.join("; ")
                ));
            ctx.emit(event);
        }
        if verdict.fired.is_empty() {
            return Ok(Decision::Continue);
        }
        let severity = match verdict.action {
            FdsAction::Allow => Severity::Low,
            FdsAction::Alert | FdsAction::StepUp => Severity::Medium,
            FdsAction::Hold => Severity::High,
            FdsAction::Block => Severity::Critical,
        };
        let message = format!(
            "rules fired: {} (risk score {})",
            verdict.fired.join(", "),
            verdict.score
        );
        let mut event = ctx
            .event("fds.decision")
            .kind(EventKind::Alert)
            .category(EventCategory::IntrusionDetection)
            .severity(severity)
            .rule(verdict.fired.join(","))
            .message(message.clone())
            .label("fds_action", verdict.action.as_str())
            .label("risk_score", verdict.score.to_string())
            .label("rules", verdict.fired.join(","))
            .label("amount", amount.to_string())
            .label("recent_count", facts.recent_count.to_string())
            .label("today_total", facts.today_total.to_string())
            .label("device_new", facts.device_new.to_string())
            .label(
                "mode",
                if ctx.mode() == haetae_core::FilterMode::Enforce {
                    "enforce"
                } else {
                    "monitor"
                },
            );
        if let Some(u) = (!user.is_empty()).then_some(&user) {
            event = event.user_id(u.as_str());
        }
        if !facts.country.is_empty() {
            event = event.label("country", facts.country.clone());
        }
        if facts.asn != 0 {
            event = event.label("asn", facts.asn.to_string());
        }
        ctx.emit(event);
        let reason = Reason::new(
            format!("fds-{}", verdict.action.as_str()),
            severity,
            message,
        );
        let no_store = |mut r: LocalResponse| {
            r.headers
                .push((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
            r
        };
        Ok(match verdict.action {
            FdsAction::Allow | FdsAction::Alert => Decision::Continue,
            FdsAction::StepUp => Decision::Notice(
                Notice::Redirect {
                    location: self.cfg.step_up_path.clone(),
                },
                reason,
            ),
            FdsAction::Hold => Decision::Respond(
                no_store(LocalResponse::html(StatusCode::ACCEPTED, HOLD_HTML)),
                reason,
            ),
            FdsAction::Block => Decision::Respond(
                no_store(LocalResponse::html(StatusCode::FORBIDDEN, BLOCK_HTML)),
                reason,
            ),
        })
    }
}

const HOLD_HTML: &str = "<!doctype html><html lang=\"ko\"><meta charset=\"utf-8\"><title>이체 보류</title>\
<h1>이체가 보류되었습니다</h1><p>고객님의 안전을 위해 이 이체는 확인 후 처리됩니다. 은행에서 곧 연락드립니다.</p>\
<p>This transfer is held for review; the bank will contact you.</p></html>\n";

const BLOCK_HTML: &str = "<!doctype html><html lang=\"ko\"><meta charset=\"utf-8\"><title>이체 차단</title>\
<h1>이체가 차단되었습니다</h1><p>이상거래로 판단되어 이체를 진행할 수 없습니다. 고객센터로 문의해 주십시오.</p>\
<p>This transfer was refused as likely fraud; please call the bank.</p></html>\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> FdsFilter {
        FdsFilter::new(FdsConfig::default(), &["999-00-12345".into()]).unwrap()
    }

    #[test]
    fn the_default_rules_fire_on_the_issue_examples() {
        let f = filter();
        let base = Facts {
            amount: 50_000,
            user: "kim".into(),
            user_known: true,
            hour: 14,
            recent_count: 1,
            today_total: 50_000,
            ..Facts::default()
        };
        assert_eq!(f.evaluate(&base).action, FdsAction::Allow);
        assert!(f.evaluate(&base).fired.is_empty());

        let new_device = Facts {
            device_new: true,
            today_total: 3_000_000,
            ..base.clone()
        };
        let v = f.evaluate(&new_device);
        assert_eq!(v.action, FdsAction::StepUp);
        assert_eq!(v.fired, ["new-device-large-daily-total"]);
        assert_eq!(v.score, 40);

        let rapid = Facts {
            recent_count: 6,
            ..base.clone()
        };
        assert_eq!(f.evaluate(&rapid).action, FdsAction::Hold);

        let night = Facts {
            hour: 23,
            amount: 10_000_000,
            ..base.clone()
        };
        assert_eq!(f.evaluate(&night).action, FdsAction::Alert);

        let fraud = Facts {
            payee_fraud: true,
            recent_count: 9,
            ..base
        };
        let v = f.evaluate(&fraud);
        assert_eq!(v.action, FdsAction::Block, "the most severe action wins");
        assert_eq!(v.score, 100, "scores add up to at most 100");
    }

    #[test]
    fn bad_rules_are_refused_with_their_place() {
        let cfg = FdsConfig {
            rules: vec![
                RuleConfig {
                    name: "typo".into(),
                    expr: "amount >=".into(),
                    action: FdsAction::Block,
                    score: 10,
                },
                RuleConfig {
                    name: "not-bool".into(),
                    expr: "amount + 1".into(),
                    action: FdsAction::Block,
                    score: 10,
                },
                RuleConfig {
                    name: "unknown-var".into(),
                    expr: "balance > 1".into(),
                    action: FdsAction::Block,
                    score: 101,
                },
            ],
            ..FdsConfig::default()
        };
        let problems = FdsFilter::new(cfg, &[]).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert!(paths.contains(&"config.rules[0].expr"), "{problems:?}");
        assert!(paths.contains(&"config.rules[1].expr"), "{problems:?}");
        assert!(paths.contains(&"config.rules[2].expr"), "{problems:?}");
        assert!(paths.contains(&"config.rules[2].score"), "{problems:?}");
    }

    #[test]
    fn amounts_parse_strictly() {
        assert_eq!(parse_amount("3,000,000"), Some(3_000_000));
        assert_eq!(parse_amount(" 10_000 "), Some(10_000));
        assert_eq!(parse_amount("1e7"), None);
        assert_eq!(parse_amount("-5"), None);
        assert_eq!(parse_amount("99999999999999999999"), None);
        assert_eq!(parse_amount(","), None);
    }
}

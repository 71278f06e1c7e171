//! Similarity analysis (seed 002 (d)): compares a scan with the knowledge base's known
//! vulnerabilities, scores each 0-100 (100 = the same vulnerability), and learns what it has
//! not seen as an `unconfirmed` entry.
//!
//! # Features
//! From a [`Report`]: the finding codes (each weighted by its severity: info 0.5, low 1,
//! medium 2, high 3, critical 4; note-class findings are ignored), the CVE ids the findings
//! carry, the detected file type, and each finding's location normalised by
//! [`normalise_location`] (offsets dropped, digit runs replaced by `#`).
//!
//! # Measure
//! Against a [`KnownVulnerability`]'s [`Signature`] (codes, file types, locations) and CVEs:
//!
//! - `code` = severity weight of the file's codes that are in the signature / weight of all
//!   the file's codes: how much of what is wrong with the file this vulnerability explains;
//! - `loc` = the best token Jaccard between a location of a matching finding and a signature
//!   location (1 when the same place, partial for the same part in another container);
//! - `cve` = 1 when a finding names one of the entry's CVEs (dropped from the measure, with
//!   its weight spread over the others, for entries without CVEs);
//! - `type` = 1 when the file type is one the signature lists (or it lists none).
//!
//! `score = round(100 × (0.55·code + 0.15·loc + 0.20·cve + 0.10·type))`. An identical case
//! scores 100; a variant that adds unrelated findings loses only the share of severity those
//! add; a file with no code in common can reach at most 25 (type and a similar location).

use std::collections::{BTreeMap, BTreeSet};

use haetae_core::{Severity, Verdict};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::finding::{FindingClass, Location};
use crate::kb::{
    InflowSource, KbError, KnowledgeBase, KnownVulnerability, NewAnalysis, Signature, Status,
};
use crate::report::Report;

/// Below this best score a non-clean result is learned as a new `unconfirmed` entry.
pub const LEARN_BELOW: u8 = 50;

/// How many matches an [`Analysis`] keeps.
pub const TOP: usize = 5;

const W_CODE: f64 = 0.55;
const W_LOC: f64 = 0.15;
const W_CVE: f64 = 0.20;
const W_TYPE: f64 = 0.10;

fn weight(s: Severity) -> f64 {
    match s {
        Severity::Info => 0.5,
        Severity::Low => 1.0,
        Severity::Medium => 2.0,
        Severity::High => 3.0,
        Severity::Critical => 4.0,
    }
}

/// A location without offsets, digit runs replaced by `#`: `object 1 (Equation.3)` and
/// `object 7 (Equation.3)` are the same place.
#[must_use]
pub fn normalise_location(loc: &Location) -> String {
    let mut parts: Vec<&str> = loc.path.iter().map(String::as_str).collect();
    if let Some(p) = &loc.part {
        parts.push(p);
    }
    let joined = if parts.is_empty() {
        "file".to_owned()
    } else {
        parts.join(" > ")
    };
    let mut out = String::with_capacity(joined.len());
    let mut in_digits = false;
    for c in joined.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
        } else {
            in_digits = false;
            out.push(c);
        }
    }
    out
}

fn tokens(s: &str) -> BTreeSet<String> {
    s.split(|c: char| !(c.is_alphanumeric() || c == '#'))
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn jaccard(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f64 / union as f64
}

/// What the measure reads from a report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Features {
    /// Finding code → its highest severity weight in the file.
    pub codes: BTreeMap<String, f64>,
    /// CVE ids named by the findings.
    pub cves: BTreeSet<String>,
    /// `(code, normalised location)` of every finding.
    pub locations: Vec<(String, String)>,
    /// Detected type.
    pub file_type: String,
}

impl Features {
    /// The features of a scan.
    #[must_use]
    pub fn of(report: &Report) -> Features {
        let mut f = Features {
            file_type: report.detected_type.as_str().to_owned(),
            ..Features::default()
        };
        for finding in &report.findings {
            if finding.class == FindingClass::Note {
                continue;
            }
            let w = weight(finding.severity);
            let e = f.codes.entry(finding.code.clone()).or_insert(0.0);
            *e = e.max(w);
            f.cves.extend(finding.cve.iter().cloned());
            f.locations
                .push((finding.code.clone(), normalise_location(&finding.location)));
        }
        f
    }

    /// The signature a learned entry gets from these features.
    #[must_use]
    pub fn signature(&self) -> Signature {
        let mut locations: Vec<String> = self.locations.iter().map(|(_, l)| l.clone()).collect();
        locations.sort();
        locations.dedup();
        Signature {
            codes: self.codes.keys().cloned().collect(),
            file_types: vec![self.file_type.clone()],
            locations,
        }
    }
}

/// The parts of one score, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    /// Share of the file's severity explained by the signature's codes (0-1).
    pub code: f64,
    /// Best location similarity (0-1).
    pub location: f64,
    /// CVE agreement (0 or 1; `None` for entries without CVEs).
    pub cve: Option<f64>,
    /// File type agreement (0 or 1).
    pub file_type: f64,
}

/// Scores `f` against one known vulnerability: 0-100 and its parts.
#[must_use]
pub fn similarity(f: &Features, v: &KnownVulnerability) -> (u8, Breakdown) {
    let sig: BTreeSet<&str> = v.signature.codes.iter().map(String::as_str).collect();
    let total: f64 = f.codes.values().sum();
    let explained: f64 = f
        .codes
        .iter()
        .filter(|(c, _)| sig.contains(c.as_str()))
        .map(|(_, w)| w)
        .sum();
    let code = if total > 0.0 { explained / total } else { 0.0 };
    let sig_locs: Vec<BTreeSet<String>> = v.signature.locations.iter().map(|l| tokens(l)).collect();
    let location = f
        .locations
        .iter()
        .filter(|(c, _)| sig.contains(c.as_str()))
        .flat_map(|(_, l)| {
            let t = tokens(l);
            sig_locs
                .iter()
                .map(move |s| jaccard(&t, s))
                .collect::<Vec<_>>()
        })
        .fold(0.0, f64::max);
    let cve = (!v.cves.is_empty()).then(|| {
        if v.cves.iter().any(|c| f.cves.contains(c)) {
            1.0
        } else {
            0.0
        }
    });
    let file_type =
        if v.signature.file_types.is_empty() || v.signature.file_types.contains(&f.file_type) {
            1.0
        } else {
            0.0
        };
    let raw = match cve {
        Some(c) => W_CODE * code + W_LOC * location + W_CVE * c + W_TYPE * file_type,
        None => {
            let rest = W_CODE + W_LOC + W_TYPE;
            (W_CODE * code + W_LOC * location + W_TYPE * file_type) / rest
        }
    };
    // Nothing in common but the type is not a match at all.
    let score = if code == 0.0 {
        (raw * 100.0).round().min(25.0)
    } else {
        (raw * 100.0).round()
    };
    let breakdown = Breakdown {
        code,
        location,
        cve,
        file_type,
    };
    (score.clamp(0.0, 100.0) as u8, breakdown)
}

/// One known vulnerability and how close a file is to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Match {
    /// Entry id.
    pub id: String,
    /// Name.
    pub name: String,
    /// CVE ids.
    pub cves: Vec<String>,
    /// References.
    pub links: Vec<String>,
    /// Confirmed or learned.
    pub status: Status,
    /// 0-100.
    pub score: u8,
    /// The parts of the score.
    pub breakdown: Breakdown,
}

/// The known vulnerabilities closest to `f`, best first, ties by id; only scores above 0.
#[must_use]
pub fn rank(f: &Features, known: &[KnownVulnerability]) -> Vec<Match> {
    let mut out: Vec<Match> = known
        .iter()
        .map(|v| {
            let (score, breakdown) = similarity(f, v);
            Match {
                id: v.id.clone(),
                name: v.name.clone(),
                cves: v.cves.clone(),
                links: v.links.clone(),
                status: v.status,
                score,
                breakdown,
            }
        })
        .filter(|m| m.score > 0 && m.breakdown.code > 0.0)
        .collect();
    out.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    out.truncate(TOP);
    out
}

/// The entry learned from a file that matched nothing well enough, or `None` when the file
/// is clean or has nothing but notes.
#[must_use]
pub fn learn(report: &Report, f: &Features) -> Option<KnownVulnerability> {
    if report.verdict == Verdict::Clean || f.codes.is_empty() {
        return None;
    }
    let sig = f.signature();
    let mut h = Sha256::new();
    h.update(f.file_type.as_bytes());
    for c in &sig.codes {
        h.update([0]);
        h.update(c.as_bytes());
    }
    let digest = h.finalize();
    let id: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Some(KnownVulnerability {
        id: format!("learned-{id}"),
        name: format!("Unconfirmed: {} with {}", f.file_type, sig.codes.join(", ")),
        cves: f.cves.iter().cloned().collect(),
        description: format!(
            "Learned from {} ({}), verdict {}; no known vulnerability scored {LEARN_BELOW} or more. An analyst should confirm or remove it.",
            report.path.as_deref().unwrap_or("a file"),
            report.sha256,
            report.verdict.as_str()
        ),
        links: Vec::new(),
        signature: sig,
        status: Status::Unconfirmed,
    })
}

/// The result of comparing one scan with the knowledge base.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Closest known vulnerabilities, best first.
    pub matches: Vec<Match>,
    /// The entry learned from this file, if it matched nothing well enough.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learned: Option<KnownVulnerability>,
    /// The analysis row in the knowledge base.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_id: Option<i64>,
}

impl Analysis {
    /// The best match, if any.
    #[must_use]
    pub fn best(&self) -> Option<&Match> {
        self.matches.first()
    }
}

/// Compares `report` with the knowledge base, learns an `unconfirmed` entry when nothing
/// scores [`LEARN_BELOW`] or more, and records the analysis with its inflow source.
///
/// # Errors
/// [`KbError`] from the database.
pub async fn analyse(
    kb: &KnowledgeBase,
    report: &Report,
    source: &InflowSource,
) -> Result<Analysis, KbError> {
    let known = kb.vulnerabilities().await?;
    let features = Features::of(report);
    let matches = rank(&features, &known);
    let best_score = matches.first().map_or(0, |m| m.score);
    let learned = if best_score < LEARN_BELOW {
        learn(report, &features)
    } else {
        None
    };
    if let Some(l) = &learned {
        kb.upsert_vulnerability(l, "learned").await?;
    }
    let best = matches.first().map(|m| (m.id.as_str(), m.score));
    let record_id = kb
        .record_analysis(&NewAnalysis {
            report,
            source,
            best,
        })
        .await?;
    Ok(Analysis {
        matches,
        learned,
        record_id: Some(record_id),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::kb::known_vulnerabilities;
    use crate::{Limits, scan_bytes};

    /// An RTF carrying an `Equation.3` OLE1 object whose native data is a CFB with an
    /// `Equation Native` stream whose MTEF font record overflows: the CVE-2017-11882 shape.
    pub(crate) fn equation_rtf() -> Vec<u8> {
        let mut native = Vec::new();
        // EQNOLEFILEHDR (28 bytes) then MTEF v3 with a FONT record (tag 8) and a long name.
        native.extend_from_slice(&28u16.to_le_bytes());
        native.extend_from_slice(&0x0002_0000u32.to_le_bytes());
        native.extend_from_slice(&0xC1C6u16.to_le_bytes());
        native.extend_from_slice(&200u32.to_le_bytes());
        native.extend_from_slice(&[0; 16]);
        native.extend_from_slice(&[3, 1, 1, 3, 10, 0x0A, 0x08, 0x5A, 0x5A]);
        native.extend_from_slice(&[b'A'; 48]);
        native.extend_from_slice(b"\x12\x0c\x43\x00cmd.exe /c calc\x00");
        let mut o = Vec::new();
        let class = b"Equation.3\0";
        o.extend_from_slice(&0x0501u32.to_le_bytes());
        o.extend_from_slice(&2u32.to_le_bytes());
        o.extend_from_slice(&(class.len() as u32).to_le_bytes());
        o.extend_from_slice(class);
        o.extend_from_slice(&0u32.to_le_bytes());
        o.extend_from_slice(&0u32.to_le_bytes());
        o.extend_from_slice(&(native.len() as u32).to_le_bytes());
        o.extend_from_slice(&native);
        let hex: String = o.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{{\\rtf1\\ansi{{\\fonttbl{{\\f0 Arial;}}}}Invoice attached\\par{{\\object\\objemb\\objupdate{{\\*\\objclass Equation.3}}\\objw380\\objh260{{\\*\\objdata {hex}}}}}}}"
        )
        .into_bytes()
    }

    fn scan(data: &[u8], name: &str) -> Report {
        scan_bytes(data, Some(name), &Limits::default())
    }

    fn best(report: &Report) -> Vec<Match> {
        rank(&Features::of(report), &known_vulnerabilities().unwrap())
    }

    #[test]
    fn a_cve_2017_11882_style_rtf_names_it_first() {
        let r = scan(&equation_rtf(), "invoice.rtf");
        let m = best(&r);
        assert_eq!(m[0].id, "cve-2017-11882", "{m:#?}");
        assert_eq!(m[0].cves[0], "CVE-2017-11882");
        assert!(m[0].score >= LEARN_BELOW, "{m:#?}");
        assert!(m.iter().skip(1).all(|o| o.score < m[0].score));
    }

    #[test]
    fn the_same_case_scores_100_and_a_variant_scores_high() {
        let exact = scan(&[0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x01, 0xFF, 0xD9], "a.jpg");
        assert_eq!(best(&exact)[0].id, "cve-2004-0200");
        assert_eq!(best(&exact)[0].score, 100);
        // A variant: length 0 instead of 1, image data after it, and a second bad segment.
        let variant = [
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0,
            0, 0xFF, 0xFE, 0x00, 0x00, 0xFF, 0xD9,
        ];
        let r = scan(&variant, "b.jpg");
        let m = best(&r);
        assert_eq!(m[0].id, "cve-2004-0200", "{:?} {m:#?}", r.findings);
        assert!(m[0].score >= 70, "{m:#?}");
    }

    #[test]
    fn an_unrelated_file_scores_low() {
        // A truncated GIF: broken, but no known vulnerability.
        let r = scan(b"GIF89a\x01\x00\x01\x00\x00\x00\x00", "a.gif");
        assert_ne!(r.verdict, Verdict::Clean, "{:?}", r.findings);
        let f = Features::of(&r);
        for v in known_vulnerabilities().unwrap() {
            let (score, _) = similarity(&f, &v);
            assert!(score <= 25, "{} scored {score}", v.id);
        }
        assert!(rank(&f, &known_vulnerabilities().unwrap()).is_empty());
    }

    #[test]
    fn locations_drop_offsets_and_numbers() {
        let mut l = Location::at(0x44).with_part("object 3 (Equation.3)");
        l.path = vec!["word/embeddings/oleObject12.bin".into()];
        assert_eq!(
            normalise_location(&l),
            "word/embeddings/oleObject#.bin > object # (Equation.#)"
        );
        assert_eq!(normalise_location(&Location::default()), "file");
    }

    #[tokio::test]
    async fn an_unknown_result_is_learned_unconfirmed_and_then_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let kb = KnowledgeBase::open(dir.path().join("kb.sqlite3").to_str().unwrap())
            .await
            .unwrap();
        let source: InflowSource = "upload".parse().unwrap();
        let r = scan(b"GIF89a\x01\x00\x01\x00\x00\x00\x00", "a.gif");
        let a = analyse(&kb, &r, &source).await.unwrap();
        let learned = a.learned.clone().expect("learned");
        assert_eq!(learned.status, Status::Unconfirmed);
        let stored = kb.vulnerabilities().await.unwrap();
        assert!(
            stored
                .iter()
                .any(|v| v.id == learned.id && v.status == Status::Unconfirmed)
        );
        // The same kind of file again: recognised as the learned entry, nothing new learned.
        let again = analyse(&kb, &r, &source).await.unwrap();
        assert_eq!(again.best().unwrap().id, learned.id);
        assert_eq!(again.best().unwrap().score, 100);
        assert!(again.learned.is_none());
        let rows = kb.analyses_of(&r.sha256).await.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].best_match.as_deref(), Some(learned.id.as_str()));
        // A clean file learns nothing.
        let clean = scan(b"plain text\n", "a.txt");
        assert!(
            analyse(&kb, &clean, &source)
                .await
                .unwrap()
                .learned
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_known_exploit_is_recorded_with_its_match_and_not_learned() {
        let dir = tempfile::tempdir().unwrap();
        let kb = KnowledgeBase::open(dir.path().join("kb.sqlite3").to_str().unwrap())
            .await
            .unwrap();
        let r = scan(&equation_rtf(), "invoice.rtf");
        let a = analyse(&kb, &r, &"email".parse().unwrap()).await.unwrap();
        assert!(a.learned.is_none());
        assert_eq!(a.best().unwrap().id, "cve-2017-11882");
        let rows = kb.analyses_of(&r.sha256).await.unwrap();
        assert_eq!(rows[0].source.as_str(), "email");
    }
}

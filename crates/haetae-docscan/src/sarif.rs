//! SARIF 2.1.0 output for code-scanning tools: one run, one rule per finding code, one
//! result per finding with the file as artifact and the byte offset as region.

use haetae_core::Severity;
use serde_json::{Value, json};

use crate::report::Report;

fn level(sev: Severity) -> &'static str {
    match sev {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// A SARIF log for these reports.
#[must_use]
pub fn to_sarif(reports: &[Report], tool_version: &str) -> Value {
    let mut rules: Vec<Value> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut results = Vec::new();
    for r in reports {
        let uri = r.path.clone().unwrap_or_else(|| "-".to_owned());
        for f in &r.findings {
            if seen.insert(f.code.clone()) {
                rules.push(json!({
                    "id": f.code,
                    "shortDescription": { "text": f.code },
                    "properties": { "tags": f.cve },
                }));
            }
            let mut region = serde_json::Map::new();
            if f.location.path.is_empty()
                && let Some(off) = f.location.offset
            {
                region.insert("byteOffset".into(), json!(off));
                region.insert("byteLength".into(), json!(1));
            }
            let mut phys = serde_json::Map::new();
            phys.insert("artifactLocation".into(), json!({ "uri": uri }));
            if !region.is_empty() {
                phys.insert("region".into(), Value::Object(region));
            }
            results.push(json!({
                "ruleId": f.code,
                "level": level(f.severity),
                "message": { "text": format!("{} ({})", f.message, f.location) },
                "locations": [ { "physicalLocation": phys,
                                 "logicalLocations": [ { "fullyQualifiedName": f.location.to_string() } ] } ],
                "properties": { "severity": f.severity, "verdict": r.verdict, "cve": f.cve, "sha256": r.sha256 },
            }));
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [ {
            "tool": { "driver": {
                "name": "haetae-docscan",
                "version": tool_version,
                "informationUri": "https://example.invalid/haetae",
                "rules": rules,
            } },
            "results": results,
        } ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, scan_bytes};

    #[test]
    fn each_finding_is_a_result_under_its_rule() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x01, 0xFF, 0xD9];
        let r = scan_bytes(&jpeg, Some("a.jpg"), &Limits::default());
        let log = to_sarif(&[r], "0.1.0");
        assert_eq!(log["version"], "2.1.0");
        let result = &log["runs"][0]["results"][0];
        assert_eq!(result["ruleId"], "JPEG-COM-LENGTH");
        assert_eq!(result["level"], "error");
        assert_eq!(
            result["locations"][0]["physicalLocation"]["region"]["byteOffset"],
            2
        );
        assert_eq!(
            log["runs"][0]["tool"]["driver"]["rules"][0]["id"],
            "JPEG-COM-LENGTH"
        );
    }
}

//! The `injection` filter's SQL tokenizer/fingerprinter and HTML/JS context scanner
//! (haetae-gateway). They have no dependencies, so their source files are compiled in
//! directly: the fuzz build does not instrument the whole gateway (tokio, hyper, rustls).
//! Checks: no panic on any input, bounded token counts, fingerprints of at most five
//! types, and the same answer twice (no hidden state).
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../../crates/haetae-gateway/src/filters/injection/sql.rs"]
#[allow(dead_code)]
mod sql;

#[path = "../../crates/haetae-gateway/src/filters/injection/html.rs"]
#[allow(dead_code)]
mod html;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for ctx in [
        sql::Context::None,
        sql::Context::Single,
        sql::Context::Double,
    ] {
        let tokens = sql::tokenize(&text, ctx);
        assert!(tokens.len() <= 24, "token cap");
        let folded = sql::fold(tokens);
        assert!(sql::fingerprint(&folded).chars().count() <= 5);
    }
    let first = sql::detect(&text);
    assert_eq!(first, sql::detect(&text));
    let _ = sql::fragments(&text);
    let lower = text.to_lowercase();
    let findings = html::scan(&lower);
    assert!(findings.len() <= 64);
    assert_eq!(findings, html::scan(&lower));
});

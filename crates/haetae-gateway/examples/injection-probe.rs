//! Reads one value per line from standard input and prints what the `injection` filter's
//! detectors make of it at paranoia levels 1, 2 and 3: the family, score and signals, or
//! `-` when the value stays under the threshold. A tool for tuning and for explaining a
//! block to an application team:
//!
//!     printf '%s\n' "1' or '1'='1" 'O'"'"'Brien' | cargo run -q -p haetae-gateway --example injection-probe

use std::io::BufRead;

use haetae_gateway::filters::injection::{InjectionConfig, InjectionFilter};

fn main() {
    let filters: Vec<InjectionFilter> = (1..=3)
        .map(|paranoia| {
            InjectionFilter::new(InjectionConfig {
                paranoia,
                ..InjectionConfig::default()
            })
            .unwrap_or_else(|problems| panic!("default configuration rejected: {problems:?}"))
        })
        .collect();
    for line in std::io::stdin().lock().lines() {
        let Ok(value) = line else { break };
        let verdicts: Vec<String> = filters
            .iter()
            .map(|f| match f.inspect(&value) {
                Some(d) => format!("{}:{}[{}]", d.family, d.score, d.signals.join(",")),
                None => "-".to_owned(),
            })
            .collect();
        println!(
            "{value:?}\n    PL1 {}\n    PL2 {}\n    PL3 {}",
            verdicts[0], verdicts[1], verdicts[2]
        );
    }
}

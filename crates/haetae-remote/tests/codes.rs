//! Access codes over the in-process bus: format, single use, per-code and per-address
//! limits, uniqueness while live.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use haetae_bus::Bus;
use haetae_remote::codes::{
    AccessCodes, BUCKET, BUCKET_MAX_AGE, CodeError, CodePolicy, Failure, SLOTS, uniform_below,
};
use haetae_remote::protocol::SessionId;

async fn codes(policy: CodePolicy) -> AccessCodes {
    let kv = Bus::in_process().kv(BUCKET, BUCKET_MAX_AGE).await.unwrap();
    AccessCodes::new(kv, policy, "relay-a").unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A code that differs from `code` in its secret digits only (same slot).
fn wrong_secret(code: &str) -> String {
    let last = code.as_bytes()[code.len() - 1];
    let flipped = if last == b'9' {
        '0'
    } else {
        char::from(last + 1)
    };
    format!("{}{flipped}", &code[..code.len() - 1])
}

#[tokio::test]
async fn a_code_has_the_configured_digits_and_is_used_once() {
    for digits in 6..=9 {
        let codes = codes(CodePolicy {
            digits,
            ..CodePolicy::default()
        })
        .await;
        let issued = codes.issue("agent-1", SessionId([1; 16])).await.unwrap();
        assert_eq!(issued.code.len(), usize::try_from(digits).unwrap());
        assert!(issued.code.bytes().all(|b| b.is_ascii_digit()));
        let redeemed = codes.redeem(&issued.code, ip("10.0.0.1")).await.unwrap();
        assert_eq!(redeemed.sid, SessionId([1; 16]));
        assert_eq!(redeemed.agent, "agent-1");
        let again = codes
            .redeem(&issued.code, ip("10.0.0.2"))
            .await
            .unwrap_err();
        assert_eq!(
            again,
            CodeError::InvalidOrExpired {
                detail: Failure::Used
            }
        );
        assert_eq!(again.to_string(), "invalid or expired code");
    }
}

#[tokio::test]
async fn the_sixth_guess_fails_even_with_the_right_code() {
    let codes = codes(CodePolicy::default()).await;
    let issued = codes.issue("agent-1", SessionId([2; 16])).await.unwrap();
    let wrong = wrong_secret(&issued.code);
    // Five wrong guesses from five addresses (so no address limit is involved).
    for i in 1..=5u32 {
        let err = codes
            .redeem(&wrong, ip(&format!("10.0.1.{i}")))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            CodeError::InvalidOrExpired {
                detail: Failure::Wrong {
                    failures: i,
                    burned: i == 5
                }
            }
        );
    }
    let err = codes
        .redeem(&issued.code, ip("10.0.1.9"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CodeError::InvalidOrExpired {
            detail: Failure::Burned
        }
    );
}

#[tokio::test]
async fn an_address_that_keeps_failing_must_wait_then_is_blocked() {
    let codes = codes(CodePolicy::default()).await;
    let attacker = ip("203.0.113.7");
    // Codes that name no live slot: each is one failure for the address.
    for _ in 0..7 {
        let err = codes.redeem("999999999", attacker).await.unwrap_err();
        assert!(matches!(err, CodeError::InvalidOrExpired { .. }));
    }
    // More than 6 failures in a minute: the address waits, even with a right code.
    let issued = codes.issue("agent-1", SessionId([3; 16])).await.unwrap();
    match codes.redeem(&issued.code, attacker).await.unwrap_err() {
        CodeError::TooManyAttempts { retry_after } => {
            assert!(
                retry_after <= Duration::from_secs(60) && retry_after >= Duration::from_secs(1)
            );
        }
        other => panic!("expected a wait, got {other:?}"),
    }
    // Another address is not affected and the code was not consumed by the refusal.
    assert!(codes.redeem(&issued.code, ip("198.51.100.1")).await.is_ok());
}

#[tokio::test]
async fn more_than_thirty_failures_in_an_hour_block_the_address() {
    let codes = codes(CodePolicy {
        ip_failures_per_minute: 1000,
        ..CodePolicy::default()
    })
    .await;
    let attacker = ip("203.0.113.8");
    for _ in 0..31 {
        assert!(matches!(
            codes.redeem("12345", attacker).await.unwrap_err(),
            CodeError::InvalidOrExpired {
                detail: Failure::Format
            }
        ));
    }
    match codes.redeem("123456789", attacker).await.unwrap_err() {
        CodeError::TooManyAttempts { retry_after } => {
            assert!(retry_after > Duration::from_secs(3000));
        }
        other => panic!("expected a block, got {other:?}"),
    }
}

#[tokio::test]
async fn ipv6_addresses_are_limited_per_64() {
    let codes = codes(CodePolicy::default()).await;
    for i in 0..7 {
        let addr = ip(&format!("2001:db8:1:2::{i:x}"));
        let _ = codes.redeem("000000000", addr).await;
    }
    assert!(matches!(
        codes.redeem("000000000", ip("2001:db8:1:2::ffff")).await,
        Err(CodeError::TooManyAttempts { .. })
    ));
    assert!(matches!(
        codes.redeem("000000000", ip("2001:db8:1:3::1")).await,
        Err(CodeError::InvalidOrExpired { .. })
    ));
}

#[tokio::test]
async fn live_codes_never_share_a_slot_and_the_slots_run_out_cleanly() {
    let codes = codes(CodePolicy::default()).await;
    let mut slots = HashSet::new();
    for i in 0..SLOTS {
        let mut sid = [0u8; 16];
        sid[..4].copy_from_slice(&i.to_be_bytes());
        let issued = codes.issue("agent", SessionId(sid)).await.unwrap();
        assert!(slots.insert(issued.code[..3].to_owned()));
    }
    assert!(matches!(
        codes.issue("agent", SessionId([9; 16])).await,
        Err(CodeError::Exhausted)
    ));
}

#[tokio::test]
async fn two_customers_racing_with_the_right_code_get_in_once() {
    let codes = Arc::new(codes(CodePolicy::default()).await);
    let issued = codes.issue("agent", SessionId([4; 16])).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let codes = Arc::clone(&codes);
        let code = issued.code.clone();
        tasks.push(tokio::spawn(async move {
            codes
                .redeem(&code, ip(&format!("10.9.0.{i}")))
                .await
                .is_ok()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn a_withdrawn_code_no_longer_works() {
    let codes = codes(CodePolicy::default()).await;
    let issued = codes.issue("agent", SessionId([5; 16])).await.unwrap();
    codes.withdraw(&issued).await.unwrap();
    assert_eq!(
        codes
            .redeem(&issued.code, ip("10.0.0.1"))
            .await
            .unwrap_err(),
        CodeError::InvalidOrExpired {
            detail: Failure::Withdrawn
        }
    );
}

#[tokio::test]
async fn an_expired_code_is_invalid() {
    let codes = codes(CodePolicy {
        ttl: Duration::from_millis(1000),
        ..CodePolicy::default()
    })
    .await;
    let issued = codes.issue("agent", SessionId([6; 16])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        codes
            .redeem(&issued.code, ip("10.0.0.1"))
            .await
            .unwrap_err(),
        CodeError::InvalidOrExpired {
            detail: Failure::Unknown
        }
    );
}

#[test]
fn uniform_below_covers_its_range_evenly() {
    // 100,000 draws over 10 values: each count within 5 % of 10,000 (about 5 standard
    // deviations; a modulo bias of this size would be visible).
    let mut counts = [0u32; 10];
    for _ in 0..100_000 {
        counts[usize::try_from(uniform_below(10).unwrap()).unwrap()] += 1;
    }
    for c in counts {
        assert!((9_500..=10_500).contains(&c), "{counts:?}");
    }
}

#[test]
fn policy_ranges_are_checked() {
    for bad in [
        CodePolicy {
            digits: 5,
            ..CodePolicy::default()
        },
        CodePolicy {
            digits: 10,
            ..CodePolicy::default()
        },
        CodePolicy {
            ttl: Duration::from_secs(3600),
            ..CodePolicy::default()
        },
    ] {
        assert!(bad.validate().is_err());
    }
}

#[tokio::test]
async fn a_code_issued_for_another_relay_says_so_and_stays_valid() {
    let kv = Bus::in_process().kv(BUCKET, BUCKET_MAX_AGE).await.unwrap();
    let a = AccessCodes::new(Arc::clone(&kv), CodePolicy::default(), "relay-a").unwrap();
    let b = AccessCodes::new(kv, CodePolicy::default(), "relay-b").unwrap();
    let issued = a.issue("agent", SessionId([7; 16])).await.unwrap();
    assert_eq!(
        b.redeem(&issued.code, ip("10.0.0.1")).await.unwrap_err(),
        CodeError::OtherRelay {
            relay: "relay-a".into()
        }
    );
    assert!(a.redeem(&issued.code, ip("10.0.0.1")).await.is_ok());
}

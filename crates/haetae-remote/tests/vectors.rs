//! The shared test vectors (`testdata/vectors.json`): fixed keys, nonces and messages with
//! the expected commitment, transcript, SAS, keys, sealed frames and encodings, for the
//! JavaScript implementation to check itself against byte for byte.
//!
//! The test regenerates the vectors and compares them with the committed file; run it with
//! `HAETAE_WRITE_VECTORS=1` to rewrite the file after a deliberate protocol change.

use haetae_crypto::pk::X25519Secret;
use haetae_remote::channel::{
    AgentHandshake, CustomerHandshake, Direction, commitment, derive_secrets, frame_aad,
    frame_nonce,
};
use haetae_remote::codec::frame;
use haetae_remote::protocol::{
    AppMessage, EndReason, PeerMessage, RefuseReason, RelayMessage, SessionId, examples,
};
use serde_json::{Value, json};

fn h32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

// RFC 7748 section 6.1: Alice is the agent, Bob the customer, so the shared secret can be
// checked against the RFC too.
const AGENT_SECRET: &str = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const CUSTOMER_SECRET: &str = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
const RFC7748_SHARED: &str = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

fn generate() -> Value {
    let sid = SessionId(*b"haetae-vector-01");
    let agent_nonce = [0xa1; 32];
    let customer_nonce = [0xc1; 32];
    let agent_secret = X25519Secret::from_bytes(h32(AGENT_SECRET));
    let customer_secret = X25519Secret::from_bytes(h32(CUSTOMER_SECRET));
    let agent_public = agent_secret.public_key();
    let customer_public = customer_secret.public_key();
    let shared = agent_secret.agree(&customer_public).unwrap();
    assert_eq!(hex::encode(*shared), RFC7748_SHARED);

    let (customer, commit_msg) = CustomerHandshake::from_parts(
        sid,
        X25519Secret::from_bytes(h32(CUSTOMER_SECRET)),
        customer_nonce,
    );
    let mut agent = AgentHandshake::from_parts(
        sid,
        X25519Secret::from_bytes(h32(AGENT_SECRET)),
        agent_nonce,
    );
    let agent_key_msg = agent.on_commit(&commit_msg).unwrap();
    let (customer_key_msg, customer) = customer.on_agent_key(&agent_key_msg).unwrap();
    let agent = agent.on_customer_key(&customer_key_msg).unwrap();
    assert_eq!(agent.sas(), customer.sas());

    let commit = commitment(&sid, &customer_public, &customer_nonce);
    let secrets = derive_secrets(
        &sid,
        &commit,
        (&agent_public, &agent_nonce),
        (&customer_public, &customer_nonce),
        &shared,
    )
    .unwrap();
    assert_eq!(secrets.sas, agent.sas());

    // Sealed frames: the agent's confirmation and a chat, then the customer's chat.
    let (mut agent_ch, confirm) = agent.confirm_sas().unwrap();
    let mut customer_ch = customer.on_confirmation(&confirm).unwrap();
    let chat_a = AppMessage::Chat {
        id: 1,
        text: "안녕하세요, 상담원입니다".into(),
    };
    let chat_c = AppMessage::Chat {
        id: 1,
        text: "hello".into(),
    };
    let mut sealed = Vec::new();
    let mut record = |direction: Direction, seq: u64, msg: &AppMessage, frame: &PeerMessage| {
        let kind = msg.message_type().to_u8();
        sealed.push(json!({
            "direction": if direction == Direction::AgentToCustomer { "a->c" } else { "c->a" },
            "seq": seq,
            "type": kind,
            "body": hex::encode(msg.encode_body()),
            "nonce": hex::encode(frame_nonce(seq)),
            "aad": hex::encode(frame_aad(&sid, direction, seq, kind)),
            "frame": hex::encode(frame.encode()),
        }));
    };
    record(
        Direction::AgentToCustomer,
        0,
        &AppMessage::SasConfirmed,
        &confirm,
    );
    let f = agent_ch.seal(&chat_a).unwrap();
    assert_eq!(customer_ch.open(&f).unwrap(), chat_a);
    record(Direction::AgentToCustomer, 1, &chat_a, &f);
    let f = customer_ch.seal(&chat_c).unwrap();
    assert_eq!(agent_ch.open(&f).unwrap(), chat_c);
    record(Direction::CustomerToAgent, 0, &chat_c, &f);

    // A resume: one agent chat is lost with the relay, both sides re-key (fixed keys and
    // nonces, generation 1), exchange Resume, and the agent sends the lost chat again.
    let lost = AppMessage::Chat {
        id: 2,
        text: "lost with relay A".into(),
    };
    let lost_frame = agent_ch.seal(&lost).unwrap();
    let agent_rekey = agent_ch.rekey_with(X25519Secret::from_bytes([0x11; 32]), [0xa2; 32], 1);
    let customer_rekey =
        customer_ch.rekey_with(X25519Secret::from_bytes([0x22; 32]), [0xc2; 32], 1);
    let agent_resume = agent_ch.on_rekey(&customer_rekey).unwrap();
    let customer_resume = customer_ch.on_rekey(&agent_rekey).unwrap();
    assert_eq!(
        agent_ch.open(&customer_resume).unwrap(),
        AppMessage::Resume { received: 2 }
    );
    assert_eq!(
        customer_ch.open(&agent_resume).unwrap(),
        AppMessage::Resume { received: 1 }
    );
    let resent = agent_ch.retransmit().unwrap();
    assert_eq!(resent.len(), 1);
    assert!(customer_ch.retransmit().unwrap().is_empty());
    assert_eq!(customer_ch.open(&resent[0]).unwrap(), lost);
    let rekey_shared = X25519Secret::from_bytes([0x11; 32])
        .agree(&X25519Secret::from_bytes([0x22; 32]).public_key())
        .unwrap();
    let (a2c2, c2a2) = haetae_remote::channel::rekey_keys(
        &sid,
        &secrets.resume,
        (
            1,
            &X25519Secret::from_bytes([0x11; 32]).public_key(),
            &[0xa2; 32],
        ),
        (
            1,
            &X25519Secret::from_bytes([0x22; 32]).public_key(),
            &[0xc2; 32],
        ),
        &rekey_shared,
    )
    .unwrap();
    let resume = json!({
        "lost": { "body": hex::encode(lost.encode_body()), "frame": hex::encode(lost_frame.encode()) },
        "agent_secret": hex::encode([0x11u8; 32]),
        "agent_nonce": hex::encode([0xa2u8; 32]),
        "customer_secret": hex::encode([0x22u8; 32]),
        "customer_nonce": hex::encode([0xc2u8; 32]),
        "generation": 1,
        "agent_rekey": hex::encode(agent_rekey.encode()),
        "customer_rekey": hex::encode(customer_rekey.encode()),
        "shared": hex::encode(*rekey_shared),
        "key_a2c": hex::encode(&*a2c2),
        "key_c2a": hex::encode(&*c2a2),
        "agent_resume": hex::encode(agent_resume.encode()),
        "customer_resume": hex::encode(customer_resume.encode()),
        "retransmitted": hex::encode(resent[0].encode()),
    });

    let messages: Vec<Value> = examples()
        .iter()
        .map(|m| {
            json!({
                "name": format!("{m:?}"),
                "type": m.message_type().to_u8(),
                "body": hex::encode(m.encode_body()),
            })
        })
        .collect();
    let relay: Vec<Value> = [
        RelayMessage::AgentOpen {
            agent: "agent-7".into(),
        },
        RelayMessage::CodeIssued {
            sid,
            code: "012345678".into(),
            expires_in_secs: 300,
        },
        RelayMessage::CustomerJoin {
            code: "012345678".into(),
        },
        RelayMessage::Paired { sid },
        RelayMessage::Refused {
            reason: RefuseReason::TooManyAttempts,
            retry_after_secs: 60,
        },
        RelayMessage::Peer(commit_msg.encode()),
        RelayMessage::PeerGone {
            reason: EndReason::Idle,
        },
        RelayMessage::Bye {
            reason: EndReason::Normal,
        },
        RelayMessage::Resume {
            sid,
            role: haetae_remote::protocol::Role::Customer,
            token: [0x7e; 32],
        },
        RelayMessage::ResumeToken { token: [0x7f; 32] },
    ]
    .iter()
    .map(|m| json!({ "name": format!("{m:?}"), "frame": hex::encode(m.encode()) }))
    .collect();
    // Frames every decoder must refuse.
    let invalid = json!([
        { "why": "version 2", "frame": hex::encode([2u8, 0x21, 0, 0, 0, 0]) },
        { "why": "length beyond the data", "frame": hex::encode([1u8, 0x10, 0, 0, 0, 40, 0]) },
        { "why": "unknown peer message type", "frame": hex::encode(frame(0x7f, &[])) },
        { "why": "commitment one byte short", "frame": hex::encode(frame(0x10, &[0; 31])) },
        { "why": "unknown sealed type", "frame": hex::encode(frame(0x13, &[0, 0, 0, 0, 0, 0, 0, 0, 0x99, 0, 0, 0, 0])) },
    ]);

    // A Center-signed session policy (Ed25519, RFC 8032 seed of 32 bytes 0x05).
    let center = haetae_crypto::pk::Ed25519KeyPair::from_seed(&[5; 32]);
    let grant = haetae_remote::policy::PolicyGrant {
        sid,
        agent: "김상담.agent".into(),
        grade: haetae_remote::policy::Grade::Indirect,
        features: haetae_remote::policy::Features::of(haetae_remote::policy::Grade::Indirect),
        max_file: 0,
        issued: 1_700_000_000,
        expires: 1_700_043_200,
    };
    let signed = grant.sign(&center).unwrap();
    let policy = json!({
        "center_public": hex::encode(center.public_key()),
        "payload": signed.payload,
        "signature": hex::encode(signed.signature),
        "valid_at": 1_700_000_100u64,
        "expired_at": 1_700_043_200u64 + haetae_remote::policy::CLOCK_LEEWAY_SECS + 1,
    });

    json!({
        "description": "haetae remote support v1 test vectors (remote-e2e.md, docs/remote.md). Hex strings; `||` in hashes is 4-byte big-endian length + bytes. X25519 keys are RFC 7748 section 6.1 (agent = Alice, customer = Bob).",
        "handshake": {
            "sid": hex::encode(sid.0),
            "agent_secret": AGENT_SECRET,
            "agent_public": hex::encode(agent_public),
            "agent_nonce": hex::encode(agent_nonce),
            "customer_secret": CUSTOMER_SECRET,
            "customer_public": hex::encode(customer_public),
            "customer_nonce": hex::encode(customer_nonce),
            "commit": hex::encode(commit),
            "shared": hex::encode(*shared),
            "transcript": hex::encode(secrets.transcript),
            "sas": secrets.sas,
            "key_a2c": hex::encode(&*secrets.key_a2c),
            "key_c2a": hex::encode(&*secrets.key_c2a),
            "resume_secret": hex::encode(&*secrets.resume),
            "frames": {
                "commit": hex::encode(commit_msg.encode()),
                "agent_key": hex::encode(agent_key_msg.encode()),
                "customer_key": hex::encode(customer_key_msg.encode()),
            },
        },
        "sealed": sealed,
        "messages": messages,
        "relay": relay,
        "invalid": invalid,
        "policy": policy,
        "resume": resume,
    })
}

#[test]
fn the_committed_vectors_match_this_implementation() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/vectors.json");
    let generated = generate();
    if std::env::var_os("HAETAE_WRITE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
        std::fs::write(path, text).unwrap();
    }
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(path)
            .expect("testdata/vectors.json is missing: run with HAETAE_WRITE_VECTORS=1"),
    )
    .unwrap();
    assert_eq!(committed, generated);
}

#[test]
fn every_invalid_vector_is_refused() {
    for v in generate()["invalid"].as_array().unwrap() {
        let bytes = hex::decode(v["frame"].as_str().unwrap()).unwrap();
        assert!(PeerMessage::decode(&bytes).is_err(), "{}", v["why"]);
    }
}

#[test]
fn the_vectors_decode_back() {
    let v = generate();
    for m in v["relay"].as_array().unwrap() {
        let bytes = hex::decode(m["frame"].as_str().unwrap()).unwrap();
        assert_eq!(RelayMessage::decode(&bytes).unwrap().encode(), bytes);
    }
    for key in [
        "agent_rekey",
        "customer_rekey",
        "agent_resume",
        "customer_resume",
        "retransmitted",
    ] {
        let bytes = hex::decode(v["resume"][key].as_str().unwrap()).unwrap();
        assert_eq!(PeerMessage::decode(&bytes).unwrap().encode(), bytes);
    }
    for m in v["sealed"].as_array().unwrap() {
        let bytes = hex::decode(m["frame"].as_str().unwrap()).unwrap();
        assert_eq!(PeerMessage::decode(&bytes).unwrap().encode(), bytes);
    }
}

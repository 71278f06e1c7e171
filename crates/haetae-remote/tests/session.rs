//! The session rules over an in-memory channel pair: control, consent, files, grades.

use haetae_crypto::hash::{HashAlgorithm, digest};
use haetae_remote::channel::{AgentHandshake, CustomerHandshake};
use haetae_remote::protocol::{AppMessage, InputEvent, SessionId};
use haetae_remote::session::{Delivered, Session, SessionError, SessionPolicy};

fn pair(policy: SessionPolicy) -> (Session, Session) {
    let sid = SessionId([8; 16]);
    let (customer, commit) = CustomerHandshake::start(sid).unwrap();
    let mut agent = AgentHandshake::start(sid).unwrap();
    let reveal = agent.on_commit(&commit).unwrap();
    let (ck, customer) = customer.on_agent_key(&reveal).unwrap();
    let agent = agent.on_customer_key(&ck).unwrap();
    let (agent, confirm) = agent.confirm_sas().unwrap();
    let customer = customer.on_confirmation(&confirm).unwrap();
    (Session::new(agent, policy), Session::new(customer, policy))
}

fn input() -> AppMessage {
    AppMessage::Input(InputEvent::PointerMove { x: 1, y: 2 })
}

#[test]
fn input_flows_only_between_grant_and_revoke() {
    let (mut agent, mut customer) = pair(SessionPolicy::direct());
    assert_eq!(agent.send(&input()), Err(SessionError::ControlNotGranted));
    let req = agent.send(&AppMessage::ControlRequest).unwrap();
    customer.receive(&req).unwrap();
    let grant = customer.send(&AppMessage::ControlGrant).unwrap();
    agent.receive(&grant).unwrap();
    let i = agent.send(&input()).unwrap();
    assert_eq!(customer.receive(&i).unwrap(), Delivered::Message(input()));

    // The customer revokes; an input already on its way is dropped, not executed.
    let revoke = customer.send(&AppMessage::ControlRevoke).unwrap();
    let in_flight = agent.send(&input()).unwrap();
    assert_eq!(
        customer.receive(&in_flight),
        Err(SessionError::ControlNotGranted)
    );
    assert_eq!(customer.dropped_inputs(), 1);
    agent.receive(&revoke).unwrap();
    assert_eq!(agent.send(&input()), Err(SessionError::ControlNotGranted));
    assert!(!customer.control_granted());
}

#[test]
fn a_customer_cannot_grant_unasked_control() {
    let (_agent, mut customer) = pair(SessionPolicy::direct());
    assert_eq!(
        customer.send(&AppMessage::ControlGrant),
        Err(SessionError::NoControlRequest)
    );
}

#[test]
fn an_indirect_agent_cannot_ask_for_control_even_with_a_modified_console() {
    // The agent's console thinks it is direct; the customer's side holds the real grade.
    let (mut agent, _) = pair(SessionPolicy::direct());
    let (_, mut customer) = pair(SessionPolicy::indirect());
    let req = agent.send(&AppMessage::ControlRequest).unwrap();
    // Different sessions: the frame cannot even open on the customer's side.
    assert!(customer.receive(&req).is_err());

    let (mut agent, mut customer) = pair(SessionPolicy::indirect());
    assert!(matches!(
        agent.send(&AppMessage::ControlRequest),
        Err(SessionError::NotPermitted { .. })
    ));
    let pointer = agent
        .send(&AppMessage::Pointer {
            x: 5,
            y: 5,
            visible: true,
        })
        .unwrap();
    assert!(customer.receive(&pointer).is_ok());
}

#[test]
fn a_customer_may_not_send_agent_messages() {
    let (_agent, mut customer) = pair(SessionPolicy::direct());
    let err = customer.send(&input()).unwrap_err();
    assert!(err.is_fatal());
    assert!(matches!(err, SessionError::WrongSender { .. }));
}

fn offer(data: &[u8]) -> AppMessage {
    let sha: [u8; 32] = digest(HashAlgorithm::Sha256, data).try_into().unwrap();
    AppMessage::FileOffer {
        id: 1,
        name: "guide.pdf".into(),
        size: data.len() as u64,
        sha256: sha,
    }
}

#[test]
fn a_file_arrives_after_consent_and_its_hash_is_checked() {
    let data = b"%PDF-1.7 the guide".to_vec();
    let (mut agent, mut customer) = pair(SessionPolicy::direct());
    let o = agent.send(&offer(&data)).unwrap();
    customer.receive(&o).unwrap();
    let accept = customer.send(&AppMessage::FileAccept { id: 1 }).unwrap();
    agent.receive(&accept).unwrap();
    for (i, part) in data.chunks(5).enumerate() {
        let c = agent
            .send(&AppMessage::FileChunk {
                id: 1,
                offset: (i * 5) as u64,
                data: part.to_vec(),
            })
            .unwrap();
        customer.receive(&c).unwrap();
    }
    let done = agent.send(&AppMessage::FileDone { id: 1 }).unwrap();
    assert_eq!(
        customer.receive(&done).unwrap(),
        Delivered::FileComplete {
            id: 1,
            size: data.len() as u64
        }
    );
}

#[test]
fn the_sender_cannot_push_data_before_consent() {
    let (mut agent, _customer) = pair(SessionPolicy::direct());
    agent.send(&offer(b"abc")).unwrap();
    assert!(matches!(
        agent.send(&AppMessage::FileChunk {
            id: 1,
            offset: 0,
            data: b"abc".to_vec()
        }),
        Err(SessionError::File { .. })
    ));
}

#[test]
fn a_file_whose_bytes_differ_from_the_offer_is_not_complete() {
    let (mut agent, mut customer) = pair(SessionPolicy::direct());
    let o = agent.send(&offer(b"abc")).unwrap();
    customer.receive(&o).unwrap();
    let accept = customer.send(&AppMessage::FileAccept { id: 1 }).unwrap();
    agent.receive(&accept).unwrap();
    let c = agent
        .send(&AppMessage::FileChunk {
            id: 1,
            offset: 0,
            data: b"abd".to_vec(),
        })
        .unwrap();
    customer.receive(&c).unwrap();
    let done = agent.send(&AppMessage::FileDone { id: 1 }).unwrap();
    assert!(matches!(
        customer.receive(&done),
        Err(SessionError::File { id: 1, .. })
    ));
}

#[test]
fn files_above_the_limit_or_under_an_indirect_grade_are_refused() {
    let (mut agent, _) = pair(SessionPolicy {
        max_file_size: 2,
        ..SessionPolicy::direct()
    });
    assert!(agent.send(&offer(b"abc")).is_err());
    let (mut agent, _) = pair(SessionPolicy::indirect());
    assert!(matches!(
        agent.send(&offer(b"abc")),
        Err(SessionError::NotPermitted { .. })
    ));
}

fn channels(
    sid: SessionId,
) -> (
    haetae_remote::channel::Channel,
    haetae_remote::channel::Channel,
) {
    let (customer, commit) = CustomerHandshake::start(sid).unwrap();
    let mut agent = AgentHandshake::start(sid).unwrap();
    let reveal = agent.on_commit(&commit).unwrap();
    let (ck, customer) = customer.on_agent_key(&reveal).unwrap();
    let agent = agent.on_customer_key(&ck).unwrap();
    let (agent, confirm) = agent.confirm_sas().unwrap();
    let customer = customer.on_confirmation(&confirm).unwrap();
    (agent, customer)
}

fn signed(
    key: &haetae_crypto::pk::Ed25519KeyPair,
    sid: SessionId,
    grade: haetae_remote::policy::Grade,
) -> AppMessage {
    use haetae_remote::policy::{Features, Grade, PolicyGrant};
    let s = PolicyGrant {
        sid,
        agent: "lee.agent".into(),
        grade,
        features: Features::of(grade),
        max_file: if grade == Grade::Direct { 1 << 20 } else { 0 },
        issued: 100,
        expires: 200,
    }
    .sign(key)
    .unwrap();
    AppMessage::Policy {
        payload: s.payload,
        signature: s.signature,
    }
}

#[test]
fn the_customer_side_holds_an_indirect_agent_to_its_signed_policy() {
    use haetae_remote::policy::Grade;
    let center = haetae_crypto::pk::Ed25519KeyPair::from_seed(&[42; 32]);
    let sid = SessionId([9; 16]);
    let (a, c) = channels(sid);
    // A modified console that believes it is direct; the customer checks the Center's policy.
    let mut agent = Session::new(a, SessionPolicy::direct());
    let mut customer = Session::awaiting_policy(c, center.public_key(), sid, 150);

    // Before any policy: chat flows, the pointer and control do not.
    let pointer = AppMessage::Pointer {
        x: 1,
        y: 1,
        visible: true,
    };
    let f = agent.send(&pointer).unwrap();
    assert!(matches!(
        customer.receive(&f),
        Err(SessionError::NotPermitted { .. })
    ));
    let f = agent
        .send(&AppMessage::Chat {
            id: 1,
            text: "hi".into(),
        })
        .unwrap();
    assert!(customer.receive(&f).is_ok());

    let f = agent.send(&signed(&center, sid, Grade::Indirect)).unwrap();
    customer.receive(&f).unwrap();
    assert_eq!(customer.grant().unwrap().grade, Grade::Indirect);
    let f = agent.send(&pointer).unwrap();
    assert!(customer.receive(&f).is_ok());
    let f = agent.send(&AppMessage::ControlRequest).unwrap();
    assert!(matches!(
        customer.receive(&f),
        Err(SessionError::NotPermitted { .. })
    ));
    assert_eq!(
        customer.send(&AppMessage::ControlGrant),
        Err(SessionError::NotPermitted {
            kind: haetae_remote::protocol::MessageType::ControlGrant
        })
    );
    let f = agent.send(&offer(b"abc")).unwrap();
    assert!(matches!(
        customer.receive(&f),
        Err(SessionError::NotPermitted { .. })
    ));
    // A second policy, even a genuine direct one, ends the session.
    let f = agent.send(&signed(&center, sid, Grade::Direct)).unwrap();
    let e = customer.receive(&f).unwrap_err();
    assert!(e.is_fatal(), "{e}");
}

#[test]
fn a_forged_escalated_or_foreign_policy_ends_the_session() {
    use haetae_remote::policy::Grade;
    let center = haetae_crypto::pk::Ed25519KeyPair::from_seed(&[42; 32]);
    let rogue = haetae_crypto::pk::Ed25519KeyPair::from_seed(&[43; 32]);
    let sid = SessionId([9; 16]);
    let genuine = signed(&center, sid, Grade::Indirect);
    let AppMessage::Policy { payload, signature } = genuine.clone() else {
        unreachable!()
    };
    let escalated = AppMessage::Policy {
        payload: payload.replace("grade=indirect", "grade=direct").replace(
            "features=pointer,drawing,url",
            "features=pointer,drawing,url,control,files",
        ),
        signature,
    };
    for bad in [
        signed(&rogue, sid, Grade::Direct),
        escalated,
        signed(&center, SessionId([1; 16]), Grade::Direct),
    ] {
        let (a, c) = channels(sid);
        let mut agent = Session::new(a, SessionPolicy::direct());
        let mut customer = Session::awaiting_policy(c, center.public_key(), sid, 150);
        let f = agent.send(&bad).unwrap();
        let e = customer.receive(&f).unwrap_err();
        assert!(matches!(e, SessionError::Policy(_)) && e.is_fatal(), "{e}");
        assert!(customer.grant().is_none());
    }
    // Expired.
    let (a, c) = channels(sid);
    let mut agent = Session::new(a, SessionPolicy::direct());
    let mut customer = Session::awaiting_policy(c, center.public_key(), sid, 10_000);
    let f = agent.send(&genuine).unwrap();
    assert!(customer.receive(&f).unwrap_err().is_fatal());
}

#[test]
fn a_direct_policy_lets_the_customer_grant_control() {
    use haetae_remote::policy::Grade;
    let center = haetae_crypto::pk::Ed25519KeyPair::from_seed(&[42; 32]);
    let sid = SessionId([9; 16]);
    let (a, c) = channels(sid);
    let mut agent = Session::new(a, SessionPolicy::direct());
    let mut customer = Session::awaiting_policy(c, center.public_key(), sid, 150);
    let f = agent.send(&signed(&center, sid, Grade::Direct)).unwrap();
    customer.receive(&f).unwrap();
    let f = agent.send(&AppMessage::ControlRequest).unwrap();
    customer.receive(&f).unwrap();
    assert!(customer.send(&AppMessage::ControlGrant).is_ok());
    assert_eq!(customer.policy().max_file_size, 1 << 20);
}

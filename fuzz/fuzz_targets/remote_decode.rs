//! haetae-remote's decoders on arbitrary bytes: relay frames, peer frames and every sealed
//! message body. None may panic; whatever decodes must encode back to bytes that decode to
//! the same value.
#![no_main]

use haetae_remote::protocol::{AppMessage, MessageType, PeerMessage, RelayMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = RelayMessage::decode(data) {
        assert_eq!(RelayMessage::decode(&m.encode()).ok(), Some(m));
    }
    if let Ok(m) = PeerMessage::decode(data) {
        assert_eq!(PeerMessage::decode(&m.encode()).ok(), Some(m));
    }
    // First byte picks the message type, the rest is the body.
    if let Some((&kind, body)) = data.split_first() {
        if let Ok(kind) = MessageType::parse(kind) {
            if let Ok(m) = AppMessage::decode_body(kind, body) {
                assert_eq!(m.message_type(), kind);
                assert_eq!(AppMessage::decode_body(kind, &m.encode_body()).ok(), Some(m));
            }
        }
    }
});

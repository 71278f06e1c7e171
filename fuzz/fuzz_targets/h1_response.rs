//! The gateway's HTTP/1.1 upstream client codec (haetae-gateway src/h1/codec.rs): response
//! heads and the chunked transfer coding, fed in pieces as a socket would deliver them.
//! The codec depends only on bytes, http and httparse, so its source file is compiled in
//! directly (no tokio or hyper in the fuzz build). Checks: no panic on any input, the
//! bounds hold (head size, field count, decoded bytes never more than the input), a
//! response to HEAD never has a body, and a chunked body decodes the same whole or in
//! pieces.
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

#[path = "../../crates/haetae-gateway/src/h1/codec.rs"]
#[allow(dead_code)]
mod codec;

/// Decodes `input` as a chunked body fed `step` bytes at a time: the body bytes, or `None`
/// when it is malformed or incomplete.
fn chunked(input: &[u8], step: usize) -> Option<Vec<u8>> {
    let mut d = codec::Chunked::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut fed = 0;
    loop {
        match d.decode(&mut buf).ok()? {
            codec::Decoded::Data(b) => {
                assert!(!b.is_empty(), "an empty data frame");
                out.extend_from_slice(&b);
                assert!(out.len() <= input.len(), "more bytes out than in");
            }
            codec::Decoded::Done => return Some(out),
            codec::Decoded::NeedMore if fed < input.len() => {
                let end = (fed + step).min(input.len());
                buf.extend_from_slice(&input[fed..end]);
                fed = end;
            }
            codec::Decoded::NeedMore => return None,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, data)) = data.split_first() else {
        return;
    };
    let method = if ctl & 1 == 0 {
        http::Method::GET
    } else {
        http::Method::HEAD
    };
    let step = usize::from(ctl >> 1).max(1);
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let head = loop {
        match codec::parse_head(&mut buf, &method) {
            Ok(Some(h)) => break Some(h),
            Ok(None) if fed < data.len() => {
                let end = (fed + step).min(data.len());
                buf.extend_from_slice(&data[fed..end]);
                fed = end;
            }
            _ => break None,
        }
    };
    if let Some(h) = head {
        let used = fed - buf.len();
        assert!(used <= codec::MAX_HEAD, "a head over the limit");
        assert!(h.headers.len() <= codec::MAX_HEADERS);
        if method == http::Method::HEAD {
            assert_eq!(h.framing, codec::Framing::Empty);
        }
        if h.framing == codec::Framing::Close {
            assert!(!h.keep_alive);
        }
        if h.framing == codec::Framing::Chunked {
            let mut rest = buf.to_vec();
            rest.extend_from_slice(&data[fed..]);
            let whole = chunked(&rest, rest.len().max(1));
            assert_eq!(whole, chunked(&rest, step), "pieces change the body");
        }
    }
    let whole = chunked(data, data.len().max(1));
    assert_eq!(whole, chunked(data, step), "pieces change the body");
});

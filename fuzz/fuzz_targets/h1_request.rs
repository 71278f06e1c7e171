//! The gateway's HTTP/1.1 server codec (haetae-gateway src/h1/server_codec.rs): request
//! heads fed in pieces as a socket would deliver them, and the chunked request bodies after
//! them (decoded by the client codec's decoder, src/h1/codec.rs). Both files depend only
//! on bytes, http and httparse, so they are compiled in directly. Checks: no panic on any
//! input; the bounds hold (head size, field count); a head parses the same whole or in
//! pieces; framing is never ambiguous (a chunked request carries no Content-Length, a
//! Content-Length request exactly one); an HTTP/1.0 request is never chunked; a parsed
//! head's response encodes without panicking.
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

#[path = "../../crates/haetae-gateway/src/h1/codec.rs"]
#[allow(dead_code)]
mod codec;
#[path = "../../crates/haetae-gateway/src/h1/server_codec.rs"]
#[allow(dead_code)]
mod server_codec;

use server_codec::{BodyFraming, RequestHead, parse_request_head};

/// Parses `data` fed `step` bytes at a time: the head (or error) and the bytes left after it.
fn parse(
    data: &[u8],
    step: usize,
) -> (Option<Result<RequestHead, server_codec::RequestError>>, Vec<u8>) {
    let mut buf = BytesMut::new();
    let mut fed = 0;
    loop {
        match parse_request_head(&mut buf) {
            Ok(Some(h)) => {
                let mut rest = buf.to_vec();
                rest.extend_from_slice(&data[fed..]);
                return (Some(Ok(h)), rest);
            }
            Ok(None) if fed < data.len() => {
                let end = (fed + step).min(data.len());
                buf.extend_from_slice(&data[fed..end]);
                fed = end;
            }
            Ok(None) => return (None, Vec::new()),
            Err(e) => return (Some(Err(e)), Vec::new()),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, data)) = data.split_first() else {
        return;
    };
    let step = usize::from(ctl).max(1);
    let (whole, rest) = parse(data, data.len().max(1));
    let (pieces, _) = parse(data, step);
    // (Refusals may differ: in pieces, the size limit can be reached before a byte that
    // is malformed further on.)
    if let (Some(Ok(a)), Some(Ok(b))) = (&whole, &pieces) {
        assert_eq!(a.raw, b.raw, "pieces change the head");
        assert_eq!(a.framing, b.framing);
        assert_eq!(a.keep_alive, b.keep_alive);
    }
    let Some(Ok(head)) = whole else {
        return;
    };
    assert!(head.raw.len() <= server_codec::MAX_REQUEST_HEAD);
    assert!(head.headers.len() <= server_codec::MAX_REQUEST_HEADERS);
    let lengths = head.headers.get_all(http::header::CONTENT_LENGTH).iter().count();
    let codings = head.headers.get_all(http::header::TRANSFER_ENCODING).iter().count();
    match head.framing {
        BodyFraming::Chunked => {
            assert_eq!(lengths, 0, "chunked with a Content-Length");
            assert_eq!(codings, 1);
            assert_eq!(head.version, http::Version::HTTP_11, "chunked HTTP/1.0");
            let mut d = codec::Chunked::new();
            let mut buf = BytesMut::from(&rest[..]);
            let mut out = 0usize;
            while let Ok(codec::Decoded::Data(b)) = d.decode(&mut buf) {
                assert!(!b.is_empty());
                out += b.len();
                assert!(out <= rest.len(), "more body out than in");
            }
        }
        BodyFraming::Length(n) => {
            assert!(n > 0);
            assert_eq!(lengths, 1);
            assert_eq!(codings, 0);
        }
        BodyFraming::None => {
            assert_eq!(codings, 0);
            assert!(lengths <= 1);
        }
    }
    let mut out = BytesMut::new();
    let framing = server_codec::response_framing(
        &head.method,
        head.version,
        http::StatusCode::OK,
        &head.headers,
        None,
    );
    server_codec::encode_response_head(
        &mut out,
        http::StatusCode::OK,
        &head.headers,
        framing,
        None,
        None,
    );
    assert!(out.ends_with(b"\r\n\r\n"));
});

//! Fuzzes the SIP edge: datagram parsing, request validation, every typed accessor,
//! serialisation (which must re-parse to the same message) and stream framing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pbx_sip::message::{
    parse, parse_with, validate_request, Frame, Limits, MessageBuilder, StreamDecoder,
};

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(m) => {
            let _ = validate_request(&m);
            let _ = m.vias();
            let _ = m.top_via();
            let _ = m.from_header();
            let _ = m.to_header();
            let _ = m.call_id();
            let _ = m.cseq();
            let _ = m.contacts();
            let _ = m.expires();
            let _ = m.max_forwards();
            if let Some(uri) = m.request_uri() {
                let _ = uri.user_host();
                assert!(uri.equivalent(uri));
            }
            for h in m.headers() {
                let _ = (h.name().as_str(), h.value(), h.raw_value());
            }
            let bytes = m.to_bytes();
            // serialising may add a Content-Length and expand compact names, so the
            // re-parse must not hit the limits the original only just met
            let unlimited = Limits {
                max_message_size: usize::MAX,
                max_headers: usize::MAX,
            };
            let again = parse_with(&bytes, &unlimited).expect("serialised message re-parses");
            assert_eq!(again, m);
            if m.is_request() {
                let _ = MessageBuilder::response_to(&m, 200, "OK")
                    .set_to_tag("t")
                    .build()
                    .to_bytes();
            }
        }
        Err(e) => {
            if let (Some(r), Some(p)) = (e.rejection(), e.partial()) {
                let _ = MessageBuilder::response_to(p, r.status, &r.reason)
                    .build()
                    .to_bytes();
            }
        }
    }
    // the same bytes as a stream, split in two
    let mut dec = StreamDecoder::new(Limits::default());
    let cut = data.first().map_or(0, |&b| b as usize % (data.len() + 1));
    for part in [&data[..cut], &data[cut..]] {
        dec.push(part);
        while let Some(f) = dec.next() {
            match f {
                Ok(Frame::Message(m)) => {
                    let _ = validate_request(&m);
                }
                Ok(Frame::KeepAlive | Frame::Pong) | Err(_) => {}
            }
        }
    }
});

//! Parse speed of `pbx_sip::message` against rsipstack 0.7.14 on a ~600-byte INVITE
//! with SDP and a REGISTER: "parse" only, and "parse + typed" access to Via, From,
//! To, CSeq, Contact and Call-ID.
//!
//! `cargo bench -p pbx-sip --bench parse -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use std::hint::black_box;

pub(crate) const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: \"Alice\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com:5060;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY\r\n\
Supported: replaces, timer\r\n\
User-Agent: Grandstream GXP2170 1.0.11.3\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 148\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0 8\r\n\
a=rtpmap:0 PCMU/8000\r\n";

pub(crate) const REGISTER: &[u8] = b"REGISTER sip:pbx.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.55:5060;branch=z9hG4bKnashds7;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Ext 201\" <sip:201@pbx.example.com>;tag=a73kszlfl\r\n\
To: <sip:201@pbx.example.com>\r\n\
Call-ID: 1j9FpLxk3uxtm8tn@192.0.2.55\r\n\
CSeq: 2 REGISTER\r\n\
Contact: <sip:201@192.0.2.55:5060;transport=udp>;expires=3600;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\"\r\n\
Expires: 3600\r\n\
User-Agent: Yealink SIP-T46U 108.86.0.20\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, REFER\r\n\
Content-Length: 0\r\n\
\r\n";

pub(crate) fn pbx_parse(buf: &[u8]) -> pbx_sip::message::Message {
    pbx_sip::message::parse(buf).expect("benchmark message is valid")
}

pub(crate) fn pbx_typed(buf: &[u8]) -> usize {
    let m = pbx_parse(buf);
    let via = m.top_via().expect("Via");
    let from = m.from_header().expect("From");
    let to = m.to_header().expect("To");
    let cseq = m.cseq().expect("CSeq");
    let contacts = m.contacts().expect("Contact");
    let call_id = m.call_id().expect("Call-ID");
    black_box((&via, &from, &to, &cseq, &contacts));
    via.branch().map_or(0, str::len)
        + from.tag().map_or(0, str::len)
        + call_id.len()
        + cseq.seq as usize
}

pub(crate) fn rsip_parse(buf: &[u8]) -> rsipstack::sip::SipMessage {
    rsipstack::sip::SipMessage::try_from(buf).expect("benchmark message is valid")
}

pub(crate) fn rsip_typed(buf: &[u8]) -> usize {
    let m = rsip_parse(buf);
    let via = m.via_header().expect("Via").typed().expect("typed Via");
    let from = m.from_header().expect("From").typed().expect("typed From");
    let to = m.to_header().expect("To").typed().expect("typed To");
    let cseq = m.cseq_header().expect("CSeq").typed().expect("typed CSeq");
    let contacts = m.typed_contact_headers().expect("typed Contact");
    let call_id = m.call_id_header().expect("Call-ID").value().to_owned();
    black_box((&via, &from, &to, &cseq, &contacts));
    via.branch().map_or(0, |b| b.to_string().len())
        + from.tag().map_or(0, |t| t.to_string().len())
        + call_id.len()
        + cseq.seq as usize
}

fn bench(c: &mut Criterion) {
    // both parsers must understand both messages, or the comparison means nothing
    assert!(pbx_typed(INVITE) > 0 && rsip_typed(INVITE) > 0);
    assert!(pbx_typed(REGISTER) > 0 && rsip_typed(REGISTER) > 0);
    for (name, msg) in [("invite", INVITE), ("register", REGISTER)] {
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Bytes(msg.len() as u64));
        g.bench_function("pbx-sip/parse", |b| b.iter(|| pbx_parse(black_box(msg))));
        g.bench_function("rsipstack/parse", |b| b.iter(|| rsip_parse(black_box(msg))));
        g.bench_function("pbx-sip/parse+typed", |b| {
            b.iter(|| pbx_typed(black_box(msg)))
        });
        g.bench_function("rsipstack/parse+typed", |b| {
            b.iter(|| rsip_typed(black_box(msg)))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

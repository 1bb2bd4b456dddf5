//! A small hawkBit DDI server for the update tests: the documented endpoints and JSON
//! for one controller (`pbx-1`, tenant `DEFAULT`, token `s3cret`) and one deployment
//! (action 8) of one artifact; it records every request it sees.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // each test crate uses part of it

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// How the server behaves.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// The artifact's bytes.
    pub artifact: Vec<u8>,
    /// The SHA-256 announced (defaults to the real one).
    pub announced_sha256: Option<String>,
    /// Cut the first artifact transfer after this many bytes.
    pub cut_first_after: Option<usize>,
    /// Offer a cancel action in the base resource.
    pub cancel: bool,
    /// The deployment's `update` handling (default `forced`).
    pub update: Option<&'static str>,
}

pub struct DdiServer {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

pub const BASE: &str = "/DEFAULT/controller/v1/pbx-1";

impl DdiServer {
    pub fn start(script: Script) -> DdiServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            let mut downloads = 0;
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let Some(req) = read_request(&conn) else {
                    continue;
                };
                log.lock().unwrap().push(req.clone());
                respond(conn, &req, &script, addr, &mut downloads);
            }
        });
        DdiServer { addr, seen }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn read_request(conn: &TcpStream) -> Option<Seen> {
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Seen {
        method,
        path,
        headers,
        body: String::from_utf8(body).ok()?,
    })
}

fn send(mut conn: TcpStream, status: &str, extra: &str, body: &[u8]) {
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n",
        body.len()
    );
    let _ = conn.write_all(body);
}

fn respond(conn: TcpStream, req: &Seen, s: &Script, addr: SocketAddr, downloads: &mut u32) {
    let json = "content-type: application/hal+json\r\n";
    if req.headers.get("authorization").map(String::as_str) != Some("TargetToken s3cret") {
        return send(conn, "401 Unauthorized", "", b"");
    }
    let sha = s
        .announced_sha256
        .clone()
        .unwrap_or_else(|| hex::encode(Sha256::digest(&s.artifact)));
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", p) if p == BASE => {
            let mut links = vec![
                format!(
                    r#""deploymentBase": {{"href": "http://{addr}{BASE}/deploymentBase/8?c=-21"}}"#
                ),
                format!(r#""configData": {{"href": "http://{addr}{BASE}/configData"}}"#),
            ];
            if s.cancel {
                links.push(format!(
                    r#""cancelAction": {{"href": "http://{addr}{BASE}/cancelAction/11"}}"#
                ));
            }
            let body = format!(
                r#"{{"config": {{"polling": {{"sleep": "00:00:42"}}}}, "_links": {{{}}}}}"#,
                links.join(", ")
            );
            send(conn, "200 OK", json, body.as_bytes());
        }
        ("GET", p) if p == format!("{BASE}/deploymentBase/8?c=-21") => {
            let body = format!(
                r#"{{"id": "8", "deployment": {{"download": "forced", "update": "{update}",
                  "chunks": [{{"part": "os", "version": "2.0", "name": "pbx-firmware",
                    "artifacts": [{{"filename": "pbx-2.0.raucb", "size": {},
                      "hashes": {{"sha1": "-", "md5": "-", "sha256": "{sha}"}},
                      "_links": {{"download-http": {{"href": "http://{addr}/artifacts/pbx-2.0.raucb"}}}}}}]}}]}},
                  "actionHistory": {{"status": "RUNNING", "messages": []}}}}"#,
                s.artifact.len(),
                update = s.update.unwrap_or("forced"),
            );
            send(conn, "200 OK", json, body.as_bytes());
        }
        ("GET", "/artifacts/pbx-2.0.raucb") => {
            *downloads += 1;
            let from: usize = req
                .headers
                .get("range")
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let total = s.artifact.len();
            let rest = &s.artifact[from.min(total)..];
            let (status, extra) = if from > 0 {
                (
                    "206 Partial Content",
                    format!("content-range: bytes {from}-{}/{total}\r\n", total - 1),
                )
            } else {
                ("200 OK", String::new())
            };
            if let (Some(cut), 1) = (s.cut_first_after, *downloads) {
                // Announce everything, send part, drop the connection.
                let mut conn = conn;
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n",
                    rest.len()
                );
                let _ = conn.write_all(&rest[..cut]);
                return;
            }
            send(conn, status, &extra, rest);
        }
        ("GET", p) if p == format!("{BASE}/cancelAction/11") => {
            send(
                conn,
                "200 OK",
                json,
                br#"{"id": "11", "cancelAction": {"stopId": "8"}}"#,
            );
        }
        ("POST", p)
            if p == format!("{BASE}/deploymentBase/8/feedback")
                || p == format!("{BASE}/cancelAction/11/feedback") =>
        {
            send(conn, "200 OK", "", b"");
        }
        ("PUT", p) if p == format!("{BASE}/configData") => send(conn, "200 OK", "", b""),
        _ => send(conn, "404 Not Found", "", b""),
    }
}

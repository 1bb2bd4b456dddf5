//! The Via header (RFC 3261 20.42).

use super::lex::{find, header_params, split1, trim_start_ws, trim_ws};
use super::params::Params;
use super::uri::split_host_port;
use std::fmt;

/// One Via value: `SIP/2.0/<transport> <host>[:<port>];params`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport, uppercased (`UDP`, `TCP`, `TLS`, `SCTP`, `WS`, ...).
    pub transport: String,
    /// sent-by host (IPv6 with brackets).
    pub host: String,
    /// sent-by port, if written.
    pub port: Option<u16>,
    /// via-params (`branch`, `received`, `rport`, `maddr`, `ttl`, extensions).
    pub params: Params,
}

impl Via {
    /// A Via with the given transport, sent-by and branch.
    pub fn new(transport: &str, host: &str, port: Option<u16>, branch: &str) -> Via {
        let mut params = Params::new();
        params.push("branch", Some(branch));
        Via {
            transport: transport.to_ascii_uppercase(),
            host: host.to_owned(),
            port,
            params,
        }
    }

    /// Parses one Via value (not a comma list). Whitespace is allowed around `/`,
    /// `;` and `=` as RFC 3261 permits.
    pub fn parse(s: &str) -> Result<Via, &'static str> {
        let s = trim_ws(s);
        let (name, rest) = split1(s, b'/').ok_or("missing protocol version")?;
        let (version, rest) = split1(rest, b'/').ok_or("missing transport")?;
        let (name, version, rest) = (trim_ws(name), trim_ws(version), trim_start_ws(rest));
        if !name.eq_ignore_ascii_case("SIP") {
            return Err("protocol is not SIP");
        }
        if version != "2.0" {
            return Err("protocol version is not 2.0");
        }
        let t_end = rest
            .bytes()
            .position(|b| !super::method::is_token_byte(b))
            .unwrap_or(rest.len());
        if t_end == 0 {
            return Err("missing transport");
        }
        let t = &rest[..t_end];
        let transport = if t.bytes().any(|b| b.is_ascii_lowercase()) {
            t.to_ascii_uppercase()
        } else {
            t.to_owned()
        };
        let rest = &rest[t_end..];
        let after_t = trim_start_ws(rest);
        if after_t.len() == rest.len() {
            return Err("no space before sent-by");
        }
        // sent-by = host [ LWS ":" LWS port ]; it ends at ';' or end
        let sb_end = find(after_t, b';').unwrap_or(after_t.len());
        let sent_by = trim_ws(&after_t[..sb_end]);
        let squeezed: String;
        let sent_by = if sent_by.bytes().any(|b| b == b' ' || b == b'\t') {
            // LWS around the ':' of host:port
            squeezed = sent_by
                .chars()
                .filter(|c| *c != ' ' && *c != '\t')
                .collect();
            &squeezed
        } else {
            sent_by
        };
        let (host, port) = split_host_port(sent_by).map_err(|_| "malformed sent-by")?;
        let params = header_params(&after_t[sb_end..])?;
        Ok(Via {
            transport,
            host: host.to_owned(),
            port,
            params,
        })
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").flatten()
    }

    /// `None` without `rport`; `Some(None)` for a bare `;rport` (RFC 3581 request);
    /// `Some(Some(port))` when filled in. A non-numeric value reads as `Some(None)`.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|v| v.parse().ok()))
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&str> {
        self.params.get("received").flatten()
    }

    /// The sent-by port, or the transport's default (5061 for TLS, else 5060).
    pub fn port_or_default(&self) -> u16 {
        self.port
            .unwrap_or(if self.transport == "TLS" { 5061 } else { 5060 })
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

//! Transaction keys and matching (RFC 3261 sec. 17.1.3 and 17.2.3).

use super::TransactionError;
use crate::message::{Message, Method};

/// The RFC 3261 branch prefix; a branch without it comes from an RFC 2543 element.
pub(crate) const MAGIC_COOKIE: &str = "z9hG4bK";

/// What identifies a transaction. Server keys come from received requests, client
/// keys from our own requests and the responses to them, so the two never collide.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransactionKey {
    /// Server transaction with an RFC 3261 branch (sec. 17.2.3): branch, sent-by of
    /// the top Via, and method, where ACK counts as INVITE.
    Server {
        /// The top Via `branch`.
        branch: String,
        /// The top Via sent-by, host lower-cased, port as written.
        sent_by: String,
        /// Request method (`INVITE` for ACK).
        method: Method,
    },
    /// Server transaction for an RFC 2543 peer (no magic cookie, sec. 17.2.3):
    /// Request-URI, To tag, From tag, Call-ID, CSeq and top Via.
    ServerRfc2543 {
        /// The Request-URI as written.
        request_uri: String,
        /// The To tag (an ACK's tag is the one our response added).
        to_tag: Option<String>,
        /// The From tag.
        from_tag: Option<String>,
        /// The Call-ID.
        call_id: String,
        /// The CSeq number.
        cseq: u32,
        /// Request method (`INVITE` for ACK, whose CSeq method differs).
        method: Method,
        /// The top Via, normalised.
        top_via: String,
    },
    /// Client transaction (sec. 17.1.3): our branch and the CSeq method, so a CANCEL,
    /// which reuses the INVITE's branch, has its own key.
    Client {
        /// The top Via `branch` we generated.
        branch: String,
        /// The CSeq method.
        method: Method,
    },
}

impl TransactionKey {
    /// The server-transaction key of a received request (sec. 17.2.3), falling back to
    /// RFC 2543 matching when the branch lacks the magic cookie.
    pub fn for_request(request: &Message) -> Result<Self, TransactionError> {
        let method = request.method().ok_or(TransactionError::WrongKind {
            expected: "request",
        })?;
        let method = match method {
            Method::Ack => Method::Invite,
            m => m.clone(),
        };
        let via = request.top_via()?;
        if let Some(branch) = via.branch().filter(|b| b.starts_with(MAGIC_COOKIE)) {
            let mut sent_by = via.host.to_ascii_lowercase();
            if let Some(port) = via.port {
                sent_by.push_str(&format!(":{port}"));
            }
            return Ok(TransactionKey::Server {
                branch: branch.to_owned(),
                sent_by,
                method,
            });
        }
        let request_uri = request
            .request_uri()
            .map(|u| u.as_str().to_owned())
            .unwrap_or_default();
        Ok(TransactionKey::ServerRfc2543 {
            request_uri,
            to_tag: request.to_header()?.tag().map(str::to_owned),
            from_tag: request.from_header()?.tag().map(str::to_owned),
            call_id: request.call_id()?.to_owned(),
            cseq: request.cseq()?.seq,
            method,
            top_via: via.to_string(),
        })
    }

    /// The client-transaction key of a received response (sec. 17.1.3).
    pub fn for_response(response: &Message) -> Result<Self, TransactionError> {
        if response.is_request() {
            return Err(TransactionError::WrongKind {
                expected: "response",
            });
        }
        Self::client_key(response)
    }

    /// The client-transaction key of a request we send.
    pub fn for_client_request(request: &Message) -> Result<Self, TransactionError> {
        if !request.is_request() {
            return Err(TransactionError::WrongKind {
                expected: "request",
            });
        }
        Self::client_key(request)
    }

    fn client_key(msg: &Message) -> Result<Self, TransactionError> {
        let via = msg.top_via()?;
        let branch = via
            .branch()
            .filter(|b| b.starts_with(MAGIC_COOKIE))
            .ok_or(TransactionError::NoBranch)?;
        Ok(TransactionKey::Client {
            branch: branch.to_owned(),
            method: msg.cseq()?.method,
        })
    }

    /// The key of the transaction this key's request would be a CANCEL for: the same
    /// key with method INVITE (sec. 9.2). `None` unless this is a server CANCEL key.
    pub fn cancelled_invite(&self) -> Option<Self> {
        let mut k = self.clone();
        match &mut k {
            TransactionKey::Server { method, .. }
            | TransactionKey::ServerRfc2543 { method, .. }
                if *method == Method::Cancel =>
            {
                *method = Method::Invite;
                Some(k)
            }
            _ => None,
        }
    }

    /// The method part of the key.
    pub fn method(&self) -> &Method {
        match self {
            TransactionKey::Server { method, .. }
            | TransactionKey::ServerRfc2543 { method, .. }
            | TransactionKey::Client { method, .. } => method,
        }
    }
}

//! `PRAGMA data_version`: how a long-lived connection notices that another connection
//! committed (the web server's, the SIP task's, or `pbxctl` in another process) without
//! re-reading any table.

use super::{Store, StoreError};

impl Store {
    /// A number that changes whenever another connection commits to the database; this
    /// connection's own commits leave it alone (SQLite's `PRAGMA data_version`). Cheap:
    /// in WAL mode it reads the shared-memory index, no page of any table.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .pragma_query_value(None, "data_version", |r| r.get(0))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_connections_commit_changes_it_and_our_own_does_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut watcher = Store::open(dir.path()).expect("open");
        let mut other = Store::open(dir.path()).expect("open a second connection");
        let v0 = watcher.data_version().expect("data_version");
        assert_eq!(
            watcher.data_version().expect("again"),
            v0,
            "nothing committed"
        );
        watcher.confirm_gsm_gateway_use(1).expect("own write");
        assert_eq!(watcher.data_version().expect("again"), v0, "our own commit");
        other.set_gsm_inbound(Some("21"), 2).expect("other write");
        let v1 = watcher.data_version().expect("again");
        assert_ne!(v1, v0, "another connection's commit");
        assert_eq!(watcher.data_version().expect("again"), v1);
    }
}

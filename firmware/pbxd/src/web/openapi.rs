//! The OpenAPI 3.1 document for `/api/v1/`, hand-written (`openapi.json`) rather than
//! derived: no proc-macro crates in the build. A test keeps it and the router's route
//! table ([`super::api::routes`]) identical in both directions.

/// The document served at `/api/v1/openapi.json`.
pub const DOCUMENT: &str = include_str!("openapi.json");

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn document_is_valid_json_and_matches_the_routes_both_ways() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("valid JSON");
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                if method == "parameters" {
                    continue;
                }
                assert!(
                    op["responses"].is_object(),
                    "{method} {path} documents its responses"
                );
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
        let routed: BTreeSet<_> = crate::web::api::routes()
            .into_iter()
            .map(|(m, p, _)| (m.to_string(), p.to_owned()))
            .collect();
        assert_eq!(documented, routed);
    }
}

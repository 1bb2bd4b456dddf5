//! The web UI's static files (firmware/pbxd/ui/), built into the binary: plain HTML, CSS
//! and JavaScript modules, no build step, no Node.js. Everything comes from our own
//! origin, so the strict Content-Security-Policy (no inline script or style) holds.
//! `/` is the single page; the modules route by URL fragment (`#/extensions`, ...).

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};

use super::api::AppState;

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// URL path.
    pub path: &'static str,
    /// Content-Type.
    pub content_type: &'static str,
    /// The bytes.
    pub body: &'static str,
}

/// Every UI file, by URL path.
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../../ui/index.html"),
    },
    Asset {
        path: "/ui/app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../ui/app.css"),
    },
    Asset {
        path: "/ui/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../ui/app.js"),
    },
    Asset {
        path: "/ui/api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../ui/api.js"),
    },
    Asset {
        path: "/ui/dom.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../ui/dom.js"),
    },
    Asset {
        path: "/ui/pages.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../ui/pages.js"),
    },
    Asset {
        path: "/ui/dashboard.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../ui/dashboard.js"),
    },
    Asset {
        path: "/ui/i18n.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../ui/i18n.js"),
    },
    Asset {
        path: "/ui/admin.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../ui/admin.js"),
    },
    Asset {
        path: "/ui/trunks.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../ui/trunks.js"),
    },
    Asset {
        path: "/ui/gsm.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../ui/gsm.js"),
    },
    Asset {
        path: "/ui/firmware.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../ui/firmware.js"),
    },
    Asset {
        path: "/ui/phonebook.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../ui/phonebook.js"),
    },
    Asset {
        path: "/ui/ports.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../ui/ports.js"),
    },
    Asset {
        path: "/ui/dial.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../ui/dial.js"),
    },
    Asset {
        path: "/ui/certificate.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../ui/certificate.js"),
    },
    Asset {
        path: "/ui/icon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../../ui/icon.svg"),
    },
];

fn serve(asset: Asset) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            // Revalidate each time: a firmware update must never leave an old script.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        asset.body,
    )
        .into_response()
}

/// The routes serving [`ASSETS`].
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    ASSETS
        .iter()
        .map(|a| {
            let a = *a;
            (a.path, get(move || async move { serve(a) }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CSP forbids inline script and style: no file may rely on them.
    #[test]
    fn no_inline_script_or_style_anywhere() {
        for a in ASSETS {
            if a.content_type.starts_with("text/html") {
                let lower = a.body.to_ascii_lowercase();
                assert!(!lower.contains("<style"), "{}: <style>", a.path);
                assert!(!lower.contains(" style="), "{}: style attribute", a.path);
                assert!(
                    !lower.contains(" on"),
                    "{}: maybe an inline handler",
                    a.path
                );
                for tag in lower.split("<script").skip(1) {
                    let open = tag.split('>').next().unwrap_or_default();
                    assert!(open.contains("src="), "{}: inline <script>", a.path);
                    let body = tag.split('>').nth(1).unwrap_or_default();
                    assert!(body.starts_with("</script"), "{}: script body", a.path);
                }
                assert!(!lower.contains("http://") && !lower.contains("https://"));
            }
            if a.content_type.starts_with("text/javascript") {
                for bad in [
                    "eval(",
                    "new Function",
                    "innerHTML",
                    ".style.",
                    "setAttribute('style'",
                ] {
                    assert!(!a.body.contains(bad), "{}: {bad}", a.path);
                }
            }
        }
    }

    /// Every module imported by a module is served.
    #[test]
    fn imports_resolve_to_assets() {
        for a in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            for line in a.body.lines().filter(|l| l.starts_with("import ")) {
                let spec = line
                    .split(['\'', '"'])
                    .nth(1)
                    .unwrap_or_else(|| panic!("{}: {line}", a.path));
                let path = format!("/ui/{}", spec.trim_start_matches("./"));
                assert!(
                    ASSETS.iter().any(|x| x.path == path),
                    "{}: imports {spec}, not served",
                    a.path
                );
            }
        }
    }
}

//! The web UI (spec §10): static pages, scripts and styles compiled into the binary from
//! `crates/server/ui/` and served at `/`. Nothing is fetched from anywhere at run time;
//! the pages talk to the same REST API every client uses.
//!
//! Not here: any server-side rendering or API of its own. A page that needs data calls
//! `/api/v1/...`; if the UI needs something the API lacks, the API grows, not this file.
//!
//! Paths keep KairosDB's where it has them (`/index.html`, `/view.html?q=<query>`,
//! `/rollups.html`), so bookmarks and shared links keep working.
//!
//! Caching: every asset carries an `ETag` (a hash of its bytes) and the standard
//! `Cache-Control: no-cache` of every response, so a browser revalidates and gets a
//! `304` until the binary changes.

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// One file of the UI.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! assets {
    ($($path:literal => $file:literal, $type:expr;)*) => {
        &[$(Asset {
            path: $path,
            content_type: $type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/", $file)),
        }),*]
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Every file the UI serves. `/` is `index.html`.
static ASSETS: &[Asset] = assets! {
    "/index.html" => "index.html", HTML;
    "/common.js" => "common.js", JS;
    "/editor.js" => "editor.js", JS;
    "/explorer.html" => "explorer.html", HTML;
    "/explorer.js" => "explorer.js", JS;
    "/status.html" => "status.html", HTML;
    "/status.js" => "status.js", JS;
    "/rollups.html" => "rollups.html", HTML;
    "/rollups.js" => "rollups.js", JS;
    "/rollup-form.js" => "rollup-form.js", JS;
    "/query.js" => "query.js", JS;
    "/combobox.js" => "combobox.js", JS;
    "/chart.js" => "chart.js", JS;
    "/results.js" => "results.js", JS;
    "/view.html" => "view.html", HTML;
    "/view.js" => "view.js", JS;
    "/style.css" => "style.css", CSS;
    "/favicon.svg" => "favicon.svg", SVG;
};

/// The asset at `path`, if the UI has one.
fn find(path: &str) -> Option<&'static Asset> {
    let path = if path == "/" { "/index.html" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}

/// `"<hash>"` of the asset's bytes: changes exactly when the binary's copy does.
fn etag(asset: &Asset) -> String {
    format!("\"{:016x}\"", fnv1a(asset.bytes))
}

/// FNV-1a: a few lines, no dependency, plenty for telling two builds' files apart.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Serves a UI file for `GET`/`HEAD` of a known path; `None` for anything else, which the
/// router then answers with its 404.
pub fn serve(method: &Method, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let asset = find(uri.path())?;
    let tag = etag(asset);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == tag.as_bytes());
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else if method == Method::HEAD {
        StatusCode::OK.into_response()
    } else {
        (StatusCode::OK, asset.bytes).into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_the_index_page_and_unknown_paths_are_not_assets() {
        assert_eq!(find("/").map(|a| a.path), Some("/index.html"));
        assert!(find("/nope.html").is_none());
        assert!(find("/api/v1/version").is_none());
    }

    #[test]
    fn every_asset_is_non_empty_and_typed_by_its_extension() {
        for a in ASSETS {
            assert!(!a.bytes.is_empty(), "{}", a.path);
            let want = match a.path.rsplit('.').next() {
                Some("html") => HTML,
                Some("js") => JS,
                Some("css") => CSS,
                Some("svg") => SVG,
                other => panic!("no content type for {other:?}"),
            };
            assert_eq!(a.content_type, want, "{}", a.path);
        }
    }

    #[test]
    fn every_file_of_the_ui_directory_is_served() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/ui");
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                find(&format!("/{name}")).is_some(),
                "ui/{name} is not in ASSETS"
            );
        }
    }

    #[test]
    fn a_matching_etag_answers_not_modified() {
        let get = Method::GET;
        let uri: Uri = "/".parse().unwrap();
        let first = serve(&get, &uri, &HeaderMap::new()).unwrap();
        assert_eq!(first.status(), StatusCode::OK);
        let tag = first.headers()[header::ETAG].clone();
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, tag);
        let again = serve(&get, &uri, &headers).unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert!(serve(&Method::POST, &uri, &HeaderMap::new()).is_none());
    }
}

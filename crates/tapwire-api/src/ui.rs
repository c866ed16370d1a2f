//! `/ui/`: the read-only web view, its three files embedded in the binary (no external
//! CDN, nothing fetched at run time). The page signs in with an access key and reads the
//! own endpoints with HTTP Basic; it writes nothing. Served with a Content-Security-Policy
//! that allows only this origin's script and style, and no framing.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

const INDEX: &str = include_str!("ui/index.html");
const SCRIPT: &str = include_str!("ui/app.js");
const STYLE: &str = include_str!("ui/style.css");

fn file(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// `/ui`: to `/ui/`.
pub async fn to_index() -> Redirect {
    Redirect::permanent("/ui/")
}

/// `/ui/`.
pub async fn index() -> Response {
    file(INDEX, "text/html; charset=utf-8")
}

/// `/ui/{file}`.
pub async fn asset(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "app.js" => file(SCRIPT, "text/javascript; charset=utf-8"),
        "style.css" => file(STYLE, "text/css; charset=utf-8"),
        "index.html" => file(INDEX, "text/html; charset=utf-8"),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

//! The one HTML shell for pages the server renders outside Leptos: the authorization
//! server's error pages and the connections popup's closing page. Plain server-rendered HTML
//! in the app's styles, every value escaped.

use axum::response::{Html, IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One block of a page.
pub enum Part<'a> {
    Text(&'a str),
    /// A value from the request, shown verbatim (escaped) in monospace.
    Value(&'a str, &'a str),
    Code(&'a str),
    /// A button that POSTs to `action` (a same-origin path): a real form, without JavaScript.
    Button {
        action: &'a str,
        label: &'a str,
    },
}

pub fn error_page(status: StatusCode, title: &str, parts: &[Part<'_>]) -> Response {
    page(status, title, parts, None)
}

/// A small standalone page in the app's style; `script` is inline JavaScript that must
/// already be safe to embed (see `script_json`).
pub fn page(status: StatusCode, title: &str, parts: &[Part<'_>], script: Option<&str>) -> Response {
    let mut body = String::new();
    for part in parts {
        match part {
            Part::Text(t) => body.push_str(&format!("<p class=\"mb-3 text-sm text-slate-700\">{}</p>", escape(t))),
            Part::Value(label, v) => body.push_str(&format!(
                "<p class=\"mb-3 text-sm text-slate-700\">{}: <code class=\"break-all rounded bg-slate-100 px-1\">{}</code></p>",
                escape(label),
                escape(v)
            )),
            Part::Button { action, label } => body.push_str(&format!(
                "<form method=\"post\" action=\"{}\" class=\"mt-4\"><button type=\"submit\" \
                 class=\"rounded-md bg-indigo-600 px-4 py-2 text-sm font-medium text-white hover:bg-indigo-700\">{}</button></form>",
                escape(action),
                escape(label)
            )),
            Part::Code(c) => body.push_str(&format!(
                "<pre class=\"mb-3 overflow-x-auto rounded-md bg-slate-900 p-3 text-xs text-slate-100\">{}</pre>",
                escape(c)
            )),
        }
    }
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\" class=\"h-full\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Gatehouse</title><link rel=\"stylesheet\" href=\"/pkg/gatehouse.css\">\
         <link rel=\"icon\" href=\"/favicon.ico\"></head>\
         <body class=\"h-full bg-slate-50 text-slate-900 antialiased\">\
         <main class=\"flex min-h-full items-center justify-center px-4 py-12\"><div class=\"w-full max-w-lg\">\
         <div class=\"mb-6 flex items-center justify-center gap-2\"><span class=\"inline-block h-8 w-8 rounded bg-indigo-600\"></span>\
         <span class=\"text-2xl font-semibold\">Gatehouse</span></div>\
         <div class=\"rounded-lg border border-slate-200 bg-white p-6 shadow-sm\" role=\"alert\">\
         <h1 class=\"mb-4 text-lg font-semibold\">{title}</h1>{body}</div></div></main>{script}</body></html>",
        title = escape(title),
        script = script
            .map(|s| format!("<script>{s}</script>"))
            .unwrap_or_default(),
    );
    let mut response = (status, Html(html)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A JSON value as a JavaScript literal that cannot end the surrounding `<script>`.
pub fn script_json(value: &serde_json::Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        assert_eq!(
            escape("<script>\"x\" & 'y'"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;"
        );
    }
}

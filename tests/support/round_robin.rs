//! A minimal round-robin HTTP reverse proxy in front of two Gatehouse replicas, shared by the
//! integration tests (`Replicas`) and the benchmarks (`benches/replicas.rs`).

use std::sync::Arc;

/// A minimal HTTP reverse proxy: one backend after the other, bodies streamed both ways (SSE
/// answers included), redirects and `Host` passed through untouched.
pub async fn round_robin(
    listener: tokio::net::TcpListener,
    backends: [String; 2],
    sent: Arc<[std::sync::atomic::AtomicUsize; 2]>,
) {
    use axum::body::Body;
    use axum::extract::Request;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = Arc::new(AtomicUsize::new(0));
    let upstream = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let forward = move |request: Request| {
        let upstream = upstream.clone();
        let n = next.fetch_add(1, Ordering::SeqCst) % 2;
        sent[n].fetch_add(1, Ordering::SeqCst);
        let backend = backends[n].clone();
        async move {
            let (parts, body) = request.into_parts();
            let path = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "/".into());
            let body = axum::body::to_bytes(body, 16 * 1024 * 1024).await.unwrap();
            let mut headers = parts.headers.clone();
            for hop in [
                "connection",
                "keep-alive",
                "transfer-encoding",
                "upgrade",
                "content-length",
            ] {
                headers.remove(hop);
            }
            let answer = upstream
                .request(parts.method.clone(), format!("{backend}{path}"))
                .headers(headers)
                .body(body)
                .send()
                .await;
            let answer = match answer {
                Ok(a) => a,
                Err(e) => {
                    return axum::response::Response::builder()
                        .status(502)
                        .body(Body::from(format!("proxy: {e}")))
                        .unwrap();
                }
            };
            let mut response = axum::response::Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                if !matches!(
                    name.as_str(),
                    "connection" | "transfer-encoding" | "content-length"
                ) {
                    response = response.header(name, value);
                }
            }
            response
                .body(Body::from_stream(answer.bytes_stream()))
                .unwrap()
        }
    };
    let app = axum::Router::new().fallback(forward);
    axum::serve(listener, app).await.unwrap();
}

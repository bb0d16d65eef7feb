//! The HTTP side: one thread with its own single-threaded runtime, answering from the last
//! published exposition and never from the kernel. Connections are bounded in number and in
//! time, so slow or broken clients cannot pile up or hold the server; when all the slots are
//! taken, the connection idle the longest (no request under way) makes room for a new one,
//! so a flood of clients that connect and say nothing cannot keep a scrape waiting.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ACCEPT, ALLOW, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{watch, Notify, Semaphore};

use super::exposition::{Rendered, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE};

/// Connections served at once; more wait in the listen backlog until one ends.
const MAX_CONNECTIONS: usize = 64;
/// A client must send its request head within this time (slowloris, idle connections).
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Request line and headers together; Prometheus sends well under 1 KiB.
const MAX_HEADER_BYTES: usize = 16 * 1024;
/// A kept-alive connection is closed after this long, once its current response is out.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// How long a response may take to reach a client that does not read it.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What the sampler hands over after each sample.
#[derive(Clone, Debug)]
pub struct Published {
    pub exposition: Rendered,
    pub source: String,
    /// When the last sample succeeded.
    pub last_ok: Instant,
    /// Why the samples since `last_ok` failed, if they did.
    pub last_error: Option<String>,
    /// No successful sample for this long means the sampler is stuck or failing.
    pub stale_after: Duration,
    /// With `--token-file`: what /metrics wants in `Authorization: Bearer …`.
    pub token: Option<Arc<str>>,
}

pub type Receiver = watch::Receiver<Arc<Published>>;

/// Starts the HTTP thread on an already bound listener. Its result is an error only when the
/// server cannot run at all.
pub fn spawn(
    listener: TcpListener,
    published: Receiver,
) -> std::io::Result<std::thread::JoinHandle<anyhow::Result<()>>> {
    std::thread::Builder::new()
        .name("http".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(accept_loop(listener, published))
        })
}

/// One open connection, as the accept loop sees it.
struct Open {
    /// Since when it has had no request under way; None while one is.
    idle_since: Option<Instant>,
    /// Tells it to close.
    close: Arc<Notify>,
}

/// The open connections, by number.
#[derive(Default)]
struct Connections {
    open: HashMap<u64, Open>,
}

type Shared = Arc<Mutex<Connections>>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Connections> {
    // A panic while holding it leaves the map as it was between two statements: usable.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

impl Connections {
    /// Closes the connection idle the longest; false when every one has a request under way.
    fn close_longest_idle(&mut self) -> bool {
        let oldest = self
            .open
            .iter()
            .filter_map(|(id, c)| c.idle_since.map(|since| (since, *id)))
            .min();
        match oldest.and_then(|(_, id)| self.open.remove(&id)) {
            Some(c) => {
                c.close.notify_one();
                true
            }
            None => false,
        }
    }

    fn set_idle(&mut self, id: u64, idle: bool) {
        if let Some(c) = self.open.get_mut(&id) {
            c.idle_since = idle.then(Instant::now);
        }
    }
}

/// Connections the kernel holds for `accept` (capped by net.core.somaxconn): room for a flood
/// of clients, so that a scraper's connection is not dropped and retried a second later.
const LISTEN_BACKLOG: i32 = 4096;

async fn accept_loop(listener: TcpListener, published: Receiver) -> anyhow::Result<()> {
    // SAFETY: listen(2) on a socket this function owns, already listening: it only changes the
    // backlog.
    if unsafe { libc::listen(listener.as_raw_fd(), LISTEN_BACKLOG) } != 0 {
        log::debug!("http: listen backlog: {}", std::io::Error::last_os_error());
    }
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let shared: Shared = Arc::default();
    let mut next_id = 0u64;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it was accepted:
                // transient, and a tight retry loop would only burn CPU.
                log::warn!("http: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if slots.available_permits() == 0 {
            lock(&shared).close_longest_idle();
        }
        // Every slot busy with a request: wait for one to end, as before.
        let slot = Arc::clone(&slots)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        next_id += 1;
        let id = next_id;
        let close = Arc::new(Notify::new());
        lock(&shared).open.insert(
            id,
            Open {
                idle_since: Some(Instant::now()),
                close: Arc::clone(&close),
            },
        );
        let (published, shared) = (published.clone(), Arc::clone(&shared));
        tokio::spawn(async move {
            serve_connection(stream, published, &shared, id, &close).await;
            lock(&shared).open.remove(&id);
            drop(slot);
        });
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    published: Receiver,
    shared: &Shared,
    id: u64,
    close: &Notify,
) {
    let marks = Arc::clone(shared);
    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
        // Clone the Arc out: the watch channel's lock is held only for that.
        let now = Arc::clone(&published.borrow());
        lock(&marks).set_idle(id, false);
        let response = respond(&req, &now, Instant::now());
        // The answer is in memory: written at once unless the client does not read it, and
        // then the connection is as good as idle.
        lock(&marks).set_idle(id, true);
        async move { Ok::<_, Infallible>(response) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_header_size(MAX_HEADER_BYTES)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = close.notified() => return,
        () = tokio::time::sleep(CONNECTION_LIFETIME) => {
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(SHUTDOWN_GRACE, conn.as_mut()).await {
                Ok(r) => r,
                Err(_) => return,
            }
        }
    };
    if let Err(e) = result {
        // Malformed requests, timeouts and resets are the client's business; they are only
        // interesting when debugging a scraper.
        log::debug!("http: connection: {e}");
    }
}

fn plain(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The quality (RFC 9110 12.5.1) that `accept`, a list of media ranges, gives `type/subtype`:
/// that of the most specific range matching it (`type/subtype`, then `type/*`, then `*/*`),
/// the highest where several are as specific; 0 when none matches. Case-insensitive; a
/// malformed q counts as 1, as most servers read it.
fn quality(accept: &str, media_type: &str) -> (f32, u8) {
    let (ty, subtype) = media_type.split_once('/').unwrap_or((media_type, ""));
    let mut best: (f32, u8) = (0.0, 0);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let Some((rty, rsub)) = parts.next().and_then(|m| m.trim().split_once('/')) else {
            continue;
        };
        let (rty, rsub) = (rty.trim(), rsub.trim());
        let specificity = if rty.eq_ignore_ascii_case(ty) && rsub.eq_ignore_ascii_case(subtype) {
            3
        } else if rty.eq_ignore_ascii_case(ty) && rsub == "*" {
            2
        } else if rty == "*" && rsub == "*" {
            1
        } else {
            continue;
        };
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .and_then(|(_, v)| v.trim().parse::<f32>().ok())
            .filter(|q| (0.0..=1.0).contains(q))
            .unwrap_or(1.0);
        if specificity > best.1 || (specificity == best.1 && q > best.0) {
            best = (q, specificity);
        }
    }
    best
}

/// OpenMetrics when the client prefers it (Prometheus does), else the older text format, which
/// every client of the Prometheus format reads: on a tie (`*/*`), text, unless OpenMetrics is
/// named.
fn wants_openmetrics<B>(req: &Request<B>) -> bool {
    let accept: Vec<&str> = req
        .headers()
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let accept = accept.join(",");
    let (om, om_named) = quality(&accept, "application/openmetrics-text");
    let (text, _) = quality(&accept, "text/plain");
    om > 0.0 && (om > text || (om == text && om_named == 3))
}

/// Equal, in a time that does not depend on where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Does the request carry `Authorization: Bearer TOKEN`?
fn authorized<B>(req: &Request<B>, token: &str) -> bool {
    req.headers().get_all(AUTHORIZATION).iter().any(|v| {
        let v = v.as_bytes();
        v.len() > 7
            && v[..7].eq_ignore_ascii_case(b"bearer ")
            && same_secret(v[7..].trim_ascii(), token.as_bytes())
    })
}

fn respond<B>(req: &Request<B>, published: &Published, now: Instant) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n".into());
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match req.uri().path() {
        "/metrics"
            if published
                .token
                .as_deref()
                .is_some_and(|token| !authorized(req, token)) =>
        {
            let mut r = plain(
                StatusCode::UNAUTHORIZED,
                "/metrics needs `Authorization: Bearer` with the token of --token-file\n".into(),
            );
            r.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"profiler\""),
            );
            r
        }
        "/metrics" => {
            let (body, content_type) = if wants_openmetrics(req) {
                (&published.exposition.openmetrics, OPENMETRICS_CONTENT_TYPE)
            } else {
                (&published.exposition.text, TEXT_CONTENT_TYPE)
            };
            let mut r = Response::new(Full::new(body.clone()));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            r
        }
        "/healthz" => health(published, now),
        "/" => plain(
            StatusCode::OK,
            "profiler exporter: /metrics (Prometheus and OpenMetrics), /healthz\n".into(),
        ),
        _ => plain(StatusCode::NOT_FOUND, "not found: try /metrics\n".into()),
    }
}

/// 200 while samples keep coming; 503, with the reason, once they have stopped.
fn health(p: &Published, now: Instant) -> Response<Full<Bytes>> {
    let age = now.saturating_duration_since(p.last_ok);
    if age <= p.stale_after {
        return plain(
            StatusCode::OK,
            format!(
                "ok: source {}, last sample {:.1} s ago\n",
                p.source,
                age.as_secs_f64()
            ),
        );
    }
    let why = p
        .last_error
        .as_deref()
        .unwrap_or("the sampler is not answering");
    plain(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "stale: source {}, last good sample {:.1} s ago: {why}\n",
            p.source,
            age.as_secs_f64()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A publication `age` old, and the time at which it is that old.
    fn published(age: Duration, error: Option<&str>) -> (Published, Instant) {
        let last_ok = Instant::now();
        let p = Published {
            exposition: Rendered {
                openmetrics: Bytes::from_static(b"om\n# EOF\n"),
                text: Bytes::from_static(b"text\n"),
            },
            source: "ebpf".into(),
            last_ok,
            last_error: error.map(String::from),
            stale_after: Duration::from_secs(10),
            token: None,
        };
        (p, last_ok + age)
    }

    fn get(path: &str, accept: Option<&str>) -> Request<()> {
        let mut b = Request::builder().uri(path);
        if let Some(a) = accept {
            b = b.header(ACCEPT, a);
        }
        b.body(()).expect("request")
    }

    #[test]
    fn metrics_negotiates_the_format() {
        let (p, now) = published(Duration::ZERO, None);
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        let r = respond(&get("/metrics", Some(prometheus)), &p, now);
        assert_eq!(r.headers()[CONTENT_TYPE], OPENMETRICS_CONTENT_TYPE);
        let r = respond(&get("/metrics", Some("*/*")), &p, now);
        assert_eq!(r.headers()[CONTENT_TYPE], TEXT_CONTENT_TYPE);
        let r = respond(&get("/metrics", None), &p, now);
        assert_eq!(r.status(), StatusCode::OK);
        for (accept, openmetrics) in [
            ("application/openmetrics-text;q=0, text/plain", false),
            ("application/openmetrics-text; q=0.0", false),
            ("APPLICATION/OpenMetrics-Text;version=1.0.0", true),
            (
                "application/openmetrics-text;q=0.2, text/plain;q=0.9",
                false,
            ),
            ("text/plain;q=0.1, application/openmetrics-text;Q=0.5", true),
            ("application/*", true),
            ("text/plain, application/openmetrics-text", true),
            ("*/*;q=0.5, text/plain;q=0", true),
            ("application/json", false),
        ] {
            let r = respond(&get("/metrics", Some(accept)), &p, now);
            let expected = if openmetrics {
                OPENMETRICS_CONTENT_TYPE
            } else {
                TEXT_CONTENT_TYPE
            };
            assert_eq!(r.headers()[CONTENT_TYPE], expected, "Accept: {accept}");
        }
        assert_eq!(
            respond(&get("/nope", None), &p, now).status(),
            StatusCode::NOT_FOUND
        );
        let post = Request::builder()
            .method(Method::POST)
            .uri("/metrics")
            .body(())
            .expect("request");
        assert_eq!(
            respond(&post, &p, now).status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    #[test]
    fn a_token_guards_metrics_only() {
        let (mut p, now) = published(Duration::ZERO, None);
        p.token = Some(Arc::from("s3cret"));
        let with = |auth: Option<&str>| {
            let mut b = Request::builder().uri("/metrics");
            if let Some(a) = auth {
                b = b.header(AUTHORIZATION, a);
            }
            respond(&b.body(()).expect("request"), &p, now).status()
        };
        assert_eq!(with(None), StatusCode::UNAUTHORIZED);
        assert_eq!(with(Some("Bearer wrong")), StatusCode::UNAUTHORIZED);
        assert_eq!(with(Some("Bearer s3cre")), StatusCode::UNAUTHORIZED);
        assert_eq!(with(Some("Basic czNjcmV0")), StatusCode::UNAUTHORIZED);
        assert_eq!(with(Some("Bearer s3cret")), StatusCode::OK);
        assert_eq!(with(Some("bearer  s3cret ")), StatusCode::OK);
        assert_eq!(
            respond(&get("/healthz", None), &p, now).status(),
            StatusCode::OK,
            "probes need no token"
        );
    }

    #[test]
    fn health_turns_503_when_samples_stop() {
        let (p, now) = published(Duration::from_secs(1), None);
        assert_eq!(health(&p, now).status(), StatusCode::OK);
        let (p, now) = published(Duration::from_secs(30), Some("ebpf: map read failed"));
        let r = health(&p, now);
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}

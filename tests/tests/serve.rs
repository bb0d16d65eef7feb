//! `profiler serve` as Prometheus meets it: a real Prometheus scrapes it while a child does an
//! exactly known amount of I/O, and what Prometheus stores matches; and malformed, slow and
//! many concurrent clients neither crash the server nor stall its sampling. Loopback only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use profiler_tests::{profiler_bin, require_root, Scratch, Workload};
use serde_json::Value;

/// A loopback port that nothing listens on now.
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("finding a free loopback port")
}

/// A server child whose stderr goes to a file; killed on drop, so a failed assertion leaves
/// nothing behind.
struct Server {
    child: Child,
    log: String,
}

impl Server {
    fn start(program: &std::path::Path, args: &[&str], log: String) -> Server {
        let file = std::fs::File::create(&log).expect("creating a log file");
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        Server { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with the server's log if it has exited.
    fn assert_running(&mut self, what: &str) {
        if let Some(status) = self.child.try_wait().expect("polling a server") {
            panic!("{what} exited ({status}):\n{}", self.log());
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Reply {
    status: u16,
    body: String,
}

/// One HTTP/1.0 GET: the server closes the connection after the reply and sends no chunked
/// body, so reading to the end is the whole parser. Every step has a timeout.
fn http_get(addr: SocketAddr, target: &str, accept: Option<&str>) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {target} HTTP/1.0\r\nHost: {addr}\r\n{accept}\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {head:?}")))?;
    Ok(Reply {
        status,
        body: body.to_string(),
    })
}

/// Polls `f` every 100 ms until it gives a value; panics after `timeout`.
fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts `profiler serve --listen ADDR ARGS` and returns once /healthz answers 200.
fn start_exporter(s: &Scratch, addr: SocketAddr, args: &[&str]) -> Server {
    let listen = addr.to_string();
    let mut all = vec!["serve", "--listen", &listen];
    all.extend_from_slice(args);
    let mut server = Server::start(&profiler_bin(), &all, s.path("profiler.log"));
    wait_for(
        "profiler serve to answer /healthz",
        Duration::from_secs(20),
        || {
            server.assert_running("profiler serve");
            http_get(addr, "/healthz", None)
                .ok()
                .filter(|r| r.status == 200)
        },
    );
    server
}

/// The value of a sample without labels, from exposition text.
fn sample_value(exposition: &str, name: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(' ')?;
        rest.trim().parse().ok()
    })
}

fn samples_taken(addr: SocketAddr) -> f64 {
    let reply = http_get(addr, "/metrics", None).expect("scraping /metrics");
    assert_eq!(reply.status, 200, "{}", reply.body);
    sample_value(&reply.body, "profiler_samples_total")
        .unwrap_or_else(|| panic!("no profiler_samples_total in:\n{}", reply.body))
}

/// Everything but RFC 3986's unreserved characters, percent-encoded (for PromQL in a URL).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Prometheus server with a generated config that scrapes one target every second.
struct Prometheus {
    server: Server,
    addr: SocketAddr,
}

impl Prometheus {
    fn start(s: &Scratch, target: SocketAddr) -> Prometheus {
        let config = s.path("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: profiler\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("writing prometheus.yml");
        let addr = free_port();
        let tsdb = s.path("tsdb");
        let mut server = Server::start(
            std::path::Path::new("/usr/bin/prometheus"),
            &[
                &format!("--config.file={config}"),
                &format!("--storage.tsdb.path={tsdb}"),
                &format!("--web.listen-address={addr}"),
            ],
            s.path("prometheus.log"),
        );
        wait_for("Prometheus to be ready", Duration::from_secs(20), || {
            server.assert_running("prometheus");
            http_get(addr, "/-/ready", None)
                .ok()
                .filter(|r| r.status == 200)
        });
        Prometheus { server, addr }
    }

    /// The `data.result` of an instant query, evaluated now or at `time` (Unix seconds).
    fn query(&self, promql: &str, time: Option<f64>) -> Vec<Value> {
        let mut target = format!("/api/v1/query?query={}", percent_encode(promql));
        if let Some(t) = time {
            target.push_str(&format!("&time={t:.3}"));
        }
        let reply = http_get(self.addr, &target, None)
            .unwrap_or_else(|e| panic!("querying Prometheus: {e}\n{}", self.server.log()));
        let json: Value = serde_json::from_str(&reply.body)
            .unwrap_or_else(|e| panic!("{promql}: {e}: {}", reply.body));
        assert_eq!(json["status"], "success", "{promql}: {json}");
        json["data"]["result"].as_array().expect("result").clone()
    }

    /// The single value of an instant vector query.
    fn value(&self, promql: &str, time: Option<f64>) -> f64 {
        let result = self.query(promql, time);
        assert_eq!(
            result.len(),
            1,
            "{promql}: one series wanted, got {result:?}"
        );
        number(&result[0]["value"][1])
    }
}

fn number(v: &Value) -> f64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn prometheus_stores_exactly_the_bytes_a_child_wrote() {
    require_root();
    const N: u64 = 200;
    const B: u64 = 4096;
    let s = Scratch::new("serve-prometheus");
    let input = s.file("in", 4096);
    // The eBPF source knows a task from its first read or write: the read gives the child a
    // series (at wchar 0) that Prometheus scrapes during the sleep, before the writes.
    let mut child = Workload::start(&[
        format!("read:{input}:1:4096"),
        "sleep:3000".into(),
        format!("write:{}:{N}:{B}", s.path("out")),
    ]);
    let pid = child.pid().to_string();
    let exporter_addr = free_port();
    let mut exporter = start_exporter(
        &s,
        exporter_addr,
        &["--source", "ebpf", "-d", "0.5", "-p", &pid],
    );
    let prometheus = Prometheus::start(&s, exporter_addr);
    wait_for(
        "two scrapes of the exporter",
        Duration::from_secs(10),
        || {
            let n = prometheus.query("count_over_time(profiler_samples_total[1m])", None);
            n.first()
                .map(|r| number(&r["value"][1]))
                .filter(|&n| n >= 2.0)
        },
    );

    child.run_ops();

    let wchar = format!("profiler_write_chars_bytes_total{{pid=\"{pid}\"}}");
    let written = (N * B) as f64;
    // Wait until two scrapes have seen the finished writes.
    let samples = wait_for(
        "Prometheus to scrape the writes",
        Duration::from_secs(10),
        || {
            exporter.assert_running("profiler serve");
            let result = prometheus.query(&format!("{wchar}[1m]"), None);
            let values: Vec<(f64, f64)> = result
                .first()?
                .get("values")?
                .as_array()?
                .iter()
                .map(|v| (v[0].as_f64().expect("timestamp"), number(&v[1])))
                .collect();
            let done = values
                .iter()
                .rev()
                .take_while(|(_, v)| *v == written)
                .count();
            (done >= 2).then_some(values)
        },
    );
    assert_eq!(
        samples[0].1, 0.0,
        "scrapes before the writes saw the series at 0: {samples:?}"
    );
    assert!(
        samples.windows(2).all(|w| w[0].1 <= w[1].1),
        "a counter never goes down: {samples:?}"
    );
    let series = prometheus.query(&wchar, None);
    assert_eq!(series[0]["metric"]["command"], "workload", "{series:?}");
    assert_eq!(series[0]["metric"]["user"], "root", "{series:?}");

    let spread = |m: &str| {
        prometheus.value(
            &format!("max_over_time({m}[1m]) - min_over_time({m}[1m])"),
            None,
        )
    };
    assert_eq!(spread(&wchar), written, "bytes written, exactly");
    let syscw = format!("profiler_write_syscalls_total{{pid=\"{pid}\"}}");
    assert_eq!(spread(&syscw), N as f64, "write calls, exactly");

    // increase() extrapolates towards the ends of the range; the series starts at 0 (no
    // extrapolation before it) and, evaluated at its last sample, none after it either.
    let last = samples.last().expect("samples").0;
    let increase = prometheus.value(&format!("increase({wchar}[1m])"), Some(last));
    assert!(
        (increase - written).abs() <= written * 0.02,
        "increase() = {increase}, written {written}"
    );
    child.finish();
}

/// Writes `request` (ignoring errors: the server may close first) and reads what comes back
/// until the server closes the connection.
fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connecting");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = stream.write_all(request);
    let mut reply = Vec::new();
    // A reset (the server closed with our bytes unread) is an answer too.
    let _ = stream.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn malformed_slow_and_concurrent_clients_neither_crash_nor_stall_it() {
    require_root();
    const INTERVAL_S: f64 = 0.2;
    let s = Scratch::new("serve-abuse");
    let addr = free_port();
    // Sampling only this test process keeps each sample cheap, so the rate check below measures
    // stalls caused by the clients, not how busy the rest of the machine is.
    let me = std::process::id().to_string();
    let mut exporter = start_exporter(
        &s,
        addr,
        &[
            "--source",
            "procfs",
            "-d",
            &INTERVAL_S.to_string(),
            "--top",
            "5",
            "-p",
            &me,
        ],
    );
    let started = Instant::now();
    let before = samples_taken(addr);

    // Slow clients: one connects and sends nothing, one stops in the middle of its headers.
    let mut silent = TcpStream::connect(addr).expect("connecting");
    let mut halfway = TcpStream::connect(addr).expect("connecting");
    halfway
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .expect("writing half a request");

    let mut garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    garbage.extend_from_slice(b"\r\n\r\n");
    let huge_header = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let requests = [
        ("garbage", garbage),
        ("no HTTP version", b"GET /metrics\r\n\r\n".to_vec()),
        ("a 1 MiB header", huge_header.into_bytes()),
    ];
    // Round after round until the sampler has moved on three times: it must not wait for us.
    let until = Instant::now() + Duration::from_secs(3);
    let mut midway = before;
    for _ in 0..1000 {
        for (what, request) in &requests {
            let reply = raw_exchange(addr, request);
            assert!(
                !reply.contains(" 200 "),
                "{what} must not be served: {reply:.200}"
            );
        }
        exporter.assert_running("profiler serve");
        midway = samples_taken(addr);
        if midway >= before + 3.0 || Instant::now() >= until {
            break;
        }
    }

    let scrapes: Vec<_> = (0..100)
        .map(|i| {
            std::thread::spawn(move || {
                let accept = (i % 2 == 0).then_some("application/openmetrics-text;version=1.0.0");
                http_get(addr, "/metrics", accept)
            })
        })
        .collect();
    for (i, scrape) in scrapes.into_iter().enumerate() {
        let reply = scrape
            .join()
            .expect("scrape thread")
            .unwrap_or_else(|e| panic!("scrape {i}: {e}"));
        assert_eq!(reply.status, 200, "scrape {i}");
        assert!(
            reply.body.contains("profiler_samples_total"),
            "scrape {i}: {}",
            reply.body
        );
    }

    // The silent client is cut off by the server's header timeout, not held forever.
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let waited = Instant::now();
    let mut buf = [0u8; 512];
    match silent.read(&mut buf) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the silent client was not disconnected: {e}"),
    }
    assert!(waited.elapsed() < Duration::from_secs(9));
    halfway
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut reply = Vec::new();
    let _ = halfway.read_to_end(&mut reply);
    assert!(
        !String::from_utf8_lossy(&reply).contains(" 200 "),
        "half a request is not served"
    );

    exporter.assert_running("profiler serve");
    let after = samples_taken(addr);
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        before < midway && midway < after,
        "samples kept being taken: {before}, {midway}, {after}"
    );
    assert!(
        after - before >= elapsed / INTERVAL_S / 2.0,
        "{} samples in {elapsed:.1} s at one per {INTERVAL_S} s",
        after - before
    );
    let health = http_get(addr, "/healthz", None).expect("healthz");
    assert_eq!(health.status, 200, "{}", health.body);
}

//! `make bench`: init time of each function binary, from process start until its first
//! request to the Lambda Runtime API (`GET .../invocation/next`), which is when Lambda's
//! Init phase ends. The binaries are this machine's release builds (x86_64); Lambda runs
//! the arm64 build of the same code.

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 25;

fn init_time(binary: &PathBuf, env: &[(&str, &str)]) -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    let started = Instant::now();
    let mut child = Command::new(binary)
        .envs(env.iter().copied())
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "cold-start")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
    let (mut connection, _) = listener.accept().expect("the function never called the runtime API");
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = connection.read(&mut buffer).expect("read the first request");
        assert!(n > 0, "the function closed the connection before sending a request");
        request.extend_from_slice(&buffer[..n]);
    }
    let elapsed = started.elapsed();
    assert!(
        String::from_utf8_lossy(&request).contains("/runtime/invocation/next"),
        "unexpected first request: {}",
        String::from_utf8_lossy(&request)
    );
    let _ = child.kill();
    let _ = child.wait();
    elapsed
}

fn main() {
    let release = integration_tests::workspace_root().join("target/release");
    let policy = integration_tests::fixture("policies/web.json");
    let policy = policy.to_str().expect("UTF-8 path");
    let functions: [(&str, Vec<(&str, &str)>); 2] = [
        ("metric-poller", vec![("POLICY_URI", policy), ("STATE_URI", "s3://state/poller")]),
        ("log-processor", vec![]),
    ];
    println!("{:<14} {:>10} {:>10} {:>10} {:>12}", "function", "min ms", "median ms", "max ms", "binary MB");
    for (name, env) in functions {
        let binary = release.join(name);
        assert!(binary.exists(), "{} not found: cargo build --release first", binary.display());
        init_time(&binary, &env); // warm the page cache, as Lambda's is for a cached image
        let mut times: Vec<Duration> = (0..RUNS).map(|_| init_time(&binary, &env)).collect();
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let size = std::fs::metadata(&binary).expect("binary").len() as f64 / 1e6;
        println!(
            "{:<14} {:>10.2} {:>10.2} {:>10.2} {:>12.2}",
            name,
            ms(times[0]),
            ms(times[RUNS / 2]),
            ms(times[RUNS - 1]),
            size
        );
    }
}

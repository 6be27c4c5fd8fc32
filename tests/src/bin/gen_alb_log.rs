//! `make bench-logs`: writes a synthetic ALB access log to stdout for the log-processor
//! benchmark (which compresses it with pigz): `gen-alb-log LINES`. Lines look like real ones (all
//! documented fields, ~500 bytes), spread over an hour, three target groups, a mix of
//! statuses and latencies, a few `-1` timings; deterministic (fixed seed).

use std::io::{BufWriter, Write};

/// xorshift64*: deterministic and fast; statistical quality is beside the point here.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: gen-alb-log LINES";
    let lines: u64 = args.next().expect(usage).parse().expect(usage);
    let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let start = 1_796_040_000u64; // 2026-11-30T12:00:00Z
    let paths =
        ["/", "/cart", "/api/v1/products?page=2", "/static/app.js", "/checkout", "/api/v1/search?q=shoes"];
    let agents = [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        "curl/8.5.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    ];
    for i in 0..lines {
        let t = start + i * 3600 / lines.max(1);
        let (h, m, s) = ((t / 3600) % 24, (t / 60) % 60, t % 60);
        let micros = rng.below(1_000_000);
        let tg = rng.below(3);
        let status = match rng.below(100) {
            0..=84 => 200,
            85..=89 => 304,
            90..=96 => 404,
            97 => 500,
            _ => 503,
        };
        let no_response = status == 503 && rng.below(2) == 0;
        let target_time = if no_response {
            "-1".to_owned()
        } else {
            format!("{:.3}", (rng.below(2000) as f64 / 1000.0).powi(2))
        };
        let path = paths[rng.below(paths.len() as u64) as usize];
        let agent = agents[rng.below(agents.len() as u64) as usize];
        writeln!(
            out,
            "https 2026-11-30T{h:02}:{m:02}:{s:02}.{micros:06}Z app/shop-alb/50dc6c495c0c9188 203.0.113.{}:{} 10.0.{}.{}:8080 0.000 {target_time} 0.000 {status} {} {} {} \"GET https://shop.example.com:443{path} HTTP/1.1\" \"{agent}\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-{tg}/73e2d6bc24d8a06{tg} \"Root=1-6b0d246f-{:024x}\" \"shop.example.com\" \"arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012\" 0 2026-11-30T{h:02}:{m:02}:{s:02}.{micros:06}Z \"forward\" \"-\" \"-\" \"10.0.{}.{}:8080\" \"{status}\" \"-\" \"-\" TID_{:016x}",
            rng.below(256),
            1024 + rng.below(60000),
            tg,
            rng.below(256),
            if no_response { "-".to_owned() } else { status.to_string() },
            200 + rng.below(800),
            300 + rng.below(50_000),
            rng.next() as u128 & 0xffff_ffff_ffff_ffff_ffff_ffff,
            tg,
            rng.below(256),
            rng.next(),
        )
        .expect("write");
    }
    out.flush().expect("flush");
}

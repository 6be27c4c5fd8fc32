//! The processor's configuration, from the environment.

use std::time::Duration;

use shared::config::{ConfigError, Env};
use shared::s3uri::S3Uri;

use crate::formats::Format;

pub const DEFAULT_NAMESPACE: &str = "LambdaAutoscaler/Logs";
pub const DEFAULT_MAX_LINE_BYTES: usize = 1024 * 1024;

/// Per-object limits on what hostile content can cost (README, "Hostile input"). What a
/// limit stops is counted in the summary's `capped`, never dropped silently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    /// `MAX_DIMENSION_VALUES`: distinct values per dimension per object; later values are
    /// counted under `other`. 200 covers a load balancer's target groups (AWS allows 100)
    /// and an account's CloudTrail event sources, and bounds custom metrics.
    pub dimension_values: usize,
    /// `MAX_DATUMS_PER_OBJECT`: datums an object may create (each metric of each minute and
    /// dimension set; a distribution by the datums its value range can take). 10,000 is
    /// 10 minutes of 100 target groups, 10 PutMetricData requests.
    pub datums: usize,
    /// `MAX_OBJECT_BYTES`: decompressed bytes read from one object; reading stops there.
    /// 8 GiB, over ten times AWS's largest load balancer log files.
    pub object_bytes: u64,
    /// `MAX_DECOMPRESSION_RATIO`: decompressed over compressed bytes, judged past the first
    /// 64 MiB; reading stops there. Real logs compress 5 to 25 times: more is a bomb.
    pub decompression_ratio: u64,
}

impl Default for Caps {
    fn default() -> Self {
        Self { dimension_values: 200, datums: 10_000, object_bytes: 8 << 30, decompression_ratio: 100 }
    }
}

impl Caps {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let positive = |name: &str, value: u64| match value {
            0 => Err(invalid(name, "0", "must be at least 1")),
            n => Ok(n),
        };
        Ok(Self {
            dimension_values: positive(
                "MAX_DIMENSION_VALUES",
                env.parse_or("MAX_DIMENSION_VALUES", defaults.dimension_values as u64)?,
            )? as usize,
            datums: positive(
                "MAX_DATUMS_PER_OBJECT",
                env.parse_or("MAX_DATUMS_PER_OBJECT", defaults.datums as u64)?,
            )? as usize,
            object_bytes: positive(
                "MAX_OBJECT_BYTES",
                env.parse_or("MAX_OBJECT_BYTES", defaults.object_bytes)?,
            )?,
            decompression_ratio: positive(
                "MAX_DECOMPRESSION_RATIO",
                env.parse_or("MAX_DECOMPRESSION_RATIO", defaults.decompression_ratio)?,
            )?,
        })
    }
}

/// How metrics reach CloudWatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsMode {
    /// PutMetricData (distributions exact, as Values/Counts).
    Api,
    /// Embedded Metric Format records on stdout (no API calls; see `emf`).
    Emf,
}

#[derive(Clone, Debug)]
pub struct ProcessorConfig {
    /// `METRICS_NAMESPACE`: where the metrics are published.
    pub namespace: String,
    /// `METRICS_MODE`: `api` (default) or `emf`.
    pub metrics_mode: MetricsMode,
    /// `MAX_LINE_BYTES`: longer lines (and CloudTrail events) are counted as malformed and
    /// skipped.
    pub max_line_bytes: usize,
    /// `MAX_DIMENSION_VALUES`, `MAX_DATUMS_PER_OBJECT`, `MAX_OBJECT_BYTES`,
    /// `MAX_DECOMPRESSION_RATIO`.
    pub caps: Caps,
    /// `STATE_URI` (`s3://bucket/prefix`): idempotency markers, so that a redelivered event
    /// publishes nothing twice. Objects under it are never processed (recursion guard).
    pub state: Option<S3Uri>,
    /// `OUTPUT_URI` (`s3://bucket/prefix`): the parsed records, normalized, as gzip NDJSON
    /// (off when unset). Objects under it are never processed (recursion guard).
    pub output: Option<S3Uri>,
    /// `LOG_FORMATS`: `prefix=format,...` (e.g. `cdn/=cloudfront`), overriding detection
    /// for keys under a prefix; the longest matching prefix wins.
    pub formats: Vec<(String, Format)>,
    /// `VPC_INTERFACE_DIMENSION=true`: VPC flow metrics per `InterfaceId` too.
    pub vpc_interface_dimension: bool,
    /// `ROUTES` (`pattern=name,...`) and `ROUTES_MAX`: per-route metrics (see `routes`).
    pub routes: crate::routes::Routes,
    /// `IDEMPOTENCY_TAKEOVER_SECONDS` (default 900, Lambda's longest timeout): an
    /// in-progress marker older than this was left by a dead invocation and is taken over.
    pub takeover_after: Duration,
    /// `DEADLINE_MARGIN_SECONDS` (default 5): reading stops this long before the deadline,
    /// leaving time to record the failure.
    pub deadline_margin: Duration,
    /// `S3_FORCE_PATH_STYLE=true` for S3-compatible endpoints without virtual-host DNS.
    pub s3_force_path_style: bool,
    /// `AWS_LAMBDA_FUNCTION_NAME` (set by Lambda): the processor's own metrics
    /// (`AmbiguousPublishes`) go to stdout as EMF with this `FunctionName`; off elsewhere,
    /// where stdout is the CLI's output.
    pub function_name: Option<String>,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        Self {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            metrics_mode: MetricsMode::Api,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            caps: Caps::default(),
            state: None,
            output: None,
            formats: Vec::new(),
            vpc_interface_dimension: false,
            routes: crate::routes::Routes::default(),
            takeover_after: Duration::from_secs(900),
            deadline_margin: Duration::from_secs(5),
            s3_force_path_style: false,
            function_name: None,
        }
    }
}

fn invalid(name: &str, value: &str, message: impl Into<String>) -> ConfigError {
    ConfigError { name: name.into(), value: value.into(), message: message.into() }
}

/// `prefix=format,...`.
pub fn parse_formats(value: &str) -> Result<Vec<(String, Format)>, ConfigError> {
    value
        .split(',')
        .filter(|entry| !entry.trim().is_empty())
        .map(|entry| {
            let (prefix, format) = entry
                .split_once('=')
                .ok_or_else(|| invalid("LOG_FORMATS", value, format!("{entry:?} is not prefix=format")))?;
            let format = format
                .trim()
                .parse()
                .map_err(|e: crate::formats::UnknownFormat| invalid("LOG_FORMATS", value, e.to_string()))?;
            Ok((prefix.trim().to_owned(), format))
        })
        .collect()
}

impl ProcessorConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let state = env
            .string("STATE_URI")
            .map(|uri| {
                uri.parse().map_err(|e: shared::s3uri::S3UriError| invalid("STATE_URI", &uri, e.to_string()))
            })
            .transpose()?;
        let output = env
            .string("OUTPUT_URI")
            .map(|uri| {
                uri.parse().map_err(|e: shared::s3uri::S3UriError| invalid("OUTPUT_URI", &uri, e.to_string()))
            })
            .transpose()?;
        let metrics_mode = match env.string_or("METRICS_MODE", "api").as_str() {
            "api" => MetricsMode::Api,
            "emf" => MetricsMode::Emf,
            other => return Err(invalid("METRICS_MODE", other, "must be api or emf")),
        };
        let config = Self {
            namespace: env.string_or("METRICS_NAMESPACE", DEFAULT_NAMESPACE),
            metrics_mode,
            max_line_bytes: env.parse_or("MAX_LINE_BYTES", DEFAULT_MAX_LINE_BYTES)?,
            caps: Caps::from_env(env)?,
            state,
            output,
            formats: env.string("LOG_FORMATS").map(|v| parse_formats(&v)).transpose()?.unwrap_or_default(),
            vpc_interface_dimension: env.bool_or("VPC_INTERFACE_DIMENSION", false)?,
            routes: crate::routes::from_env(env)?,
            takeover_after: Duration::from_secs(
                env.parse_or("IDEMPOTENCY_TAKEOVER_SECONDS", defaults.takeover_after.as_secs())?,
            ),
            deadline_margin: Duration::from_secs(
                env.parse_or("DEADLINE_MARGIN_SECONDS", defaults.deadline_margin.as_secs())?,
            ),
            s3_force_path_style: env.bool_or("S3_FORCE_PATH_STYLE", false)?,
            function_name: env.string("AWS_LAMBDA_FUNCTION_NAME"),
        };
        config.check_own_locations()?;
        Ok(config)
    }

    /// `STATE_URI` and `OUTPUT_URI`, with their variable names.
    fn own_locations(&self) -> impl Iterator<Item = (&'static str, &S3Uri)> {
        [("STATE_URI", &self.state), ("OUTPUT_URI", &self.output)]
            .into_iter()
            .filter_map(|(name, uri)| uri.as_ref().map(|uri| (name, uri)))
    }

    /// Refuses own locations that would swallow logs: nothing under them is ever processed
    /// (the recursion guard), so a whole bucket, or a prefix that `LOG_FORMATS` names as
    /// holding logs, would have the processor drop logs silently.
    fn check_own_locations(&self) -> Result<(), ConfigError> {
        for (name, uri) in self.own_locations() {
            let prefix = uri.key.trim_end_matches('/');
            if prefix.is_empty() {
                return Err(invalid(
                    name,
                    &uri.to_string(),
                    format!(
                        "names the whole bucket {}: nothing under it is ever processed, so every log \
                         there would be dropped; give it a prefix of its own, e.g. s3://{}/log-processor",
                        uri.bucket, uri.bucket
                    ),
                ));
            }
            if let Some((logs, _)) = self.formats.iter().find(|(p, _)| under(p.trim_end_matches('/'), prefix))
            {
                return Err(invalid(
                    name,
                    &uri.to_string(),
                    format!(
                        "covers LOG_FORMATS' log prefix {logs:?}: nothing under it is ever processed, \
                         so those logs would be dropped; move it out of the logs' way"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The format configured for a key's prefix, if any.
    pub fn format_for(&self, key: &str) -> Option<Format> {
        self.formats
            .iter()
            .filter(|(p, _)| key.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len())
            .map(|(_, f)| *f)
    }

    /// Objects the processor itself writes, which must never trigger it (recursion guard):
    /// those under `STATE_URI`'s or `OUTPUT_URI`'s prefix, in whole path segments
    /// (`state/x` is under `state`, `state-archive/x` is not).
    pub fn is_own_object(&self, bucket: &str, key: &str) -> bool {
        self.own_locations().any(|(_, s)| s.bucket == bucket && under(key, s.key.trim_end_matches('/')))
    }
}

/// Whether `key` is `prefix` or lies below it, comparing whole `/`-separated segments; an
/// empty prefix is the whole bucket.
fn under(key: &str, prefix: &str) -> bool {
    prefix.is_empty() || key == prefix || key.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_prefix_formats() {
        let config = ProcessorConfig {
            formats: parse_formats("cdn/=cloudfront, cdn/eu/=s3").unwrap(),
            ..Default::default()
        };
        assert_eq!(config.format_for("cdn/x.gz"), Some(Format::CloudFront));
        assert_eq!(config.format_for("cdn/eu/x.gz"), Some(Format::S3));
        assert_eq!(config.format_for("other"), None);
        let error = parse_formats("cdn/=apache").unwrap_err();
        assert_eq!(error.name, "LOG_FORMATS");
        assert!(error.message.contains("unknown log format \"apache\""), "{}", error.message);
        assert!(parse_formats("cdn").is_err());
        let env = Env::from_pairs([("METRICS_MODE", "emf")]);
        assert_eq!(ProcessorConfig::from_env(&env).unwrap().metrics_mode, MetricsMode::Emf);
        let error = ProcessorConfig::from_env(&Env::from_pairs([("METRICS_MODE", "statsd")])).unwrap_err();
        assert_eq!(error.name, "METRICS_MODE");
    }

    #[test]
    fn caps_from_the_environment_with_safe_defaults() {
        let defaults = Caps::from_env(&Env::from_pairs([])).unwrap();
        assert_eq!(defaults, Caps::default());
        assert_eq!((defaults.dimension_values, defaults.datums), (200, 10_000));
        let env = Env::from_pairs([
            ("MAX_DIMENSION_VALUES", "5"),
            ("MAX_DATUMS_PER_OBJECT", "100"),
            ("MAX_OBJECT_BYTES", "1000000"),
            ("MAX_DECOMPRESSION_RATIO", "20"),
        ]);
        let caps = ProcessorConfig::from_env(&env).unwrap().caps;
        assert_eq!(
            caps,
            Caps { dimension_values: 5, datums: 100, object_bytes: 1_000_000, decompression_ratio: 20 }
        );
        for (name, value) in [("MAX_DIMENSION_VALUES", "0"), ("MAX_DATUMS_PER_OBJECT", "many")] {
            let error = ProcessorConfig::from_env(&Env::from_pairs([(name, value)])).unwrap_err();
            assert_eq!(error.name, name);
        }
    }

    #[test]
    fn the_state_and_output_prefixes_are_never_processed() {
        let config = ProcessorConfig {
            state: Some("s3://logs/processor-state".parse().unwrap()),
            output: Some("s3://logs/normalized".parse().unwrap()),
            ..Default::default()
        };
        assert!(config.is_own_object("logs", "normalized/alb/dt=2026-11-30/x.ndjson.gz"));
        assert!(config.is_own_object("logs", "processor-state/markers/x.json"));
        assert!(!config.is_own_object("logs", "AWSLogs/x.gz"));
        assert!(!config.is_own_object("other", "processor-state/x"));
    }

    #[test]
    fn the_guard_compares_whole_path_segments() {
        let config = ProcessorConfig {
            state: Some("s3://logs/processor-state/".parse().unwrap()),
            output: Some("s3://logs/out/normalized".parse().unwrap()),
            ..Default::default()
        };
        for own in
            ["processor-state", "processor-state/", "processor-state/markers/a.json", "out/normalized/x"]
        {
            assert!(config.is_own_object("logs", own), "{own}");
        }
        for logs in [
            "processor-state-archive/x.log.gz",
            "processor-statex",
            "processor",
            "out/normalized-old/x.gz",
            "out/x.gz",
            "AWSLogs/processor-state/x.gz",
        ] {
            assert!(!config.is_own_object("logs", logs), "{logs}");
        }
    }

    #[test]
    fn own_locations_that_would_swallow_logs_are_refused_at_start() {
        for (name, uri) in
            [("STATE_URI", "s3://logs"), ("STATE_URI", "s3://logs/"), ("OUTPUT_URI", "s3://logs//")]
        {
            let error = ProcessorConfig::from_env(&Env::from_pairs([(name, uri)])).unwrap_err();
            assert_eq!(error.name, name);
            assert!(error.message.contains("names the whole bucket logs"), "{}", error.message);
        }
        for (name, uri) in [("STATE_URI", "s3://logs/AWSLogs"), ("OUTPUT_URI", "s3://logs/cdn/")] {
            let env = Env::from_pairs([(name, uri), ("LOG_FORMATS", "AWSLogs/123/=alb,cdn/=cloudfront")]);
            let error = ProcessorConfig::from_env(&env).unwrap_err();
            assert_eq!(error.name, name);
            assert!(error.message.contains("covers LOG_FORMATS' log prefix"), "{}", error.message);
        }
        // Beside the logs, or above them only in the characters of a name: accepted.
        let env = Env::from_pairs([
            ("STATE_URI", "s3://logs/processor-state"),
            ("OUTPUT_URI", "s3://logs/cdn-normalized"),
            ("LOG_FORMATS", "processor-state-archive/=alb,cdn/=cloudfront"),
        ]);
        let config = ProcessorConfig::from_env(&env).unwrap();
        assert!(!config.is_own_object("logs", "processor-state-archive/x.log.gz"));
    }
}

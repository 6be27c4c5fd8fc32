//! The poller's configuration, from the environment.

use std::time::Duration;

use shared::config::{ConfigError, Env};
use shared::s3uri::S3Uri;

use crate::policy_source::PolicyLocation;

#[derive(Clone, Debug)]
pub struct PollerConfig {
    /// `POLICY_URI`: `s3://bucket/key` or a local path (JSON, or TOML by extension).
    pub policy: Option<PolicyLocation>,
    /// `STATE_URI`: `s3://bucket/prefix` for history and the lease; without it, memory.
    pub state: Option<S3Uri>,
    /// `TICK_INTERVAL_SECONDS` (default 10): time between ticks within an invocation.
    pub tick_interval: Duration,
    /// `DEADLINE_MARGIN_SECONDS` (default 3): no tick starts closer than this to the deadline.
    pub deadline_margin: Duration,
    /// `METRICS_END_OFFSET_SECONDS` (default 0): query metrics up to this long ago, for
    /// CloudWatch's late data.
    pub metrics_end_offset: Duration,
    /// `DRY_RUN=true`: decide and report, never call SetDesiredCapacity.
    pub dry_run: bool,
    /// `EMF=true` (default on Lambda): the poller's own metrics as Embedded Metric Format on stdout.
    pub emf: bool,
    /// `EMF_NAMESPACE` (default `LambdaAutoscaler/Poller`).
    pub emf_namespace: String,
    /// `AWS_LAMBDA_FUNCTION_NAME` (set by Lambda): the `FunctionName` dimension of the
    /// per-invocation EMF metrics (`Ticks`, `SkippedTicks`).
    pub function_name: String,
    /// `S3_FORCE_PATH_STYLE=true` for S3-compatible endpoints without virtual-host DNS.
    pub s3_force_path_style: bool,
}

impl Default for PollerConfig {
    fn default() -> Self {
        Self {
            policy: None,
            state: None,
            tick_interval: Duration::from_secs(10),
            deadline_margin: Duration::from_secs(3),
            metrics_end_offset: Duration::ZERO,
            dry_run: false,
            emf: false,
            emf_namespace: "LambdaAutoscaler/Poller".to_owned(),
            function_name: "metric-poller".to_owned(),
            s3_force_path_style: false,
        }
    }
}

fn invalid(name: &str, value: &str, message: impl Into<String>) -> ConfigError {
    ConfigError { name: name.into(), value: value.into(), message: message.into() }
}

impl PollerConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let policy = env
            .string("POLICY_URI")
            .map(|uri| PolicyLocation::parse(&uri).map_err(|e| invalid("POLICY_URI", &uri, e.to_string())))
            .transpose()?;
        let state = env
            .string("STATE_URI")
            .map(|uri| uri.parse::<S3Uri>().map_err(|e| invalid("STATE_URI", &uri, e.to_string())))
            .transpose()?;
        let tick_interval: u64 = env.parse_or("TICK_INTERVAL_SECONDS", 10)?;
        if tick_interval == 0 {
            return Err(invalid("TICK_INTERVAL_SECONDS", "0", "must be at least 1"));
        }
        Ok(Self {
            policy,
            state,
            tick_interval: Duration::from_secs(tick_interval),
            deadline_margin: Duration::from_secs(env.parse_or("DEADLINE_MARGIN_SECONDS", 3)?),
            metrics_end_offset: Duration::from_secs(env.parse_or("METRICS_END_OFFSET_SECONDS", 0)?),
            dry_run: env.bool_or("DRY_RUN", false)?,
            emf: env.bool_or("EMF", env.string("AWS_LAMBDA_FUNCTION_NAME").is_some())?,
            emf_namespace: env.string_or("EMF_NAMESPACE", "LambdaAutoscaler/Poller"),
            function_name: env.string_or("AWS_LAMBDA_FUNCTION_NAME", "metric-poller"),
            s3_force_path_style: env.bool_or("S3_FORCE_PATH_STYLE", false)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The retries of one tick's calls, one after another (lease, policy, listing, metrics,
    /// intent, SetDesiredCapacity, state), at their longest, fit in the default interval: a
    /// faulted tick does not overrun into the next one. (Measured against the fault proxy,
    /// adaptive mode held one request back 18 s after a single throttle.)
    #[test]
    fn a_faulted_tick_waits_less_for_retries_than_its_interval() {
        use aws_smithy_types::retry::RetryMode;
        assert_eq!(crate::RETRY.retry_config().mode(), RetryMode::Standard);
        let worst = crate::RETRY.worst_case_wait() * 7;
        assert!(worst < PollerConfig::default().tick_interval, "{worst:?}");
        assert_eq!(crate::RETRY.worst_case_wait(), Duration::from_millis(100 + 200 + 400));
    }

    #[test]
    fn reads_and_validates_the_environment() {
        let env = Env::from_pairs([
            ("POLICY_URI", "s3://cfg/policy.json"),
            ("STATE_URI", "s3://state/poller"),
            ("TICK_INTERVAL_SECONDS", "5"),
            ("AWS_LAMBDA_FUNCTION_NAME", "poller"),
            ("METRICS_END_OFFSET_SECONDS", "120"),
        ]);
        let config = PollerConfig::from_env(&env).unwrap();
        assert_eq!(config.metrics_end_offset, Duration::from_secs(120));
        assert!(matches!(config.policy, Some(PolicyLocation::S3(_))));
        assert_eq!(config.state.unwrap().key, "poller");
        assert_eq!(config.tick_interval, Duration::from_secs(5));
        assert!(config.emf, "on by default on Lambda");
        assert_eq!(config.function_name, "poller");
        let local = PollerConfig::from_env(&Env::from_pairs([("POLICY_URI", "policy.toml")])).unwrap();
        assert_eq!(local.policy, Some(PolicyLocation::Local("policy.toml".into())));
        assert!(!local.emf);
        let err = PollerConfig::from_env(&Env::from_pairs([("STATE_URI", "bucket/prefix")])).unwrap_err();
        assert_eq!(err.name, "STATE_URI");
        assert!(PollerConfig::from_env(&Env::from_pairs([("TICK_INTERVAL_SECONDS", "0")])).is_err());
    }
}

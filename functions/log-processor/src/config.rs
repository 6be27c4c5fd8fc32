//! The processor's configuration, from the environment.

use shared::config::{ConfigError, Env};

pub const DEFAULT_NAMESPACE: &str = "LambdaAutoscaler/Logs";
pub const DEFAULT_MAX_LINE_BYTES: usize = 1024 * 1024;

#[derive(Clone, Debug)]
pub struct ProcessorConfig {
    /// `METRICS_NAMESPACE`: where the metrics are published.
    pub namespace: String,
    /// `MAX_LINE_BYTES`: longer lines are counted as malformed and skipped.
    pub max_line_bytes: usize,
    /// `S3_FORCE_PATH_STYLE=true` for S3-compatible endpoints without virtual-host DNS.
    pub s3_force_path_style: bool,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        Self {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            s3_force_path_style: false,
        }
    }
}

impl ProcessorConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            namespace: env.string_or("METRICS_NAMESPACE", DEFAULT_NAMESPACE),
            max_line_bytes: env.parse_or("MAX_LINE_BYTES", DEFAULT_MAX_LINE_BYTES)?,
            s3_force_path_style: env.bool_or("S3_FORCE_PATH_STYLE", false)?,
        })
    }
}

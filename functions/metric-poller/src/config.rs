//! The poller's configuration, from the environment.

use shared::config::{ConfigError, Env};

#[derive(Clone, Debug, Default)]
pub struct PollerConfig {
    /// `DRY_RUN=true`: decide and report, never call SetDesiredCapacity.
    pub dry_run: bool,
    /// `S3_FORCE_PATH_STYLE=true` for S3-compatible endpoints without virtual-host DNS.
    pub s3_force_path_style: bool,
}

impl PollerConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            dry_run: env.bool_or("DRY_RUN", false)?,
            s3_force_path_style: env.bool_or("S3_FORCE_PATH_STYLE", false)?,
        })
    }
}

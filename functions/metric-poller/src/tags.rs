//! The group tags that are safety interlocks, whatever the policy says.

/// A group is changed only if it carries this tag with the value `true` (the IAM policy
/// in infra/ grants SetDesiredCapacity on the same condition).
pub const ENABLED_TAG: &str = "lambda-autoscaler:enabled";

/// A group carrying this tag with the value `true` is observed and logged, never changed.
pub const PAUSED_TAG: &str = "lambda-autoscaler:paused";

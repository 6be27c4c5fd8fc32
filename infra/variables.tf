variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "lambda-autoscaler"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,39}$", var.name_prefix))
    error_message = "name_prefix must be 1-40 lowercase letters, digits or hyphens."
  }
}

variable "log_bucket_name" {
  description = "Name of the S3 bucket created to receive access logs (ALB, CloudFront, S3, VPC flow logs)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.log_bucket_name))
    error_message = "log_bucket_name must be a valid S3 bucket name."
  }
}

variable "log_prefix" {
  description = "Only objects whose key starts with this prefix are processed (e.g. \"AWSLogs/\")."
  type        = string
  default     = "AWSLogs/"
}

variable "log_suffix" {
  description = "Only objects whose key ends with this suffix are processed (e.g. \".log.gz\")."
  type        = string
  default     = ".gz"
}

variable "state_bucket_name" {
  description = "Name of the S3 bucket created for the poller's policy document, state and lease."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.state_bucket_name))
    error_message = "state_bucket_name must be a valid S3 bucket name."
  }
}

variable "policy" {
  description = "The scaling policy document, written in HCL (an object with a groups list; see README, Scaling policies). Terraform writes it as JSON to the state bucket; the poller re-reads it within a tick of a change."
  type        = any

  validation {
    condition     = can(length(var.policy.groups)) && length(var.policy.groups) > 0
    error_message = "policy must be an object with a non-empty groups list."
  }
}

variable "tick_interval_seconds" {
  description = "Seconds between the poller's evaluations within one invocation."
  type        = number
  default     = 10

  validation {
    condition     = var.tick_interval_seconds >= 1 && var.tick_interval_seconds <= 60
    error_message = "tick_interval_seconds must be between 1 and 60."
  }
}

variable "poller_reserved_concurrency" {
  description = "Reserved concurrency of the poller (1: overlapping invocations are throttled; the S3 lease guards them anyway)."
  type        = number
  default     = 1
}

variable "metrics_namespace" {
  description = "CloudWatch namespace the log processor publishes to."
  type        = string
  default     = "LambdaAutoscaler/Logs"
}

variable "dry_run" {
  description = "When true the poller decides and logs but never changes a group."
  type        = bool
  default     = false
}

variable "poller_timeout_seconds" {
  description = "Timeout of the metric-poller function."
  type        = number
  default     = 60

  validation {
    condition     = var.poller_timeout_seconds >= 10 && var.poller_timeout_seconds <= 900
    error_message = "poller_timeout_seconds must be between 10 and 900."
  }
}

variable "processor_timeout_seconds" {
  description = "Timeout of the log-processor function."
  type        = number
  default     = 300

  validation {
    condition     = var.processor_timeout_seconds >= 10 && var.processor_timeout_seconds <= 900
    error_message = "processor_timeout_seconds must be between 10 and 900."
  }
}

variable "log_retention_days" {
  description = "Retention of the functions' CloudWatch log groups."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = { project = "lambda-autoscaler" }
}

variable "marker_retention_days" {
  description = "Days the log processor's idempotency markers are kept (S3 redelivers events within hours)."
  type        = number
  default     = 7

  validation {
    condition     = var.marker_retention_days >= 1
    error_message = "marker_retention_days must be at least 1."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "lambda-autoscaler"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,29}$", var.name_prefix))
    error_message = "name_prefix must be 1-30 lowercase letters, digits or hyphens."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = { project = "lambda-autoscaler" }
}

variable "state_bucket_name" {
  description = "Name of the S3 bucket created for the policy documents, the pollers' state and leases, and the log processor's idempotency markers."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.state_bucket_name))
    error_message = "state_bucket_name must be a valid S3 bucket name."
  }
}

variable "pollers" {
  description = "One metric-poller per entry (shard by giving each its own groups or tag selectors): its scaling policy in HCL (README, Scaling policies, has every field), written as JSON to the state bucket and re-read within a tick of a change; and its settings."
  type = map(object({
    policy                = any
    tick_interval_seconds = optional(number, 10)
    dry_run               = optional(bool, false)
    timeout_seconds       = optional(number, 60)
    memory_mb             = optional(number, 128)
    reserved_concurrency  = optional(number, 1)
  }))

  validation {
    condition     = length(var.pollers) > 0 && alltrue([for k, _ in var.pollers : can(regex("^[a-z0-9][a-z0-9-]{0,15}$", k))])
    error_message = "pollers needs at least one entry, each keyed by 1-16 lowercase letters, digits or hyphens."
  }

  validation {
    condition     = alltrue([for p in values(var.pollers) : can(length(p.policy.groups)) && try(length(p.policy.groups), 0) > 0])
    error_message = "each poller's policy must be an object with a non-empty groups list."
  }

  validation {
    condition     = alltrue([for p in values(var.pollers) : p.tick_interval_seconds >= 1 && p.tick_interval_seconds <= 60])
    error_message = "tick_interval_seconds must be between 1 and 60."
  }

  validation {
    condition     = alltrue([for p in values(var.pollers) : p.timeout_seconds >= 10 && p.timeout_seconds <= 900 && p.timeout_seconds > p.tick_interval_seconds])
    error_message = "a poller's timeout_seconds must be between 10 and 900 and longer than its tick interval."
  }
}

variable "create_log_bucket" {
  description = "Create the log bucket (true), or use an existing one named log_bucket_name (false; its notification configuration is then replaced by this one, so the bucket must have no other notifications)."
  type        = bool
  default     = true
}

variable "log_bucket_name" {
  description = "The bucket receiving access logs (ALB, ELB, CloudFront, S3, VPC flow logs, CloudTrail)."
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

  # The processor never reads under its state prefix (log-processor, main.tf's
  # processor_prefix; its recursion guard), so logs there would be dropped. A condition
  # naming other variables needs Terraform 1.9.
  validation {
    condition     = var.state_bucket_name != var.log_bucket_name || !(trimsuffix(var.log_prefix, "/") == "log-processor" || startswith(var.log_prefix, "log-processor/"))
    error_message = "log_prefix must not lie under log-processor/ when the log bucket is the state bucket: the processor keeps its markers there and never reads anything under it."
  }
}

variable "log_suffix" {
  description = "Only objects whose key ends with this suffix are processed (\"\" for all; e.g. \".gz\")."
  type        = string
  default     = ""
}

variable "log_formats" {
  description = "LOG_FORMATS for the processor: prefix=format pairs naming the format of keys under a prefix (detection decides elsewhere), e.g. \"cdn/=cloudfront\"."
  type        = string
  default     = ""

  validation {
    condition     = var.log_formats == "" || alltrue([for pair in split(",", var.log_formats) : can(regex("^[^=]*=(alb|elb|nlb|cloudfront|s3|vpcflow|cloudtrail|jsonl)$", trimspace(pair)))])
    error_message = "log_formats must be prefix=format pairs separated by commas; formats: alb, elb, nlb, cloudfront, s3, vpcflow, cloudtrail, jsonl."
  }
}

variable "output_uri" {
  description = "OUTPUT_URI for the processor: s3://bucket/prefix receiving the parsed records as gzip NDJSON (<prefix>/<format>/dt=YYYY-MM-DD/...); null for none. Never under log_prefix of the log bucket."
  type        = string
  default     = null

  validation {
    condition     = var.output_uri == null || can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", var.output_uri))
    error_message = "output_uri must look like s3://bucket/prefix."
  }

  # Nothing under the output prefix is ever processed (the recursion guard): a whole
  # bucket, or a prefix covering log_prefix in the log bucket, would have logs dropped.
  validation {
    condition = var.output_uri == null || try(alltrue([
      for o in [regex("^s3://([^/]+)/?(.*)$", var.output_uri)] : trimsuffix(o[1], "/") != "" && (
        o[0] != var.log_bucket_name || !(trimsuffix(var.log_prefix, "/") == trimsuffix(o[1], "/") || startswith(var.log_prefix, "${trimsuffix(o[1], "/")}/"))
      )
    ]), false)
    error_message = "output_uri needs a prefix of its own (s3://bucket/prefix), and in the log bucket one that does not cover log_prefix: nothing under it is ever processed."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace the log processor publishes to (its role may publish nowhere else)."
  type        = string
  default     = "LambdaAutoscaler/Logs"

  validation {
    condition     = length(var.metrics_namespace) > 0 && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be non-empty and not start with AWS/ (reserved)."
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

variable "processor_memory_mb" {
  description = "Memory of the log-processor function (it streams: more memory buys CPU, not capacity)."
  type        = number
  default     = 256

  validation {
    condition     = var.processor_memory_mb >= 128 && var.processor_memory_mb <= 10240
    error_message = "processor_memory_mb must be between 128 and 10240."
  }
}

variable "processor_reserved_concurrency" {
  description = "Reserved concurrency of the log processor (-1: none)."
  type        = number
  default     = -1

  validation {
    condition     = var.processor_reserved_concurrency >= -1
    error_message = "processor_reserved_concurrency must be -1 or more."
  }
}

variable "processor_max_retry_attempts" {
  description = "Retries of a failed asynchronous (S3) invocation before it goes to the on-failure queue."
  type        = number
  default     = 2

  validation {
    condition     = var.processor_max_retry_attempts >= 0 && var.processor_max_retry_attempts <= 2
    error_message = "processor_max_retry_attempts must be 0, 1 or 2."
  }
}

variable "processor_max_event_age_seconds" {
  description = "How long an S3 event may wait for a successful invocation before it goes to the on-failure queue."
  type        = number
  default     = 3600

  validation {
    condition     = var.processor_max_event_age_seconds >= 60 && var.processor_max_event_age_seconds <= 21600
    error_message = "processor_max_event_age_seconds must be between 60 and 21600."
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

variable "marker_retention_days" {
  description = "Days the log processor's idempotency markers are kept (S3 redelivers events within hours)."
  type        = number
  default     = 7

  validation {
    condition     = var.marker_retention_days >= 1
    error_message = "marker_retention_days must be at least 1."
  }
}

variable "alarm_topic_arn" {
  description = "SNS topic notified when an alarm fires or clears (errors, throttles, missed ticks, failed log events); null for none."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:", var.alarm_topic_arn))
    error_message = "alarm_topic_arn must be an SNS topic ARN."
  }
}

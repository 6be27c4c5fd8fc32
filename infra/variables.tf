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
  description = "One metric-poller per entry (shard a fleet by giving each its own groups or tag selectors). Each entry: policy (required; the scaling policy in HCL, README \"Scaling policies\" has every field; written as JSON to the state bucket and re-read within a tick of a change), and optionally tick_interval_seconds (10), dry_run (false), timeout_seconds (60), memory_mb (128), reserved_concurrency (1)."
  # `any`, not map(object(...)): each poller's policy has its own shape (groups by name or
  # by tags, target tracking or step scaling, with or without behavior), and a map's
  # elements must share one type. The validations below and local.pollers take its place.
  type = any

  validation {
    condition     = can(keys(var.pollers)) && try(length(keys(var.pollers)) > 0, false) && alltrue([for k in try(keys(var.pollers), []) : can(regex("^[a-z0-9][a-z0-9-]{0,15}$", k))])
    error_message = "pollers must be a map with at least one entry, each keyed by 1-16 lowercase letters, digits or hyphens."
  }

  validation {
    condition     = try(alltrue([for k, p in var.pollers : length(setsubtract(keys(p), ["policy", "tick_interval_seconds", "dry_run", "timeout_seconds", "memory_mb", "reserved_concurrency"])) == 0]), false)
    error_message = "each poller takes only policy, tick_interval_seconds, dry_run, timeout_seconds, memory_mb and reserved_concurrency."
  }

  validation {
    condition     = try(alltrue([for k, p in var.pollers : try(length(p.policy.groups) > 0, false)]), false)
    error_message = "each poller needs a policy with a non-empty groups list."
  }

  validation {
    condition     = try(alltrue(flatten([for k, p in var.pollers : [for g in try(p.policy.groups, []) : can(g.name) != can(g.tags) && can(g.metrics)]])), false)
    error_message = "each policy group selects its Auto Scaling groups by exactly one of name or tags, and has metrics."
  }

  validation {
    condition     = try(alltrue([for k, p in var.pollers : try(tonumber(try(p.tick_interval_seconds, 10)) >= 1 && tonumber(try(p.tick_interval_seconds, 10)) <= 60, false)]), false)
    error_message = "tick_interval_seconds must be a number between 1 and 60."
  }

  validation {
    condition     = try(alltrue([for k, p in var.pollers : try(tonumber(try(p.timeout_seconds, 60)) >= 10 && tonumber(try(p.timeout_seconds, 60)) <= 900 && tonumber(try(p.timeout_seconds, 60)) > tonumber(try(p.tick_interval_seconds, 10)), false)]), false)
    error_message = "a poller's timeout_seconds must be a number between 10 and 900 and longer than its tick interval."
  }

  validation {
    condition     = try(alltrue([for k, p in var.pollers : can(tobool(try(p.dry_run, false))) && try(tonumber(try(p.memory_mb, 128)) >= 128 && tonumber(try(p.memory_mb, 128)) <= 10240, false) && try(tonumber(try(p.reserved_concurrency, 1)) >= -1, false)]), false)
    error_message = "dry_run must be a bool, memory_mb between 128 and 10240, reserved_concurrency -1 (none) or more."
  }
}

variable "create_log_bucket" {
  description = "Create the log bucket (true), or use an existing one named log_bucket_name (false)."
  type        = bool
  default     = true
}

variable "notification_mode" {
  description = "How new log objects reach the processor: \"s3\" (the bucket's own notification configuration, which Terraform then owns whole) or \"eventbridge\" (an EventBridge rule on S3's Object Created events, which leaves the bucket's notifications as they are; an existing bucket must have EventBridge notifications turned on). Default: s3 for a bucket created here, eventbridge for an existing one."
  type        = string
  default     = null

  validation {
    condition     = var.notification_mode == null || contains(["s3", "eventbridge"], coalesce(var.notification_mode, "s3"))
    error_message = "notification_mode must be \"s3\" or \"eventbridge\"."
  }
}

variable "force_destroy_buckets" {
  description = "Let `make destroy` delete the state bucket (versioned: policies, the pollers' state, the processor's markers) and a log bucket created here together with every object in them. Off by default: `make destroy` then stops before deleting anything."
  type        = bool
  default     = false
}

variable "lambda_zip_dir" {
  description = "Directory holding <function>/bootstrap.zip as `make build` writes them; null for target/lambda of this checkout."
  type        = string
  default     = null
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
  description = "Only objects whose key starts with this prefix are processed; null (the default) for AWSLogs/<this account>/, where AWS delivers this account's logs. Whoever may write under it decides capacity."
  type        = string
  default     = null

  # The processor never reads under its state prefix (log-processor, main.tf's
  # processor_prefix; its recursion guard), so logs there would be dropped. A condition
  # naming other variables needs Terraform 1.9.
  validation {
    condition     = var.state_bucket_name != var.log_bucket_name || !(trimsuffix(coalesce(var.log_prefix, "AWSLogs/"), "/") == "log-processor" || startswith(coalesce(var.log_prefix, "AWSLogs/"), "log-processor/"))
    error_message = "log_prefix must not lie under log-processor/ when the log bucket is the state bucket: the processor keeps its markers there and never reads anything under it."
  }

  # Nor may it cover the stack's own objects there: every state, lease and marker write
  # would invoke the processor, and the pollers' objects would be read as logs.
  validation {
    condition     = var.state_bucket_name != var.log_bucket_name || alltrue([for own in ["log-processor/", "poller/", "policy/"] : !startswith(own, coalesce(var.log_prefix, "AWSLogs/"))])
    error_message = "log_prefix must not cover log-processor/, poller/ or policy/ when the log bucket is the state bucket: each state, lease and marker write there would invoke the processor."
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
        o[0] != var.log_bucket_name || !(trimsuffix(coalesce(var.log_prefix, "AWSLogs/"), "/") == trimsuffix(o[1], "/") || startswith(coalesce(var.log_prefix, "AWSLogs/"), "${trimsuffix(o[1], "/")}/"))
      )
    ]), false)
    error_message = "output_uri needs a prefix of its own (s3://bucket/prefix), and in the log bucket one that does not cover log_prefix: nothing under it is ever processed."
  }

  # The state bucket holds the policy documents: the processor's role must not write there.
  validation {
    condition     = var.output_uri == null || try(regex("^s3://([^/]+)", var.output_uri)[0] != var.state_bucket_name, false)
    error_message = "output_uri must not be in the state bucket: the policy documents that decide capacity are kept there."
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

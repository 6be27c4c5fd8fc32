variable "name" {
  description = "Function name (also the role's and the log group's)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9-_]{1,64}$", var.name))
    error_message = "name must be 1-64 letters, digits, hyphens or underscores."
  }
}

variable "description" {
  description = "What the function does."
  type        = string
}

variable "zip_path" {
  description = "The bootstrap zip built by cargo-lambda (make build)."
  type        = string
}

variable "timeout_seconds" {
  description = "Function timeout."
  type        = number

  validation {
    condition     = var.timeout_seconds >= 1 && var.timeout_seconds <= 900
    error_message = "timeout_seconds must be between 1 and 900."
  }
}

variable "memory_mb" {
  description = "Function memory."
  type        = number

  validation {
    condition     = var.memory_mb >= 128 && var.memory_mb <= 10240
    error_message = "memory_mb must be between 128 and 10240."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions; -1 for none."
  type        = number
}

variable "environment" {
  description = "Environment variables (no secrets: they are not KMS-encrypted with a customer key)."
  type        = map(string)
}

variable "policy_json" {
  description = "The function's own IAM policy (what its code calls); log writing is added here."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the function's log group."
  type        = number
}

variable "alarm_topic_arn" {
  description = "SNS topic notified when an alarm fires or clears; null for none."
  type        = string
  default     = null
}

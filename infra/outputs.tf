output "metric_poller_function_name" {
  description = "Name of the metric-poller Lambda function."
  value       = aws_lambda_function.function["metric-poller"].function_name
}

output "log_processor_function_name" {
  description = "Name of the log-processor Lambda function."
  value       = aws_lambda_function.function["log-processor"].function_name
}

output "log_bucket" {
  description = "Bucket whose new objects under log_prefix are turned into metrics."
  value       = aws_s3_bucket.logs.bucket
}

output "metrics_namespace" {
  description = "CloudWatch namespace of the log-derived metrics."
  value       = var.metrics_namespace
}

output "policy_uri" {
  description = "Where the poller reads its policy document (written from var.policy)."
  value       = "s3://${aws_s3_bucket.state.bucket}/${local.policy_key}"
}

output "state_uri" {
  description = "Where the poller keeps its history and lease."
  value       = "s3://${aws_s3_bucket.state.bucket}/${local.state_prefix}"
}

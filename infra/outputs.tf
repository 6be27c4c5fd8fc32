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

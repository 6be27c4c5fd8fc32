output "poller_function_names" {
  description = "The metric-poller functions, by key of var.pollers."
  value       = { for k, m in module.poller : k => m.function_name }
}

output "log_processor_function_name" {
  description = "The log-processor function."
  value       = module.processor.function_name
}

output "log_bucket" {
  description = "Bucket whose new objects under log_prefix are turned into metrics."
  value       = local.log_bucket_id
}

output "metrics_namespace" {
  description = "CloudWatch namespace of the log-derived metrics."
  value       = var.metrics_namespace
}

output "policy_uris" {
  description = "Where each poller reads its policy document (written from var.pollers)."
  value       = { for k, o in aws_s3_object.policy : k => "s3://${o.bucket}/${o.key}" }
}

output "state_bucket" {
  description = "The pollers' state and leases (poller/<key>/), policies (policy/), the processor's markers (log-processor/markers/)."
  value       = aws_s3_bucket.state.bucket
}

output "processor_failure_queue_url" {
  description = "Log events the processor gave up on (inspect, fix, then redrive)."
  value       = aws_sqs_queue.processor_failures.url
}

# The log processor: invoked asynchronously by S3 for each new log object. Failed events
# (after retries, or too old) go to an encrypted SQS queue, which is alarmed on.

module "processor" {
  source = "./modules/function"

  name                 = "${var.name_prefix}-log-processor"
  description          = "lambda-autoscaler log-processor: turns access logs landing in ${var.log_bucket_name} into per-minute CloudWatch metrics."
  zip_path             = "${local.zips}/log-processor/bootstrap.zip"
  timeout_seconds      = var.processor_timeout_seconds
  memory_mb            = var.processor_memory_mb
  reserved_concurrency = var.processor_reserved_concurrency
  policy_json          = data.aws_iam_policy_document.processor.json
  log_retention_days   = var.log_retention_days
  alarm_topic_arn      = var.alarm_topic_arn

  environment = merge(
    {
      METRICS_NAMESPACE            = var.metrics_namespace
      STATE_URI                    = "s3://${aws_s3_bucket.state.bucket}/${local.processor_prefix}"
      IDEMPOTENCY_TAKEOVER_SECONDS = tostring(var.processor_timeout_seconds + 60)
    },
    var.log_formats == "" ? {} : { LOG_FORMATS = var.log_formats },
    var.output_uri == null ? {} : { OUTPUT_URI = var.output_uri },
  )
}

resource "aws_lambda_permission" "processor_bucket" {
  count = local.notification_mode == "s3" ? 1 : 0

  statement_id   = "AllowLogBucketNotifications"
  action         = "lambda:InvokeFunction"
  function_name  = module.processor.function_name
  principal      = "s3.amazonaws.com"
  source_arn     = local.log_bucket_arn
  source_account = data.aws_caller_identity.current.account_id
}

resource "aws_lambda_permission" "processor_events" {
  count = local.notification_mode == "eventbridge" ? 1 : 0

  statement_id  = "AllowLogObjectEvents"
  action        = "lambda:InvokeFunction"
  function_name = module.processor.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.log_objects[0].arn
}

resource "aws_sqs_queue" "processor_failures" {
  name                      = "${var.name_prefix}-log-processor-failures"
  message_retention_seconds = 1209600 # 14 days, the most SQS keeps: time to fix and redrive.
  sqs_managed_sse_enabled   = true
}

resource "aws_lambda_function_event_invoke_config" "processor" {
  function_name                = module.processor.function_name
  maximum_retry_attempts       = var.processor_max_retry_attempts
  maximum_event_age_in_seconds = var.processor_max_event_age_seconds

  destination_config {
    on_failure {
      destination = aws_sqs_queue.processor_failures.arn
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "processor_failures" {
  alarm_name          = "${var.name_prefix}-log-processor-failed-events"
  alarm_description   = "Log events the processor gave up on are waiting in ${aws_sqs_queue.processor_failures.name}: their metrics are missing."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.processor_failures.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# The processor's dashboard: objects processed and failed, the delay from an object's
# arrival to its metrics, records, datums, resends and failed events waiting (from its EMF).
resource "aws_cloudwatch_dashboard" "processor" {
  dashboard_name = "${var.name_prefix}-log-processor"
  dashboard_body = templatefile("${path.module}/dashboards/processor.json.tftpl", {
    region        = data.aws_region.current.name
    namespace     = "LambdaAutoscaler/LogProcessor"
    function      = module.processor.function_name
    failure_queue = aws_sqs_queue.processor_failures.name
  })
}

# One metric-poller per entry of var.pollers: its policy document, function, schedule and
# missed-tick alarm. Each keeps its state and lease under its own prefix.

# var.pollers is `any` (each policy has its own shape); here each entry gets its defaults,
# and its policy becomes the JSON document the poller reads.
locals {
  pollers = {
    for key, poller in var.pollers : key => {
      policy_json           = jsonencode(poller.policy)
      tick_interval_seconds = tonumber(try(poller.tick_interval_seconds, 10))
      dry_run               = tobool(try(poller.dry_run, false))
      timeout_seconds       = tonumber(try(poller.timeout_seconds, 60))
      memory_mb             = tonumber(try(poller.memory_mb, 128))
      reserved_concurrency  = tonumber(try(poller.reserved_concurrency, 1))
    }
  }
}

resource "aws_s3_object" "policy" {
  for_each = local.pollers

  bucket       = aws_s3_bucket.state.id
  key          = "${local.policy_prefix}/${each.key}.json"
  content      = each.value.policy_json
  content_type = "application/json"

  # Written under the bucket policy that lets the deploying principal write it (a new
  # deployer's first apply updates the policy before the documents).
  depends_on = [aws_s3_bucket_policy.state]
}

module "poller" {
  source   = "./modules/function"
  for_each = local.pollers

  name                 = "${var.name_prefix}-poller-${each.key}"
  description          = "lambda-autoscaler metric-poller ${each.key}: re-evaluates its Auto Scaling groups every ${each.value.tick_interval_seconds} s."
  zip_path             = "${local.zips}/metric-poller/bootstrap.zip"
  timeout_seconds      = each.value.timeout_seconds
  memory_mb            = each.value.memory_mb
  reserved_concurrency = each.value.reserved_concurrency
  policy_json          = data.aws_iam_policy_document.poller[each.key].json
  log_retention_days   = var.log_retention_days
  alarm_topic_arn      = var.alarm_topic_arn

  environment = {
    POLICY_URI            = "s3://${aws_s3_bucket.state.bucket}/${aws_s3_object.policy[each.key].key}"
    STATE_URI             = "s3://${aws_s3_bucket.state.bucket}/${local.poller_prefix}/${each.key}"
    TICK_INTERVAL_SECONDS = tostring(each.value.tick_interval_seconds)
    DRY_RUN               = tostring(each.value.dry_run)
  }
}

resource "aws_cloudwatch_event_rule" "poller_schedule" {
  for_each = local.pollers

  name                = "${var.name_prefix}-poller-${each.key}"
  description         = "Invokes the lambda-autoscaler metric-poller ${each.key} every minute."
  schedule_expression = "rate(1 minute)"
}

resource "aws_cloudwatch_event_target" "poller" {
  for_each = local.pollers

  rule = aws_cloudwatch_event_rule.poller_schedule[each.key].name
  arn  = module.poller[each.key].function_arn
}

resource "aws_lambda_permission" "poller_schedule" {
  for_each = local.pollers

  statement_id  = "AllowEventBridgeSchedule"
  action        = "lambda:InvokeFunction"
  function_name = module.poller[each.key].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.poller_schedule[each.key].arn
}

# Ticks that could not start on time (a tick overran its interval), from the poller's EMF.
resource "aws_cloudwatch_metric_alarm" "poller_missed_ticks" {
  for_each = local.pollers

  alarm_name          = "${var.name_prefix}-poller-${each.key}-missed-ticks"
  alarm_description   = "The metric-poller ${each.key} skipped ticks in 3 of 5 minutes: its groups are re-evaluated less often than every ${each.value.tick_interval_seconds} s."
  namespace           = "LambdaAutoscaler/Poller"
  metric_name         = "SkippedTicks"
  dimensions          = { FunctionName = module.poller[each.key].function_name }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# No invocation at all (schedule disabled, function broken before its handler runs).
resource "aws_cloudwatch_metric_alarm" "poller_not_running" {
  for_each = local.pollers

  alarm_name          = "${var.name_prefix}-poller-${each.key}-not-running"
  alarm_description   = "The metric-poller ${each.key} completed no tick in 5 minutes: its groups are not being scaled."
  namespace           = "LambdaAutoscaler/Poller"
  metric_name         = "Ticks"
  dimensions          = { FunctionName = module.poller[each.key].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# A dashboard per poller: its groups' capacity and recommendations, each metric as the
# engine read it, ticks, API calls, errors and tick duration (from its EMF).
resource "aws_cloudwatch_dashboard" "poller" {
  for_each = local.pollers

  dashboard_name = "${var.name_prefix}-poller-${each.key}"
  dashboard_body = templatefile("${path.module}/dashboards/poller.json.tftpl", {
    region    = data.aws_region.current.name
    namespace = "LambdaAutoscaler/Poller"
    function  = module.poller[each.key].function_name
  })
}

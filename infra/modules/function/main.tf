# One Lambda function as this project deploys it: arm64 / provided.al2023 / bootstrap zip,
# its own role (log writing plus the policy it is given), its log group with retention,
# JSON logs, and alarms on its Errors and Throttles.

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  name               = var.name
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_cloudwatch_log_group" "function" {
  #checkov:skip=CKV_AWS_158:Logs hold decisions and counts, no secrets; the service-managed key is enough.
  #checkov:skip=CKV_AWS_338:Retention is the log_retention_days variable (default 30 days); a year of debug logs is cost, not safety.
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
}

# The function may write only its own log group.
data "aws_iam_policy_document" "logs" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function.arn}:*"]
  }
}

resource "aws_iam_role_policy" "logs" {
  name   = "logs"
  role   = aws_iam_role.function.id
  policy = data.aws_iam_policy_document.logs.json
}

resource "aws_iam_role_policy" "function" {
  name   = "function"
  role   = aws_iam_role.function.id
  policy = var.policy_json
}

resource "aws_lambda_function" "function" {
  #checkov:skip=CKV_AWS_117:The functions call only AWS APIs; outside a VPC they need no NAT gateway or VPC endpoints.
  #checkov:skip=CKV_AWS_173:The environment holds bucket URIs and switches, no secrets.
  #checkov:skip=CKV_AWS_272:Code signing needs a signing profile the user must create; the zip's hash is pinned by source_code_hash.
  #checkov:skip=CKV_AWS_50:X-Ray tracing would add cost on every 10 s tick; the functions emit their own EMF metrics and JSON logs.
  #checkov:skip=CKV_AWS_116:Asynchronous failures go to an on-failure destination (aws_lambda_function_event_invoke_config), which supersedes a DLQ; the scheduled poller retries on its next minute.
  function_name = var.name
  description   = var.description
  role          = aws_iam_role.function.arn
  runtime       = "provided.al2023"
  architectures = ["arm64"]
  handler       = "bootstrap"
  filename      = var.zip_path
  # Read only when the zip exists, so that `make destroy` needs no build; creating or
  # updating the function needs it (the precondition below says so).
  source_code_hash = fileexists(var.zip_path) ? filebase64sha256(var.zip_path) : null
  timeout          = var.timeout_seconds
  memory_size      = var.memory_mb

  reserved_concurrent_executions = var.reserved_concurrency

  environment {
    variables = var.environment
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.function.name
  }

  depends_on = [aws_iam_role_policy.logs]

  lifecycle {
    precondition {
      condition     = fileexists(var.zip_path)
      error_message = "${var.zip_path} not found: run `make build` first (make deploy and make plan do)."
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "errors" {
  alarm_name          = "${var.name}-errors"
  alarm_description   = "${var.name} returned errors (see its log group)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.function.function_name }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_topic_arn == null ? [] : [var.alarm_topic_arn]
  ok_actions          = var.alarm_topic_arn == null ? [] : [var.alarm_topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "throttles" {
  alarm_name          = "${var.name}-throttles"
  alarm_description   = "${var.name} was throttled (reserved concurrency reached)."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = aws_lambda_function.function.function_name }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_topic_arn == null ? [] : [var.alarm_topic_arn]
  ok_actions          = var.alarm_topic_arn == null ? [] : [var.alarm_topic_arn]
}

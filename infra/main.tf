locals {
  policy_key       = "policy/policy.json"
  state_prefix     = "poller"
  processor_prefix = "log-processor"

  # Zips built by `make build` (cargo lambda build --release --arm64 --output-format zip).
  functions = {
    "metric-poller" = {
      zip         = "${path.module}/../target/lambda/metric-poller/bootstrap.zip"
      timeout     = var.poller_timeout_seconds
      memory      = 128
      concurrency = var.poller_reserved_concurrency
      environment = {
        POLICY_URI            = "s3://${aws_s3_bucket.state.bucket}/${local.policy_key}"
        STATE_URI             = "s3://${aws_s3_bucket.state.bucket}/${local.state_prefix}"
        TICK_INTERVAL_SECONDS = tostring(var.tick_interval_seconds)
        DRY_RUN               = tostring(var.dry_run)
      }
    }
    "log-processor" = {
      zip         = "${path.module}/../target/lambda/log-processor/bootstrap.zip"
      timeout     = var.processor_timeout_seconds
      memory      = 256
      concurrency = -1
      environment = {
        METRICS_NAMESPACE = var.metrics_namespace
        STATE_URI         = "s3://${aws_s3_bucket.state.bucket}/${local.processor_prefix}"
      }
    }
  }
}

resource "aws_cloudwatch_log_group" "function" {
  for_each = local.functions

  name              = "/aws/lambda/${var.name_prefix}-${each.key}"
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "function" {
  for_each = local.functions

  function_name    = "${var.name_prefix}-${each.key}"
  role             = aws_iam_role.function[each.key].arn
  runtime          = "provided.al2023"
  architectures    = ["arm64"]
  handler          = "bootstrap"
  filename         = each.value.zip
  source_code_hash = filebase64sha256(each.value.zip)
  timeout          = each.value.timeout
  memory_size      = each.value.memory

  reserved_concurrent_executions = each.value.concurrency

  environment {
    variables = each.value.environment
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.function[each.key].name
  }

  depends_on = [aws_iam_role_policy.logs]
}

# The poller's policy document, state and lease.
resource "aws_s3_bucket" "state" {
  bucket = var.state_bucket_name
}

resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id

  versioning_configuration {
    status = "Enabled"
  }
}

# Idempotency markers matter only while S3 may still redeliver an event.
resource "aws_s3_bucket_lifecycle_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    id     = "expire-idempotency-markers"
    status = "Enabled"

    filter {
      prefix = "${local.processor_prefix}/markers/"
    }

    expiration {
      days = var.marker_retention_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket = aws_s3_bucket.state.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

data "aws_iam_policy_document" "state_tls_only" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"]
    resources = [aws_s3_bucket.state.arn, "${aws_s3_bucket.state.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "state" {
  bucket = aws_s3_bucket.state.id
  policy = data.aws_iam_policy_document.state_tls_only.json

  depends_on = [aws_s3_bucket_public_access_block.state]
}

# Users write the policy in HCL; the poller reads JSON.
resource "aws_s3_object" "policy" {
  bucket       = aws_s3_bucket.state.id
  key          = local.policy_key
  content      = jsonencode(var.policy)
  content_type = "application/json"
}

# metric-poller: invoked every minute; it re-evaluates the groups inside the invocation.
resource "aws_cloudwatch_event_rule" "poller_schedule" {
  name                = "${var.name_prefix}-metric-poller"
  description         = "Invokes the lambda-autoscaler metric-poller every minute."
  schedule_expression = "rate(1 minute)"
}

resource "aws_cloudwatch_event_target" "poller" {
  rule = aws_cloudwatch_event_rule.poller_schedule.name
  arn  = aws_lambda_function.function["metric-poller"].arn
}

resource "aws_lambda_permission" "poller_schedule" {
  statement_id  = "AllowEventBridgeSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function["metric-poller"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.poller_schedule.arn
}

# log-processor: invoked for each log object delivered to the log bucket.
resource "aws_s3_bucket" "logs" {
  bucket = var.log_bucket_name
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket = aws_s3_bucket.logs.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_lambda_permission" "processor_bucket" {
  statement_id   = "AllowLogBucketNotifications"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.function["log-processor"].function_name
  principal      = "s3.amazonaws.com"
  source_arn     = aws_s3_bucket.logs.arn
  source_account = data.aws_caller_identity.current.account_id
}

resource "aws_s3_bucket_notification" "logs" {
  bucket = aws_s3_bucket.logs.id

  lambda_function {
    lambda_function_arn = aws_lambda_function.function["log-processor"].arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = var.log_prefix
    filter_suffix       = var.log_suffix
  }

  depends_on = [aws_lambda_permission.processor_bucket]
}

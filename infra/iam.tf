data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

# Each function may write only its own log group (the Lambda runtime's logging).
data "aws_iam_policy_document" "logs" {
  for_each = aws_cloudwatch_log_group.function

  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${each.value.arn}:*"]
  }
}

resource "aws_iam_role" "function" {
  for_each = local.functions

  name               = "${var.name_prefix}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

resource "aws_iam_role_policy" "logs" {
  for_each = local.functions

  name   = "logs"
  role   = aws_iam_role.function[each.key].id
  policy = data.aws_iam_policy_document.logs[each.key].json
}

# metric-poller: exactly the API operations its code calls.
data "aws_iam_policy_document" "poller" {
  statement {
    sid       = "DiscoverGroups"
    actions   = ["autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeInstanceRefreshes"]
    resources = ["*"] # Describe* actions support no resource-level permissions.
  }

  statement {
    sid       = "ScaleOnlyEnabledGroups"
    actions   = ["autoscaling:SetDesiredCapacity"]
    resources = ["arn:${data.aws_partition.current.partition}:autoscaling:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:autoScalingGroup:*:autoScalingGroupName/*"]

    condition {
      test     = "StringEquals"
      variable = "autoscaling:ResourceTag/lambda-autoscaler:enabled"
      values   = ["true"]
    }
  }

  statement {
    sid       = "ReadMetrics"
    actions   = ["cloudwatch:GetMetricData"]
    resources = ["*"] # GetMetricData supports no resource-level permissions.
  }

  statement {
    sid       = "ReadPolicy"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.state.arn}/${local.policy_key}"]
  }

  statement {
    sid       = "StateAndLease"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.state.arn}/${local.state_prefix}/*"]
  }

  # Without ListBucket, S3 answers a read of a missing object (the first state, the first
  # lease) with 403 instead of 404.
  statement {
    sid       = "FindStateObjects"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.state.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.state_prefix}/*"]
    }
  }
}

resource "aws_iam_role_policy" "poller" {
  name   = "metric-poller"
  role   = aws_iam_role.function["metric-poller"].id
  policy = data.aws_iam_policy_document.poller.json
}

# log-processor: read the log objects, publish metrics in its own namespace only.
data "aws_iam_policy_document" "processor" {
  statement {
    sid       = "ReadLogs"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.logs.arn}/${var.log_prefix}*"]
  }

  # Without ListBucket, S3 answers a read of a deleted log (or a missing marker) with 403
  # instead of 404, and the processor would retry what it should acknowledge.
  statement {
    sid       = "FindLogs"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.logs.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.log_prefix}*"]
    }
  }

  statement {
    sid       = "IdempotencyMarkers"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.state.arn}/${local.processor_prefix}/*"]
  }

  statement {
    sid       = "FindIdempotencyMarkers"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.state.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.processor_prefix}/*"]
    }
  }

  statement {
    sid       = "PublishMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"] # PutMetricData supports no resource-level permissions; the condition scopes it.

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.metrics_namespace]
    }
  }
}

resource "aws_iam_role_policy" "processor" {
  name   = "log-processor"
  role   = aws_iam_role.function["log-processor"].id
  policy = data.aws_iam_policy_document.processor.json
}

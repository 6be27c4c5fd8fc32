# What each function's code may call: exactly the AWS operations its source calls
# (tests/integration/least_privilege.rs derives them from the source and compares), plus
# the few the platform needs on its behalf, each explained where it is granted. The
# function module adds writing to the function's own log group.

# A metric-poller: its groups, its metrics, its policy object, its state prefix.
data "aws_iam_policy_document" "poller" {
  for_each = local.pollers

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
    resources = ["${aws_s3_bucket.state.arn}/${local.policy_prefix}/${each.key}.json"]
  }

  # HeadObject (the version of a corrupt state object) is authorized by s3:GetObject.
  statement {
    sid       = "StateAndLease"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.state.arn}/${local.poller_prefix}/${each.key}/*"]
  }

  # Not called by the code: without it S3 answers a read of a missing object (the first
  # state, the first lease) with 403 instead of 404. Unconditional: S3 checks ListBucket
  # for a GetObject of a missing key with the GetObject request's context, which has no
  # s3:prefix, so a prefix condition would never be met. It lets the poller list the
  # state bucket's key names (policy, state, markers), not read them.
  statement {
    sid       = "FindStateObjects"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.state.arn]
  }
}

# The log processor: read logs, keep its markers, publish into its namespace only.
data "aws_iam_policy_document" "processor" {
  statement {
    sid = "ReadLogs"
    # The event's versionId goes to GetObject: on a versioned bucket that read is
    # authorized by s3:GetObjectVersion.
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${local.log_bucket_arn}/${local.log_prefix}*"]
  }

  statement {
    sid       = "IdempotencyMarkers"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.state.arn}/${local.processor_prefix}/*"]
  }

  # Not called by the code: without it S3 answers a read of a deleted log (or a missing
  # marker) with 403 instead of 404, and the processor would fail what it should
  # acknowledge. Unconditional for the reason given at FindStateObjects: key names only.
  statement {
    sid       = "FindLogsAndMarkers"
    actions   = ["s3:ListBucket"]
    resources = [local.log_bucket_arn, aws_s3_bucket.state.arn]
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

  # The normalized output (a multipart upload: PutObject covers create, parts and
  # completion; an upload that fails is aborted): exactly under <prefix>/, and only in a
  # bucket of this account, so that a mistyped bucket name cannot send records elsewhere.
  dynamic "statement" {
    for_each = var.output_uri == null ? [] : [var.output_uri]

    content {
      sid       = "NormalizedOutput"
      actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
      resources = ["arn:${data.aws_partition.current.partition}:s3:::${local.output_bucket}/${local.output_prefix}/*"]

      condition {
        test     = "StringEquals"
        variable = "s3:ResourceAccount"
        values   = [data.aws_caller_identity.current.account_id]
      }
    }
  }

  # Not called by the code: Lambda delivers failed asynchronous events to the on-failure
  # destination with the function's own role.
  statement {
    sid       = "OnFailureDestination"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.processor_failures.arn]
  }
}

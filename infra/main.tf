locals {
  policy_prefix    = "policy"
  poller_prefix    = "poller"
  processor_prefix = "log-processor"
  zips             = coalesce(var.lambda_zip_dir, "${path.module}/../target/lambda")
  alarm_actions    = var.alarm_topic_arn == null ? [] : [var.alarm_topic_arn]

  # OUTPUT_URI split into bucket and prefix, for the processor's role.
  output        = var.output_uri == null ? null : regex("^s3://([^/]+)/?(.*)$", var.output_uri)
  output_bucket = local.output == null ? null : local.output[0]
  output_prefix = local.output == null ? null : trimsuffix(local.output[1], "/")

  # Only this account's logs by default: AWS delivers them under AWSLogs/<account>/, and a
  # broader prefix would let another account's layout (or anyone's "logs") in.
  log_prefix = coalesce(var.log_prefix, "AWSLogs/${data.aws_caller_identity.current.account_id}/")
}

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

# The deploying principal as bucket policies see it (aws:PrincipalArn): an assumed role's
# session ARN resolved to the role's own ARN.
data "aws_iam_session_context" "deployer" {
  arn = data.aws_caller_identity.current.arn
}

# Policy documents, the pollers' state and leases, the processor's idempotency markers.
resource "aws_s3_bucket" "state" {
  #checkov:skip=CKV_AWS_144:State is rebuilt conservatively when lost (a cold start); cross-region replication would double its cost for no safety.
  #checkov:skip=CKV_AWS_145:SSE-S3 (AES256) encrypts it; a customer-managed KMS key would add a key policy to manage and per-request KMS cost on every tick.
  #checkov:skip=CKV_AWS_18:Access logging of a state bucket written every 10 s would cost more than it tells; CloudTrail data events can be enabled account-wide.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to changes in the state bucket.
  bucket        = var.state_bucket_name
  force_destroy = var.force_destroy_buckets
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

  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
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

# The state bucket: TLS only, and the policy documents, which decide what the pollers
# scale, written only by whoever deploys this stack (Terraform writes them). Both Denies
# are conditional, so the emulator in tests/ never applies them (its requests carry no
# condition keys); terraform.rs reads them back instead.
data "aws_iam_policy_document" "state" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
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

  # Anyone else with broad S3 rights could swap a policy document and drive every group to
  # its maximum. An assumed role is matched by its role ARN, with or without a path.
  statement {
    sid       = "DenyPolicyWritesExceptDeployer"
    effect    = "Deny"
    actions   = ["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"]
    resources = ["${aws_s3_bucket.state.arn}/${local.policy_prefix}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "ArnNotEquals"
      variable = "aws:PrincipalArn"
      values   = [data.aws_iam_session_context.deployer.issuer_arn]
    }
  }
}

resource "aws_s3_bucket_policy" "state" {
  bucket = aws_s3_bucket.state.id
  policy = data.aws_iam_policy_document.state.json

  depends_on = [aws_s3_bucket_public_access_block.state]
}

# The log bucket: created here, or an existing one (ALB, CloudFront and VPC delivery
# buckets usually exist already).
resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_144:Access logs are processed within minutes of arrival; replication is the log owner's choice.
  #checkov:skip=CKV_AWS_145:ELB access log delivery supports only SSE-S3 (AES256) on the target bucket.
  #checkov:skip=CKV_AWS_18:Access logging of an access-log bucket would log the log deliveries.
  #checkov:skip=CKV_AWS_21:Log objects are written once and never changed; versioning adds nothing.
  #checkov:skip=CKV2_AWS_61:Log retention is the log owner's policy; this module does not delete logs.
  count         = var.create_log_bucket ? 1 : 0
  bucket        = var.log_bucket_name
  force_destroy = var.force_destroy_buckets
}

resource "aws_s3_bucket_public_access_block" "logs" {
  count  = var.create_log_bucket ? 1 : 0
  bucket = aws_s3_bucket.logs[0].id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  count  = var.create_log_bucket ? 1 : 0
  bucket = aws_s3_bucket.logs[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

data "aws_s3_bucket" "existing_logs" {
  count  = var.create_log_bucket ? 0 : 1
  bucket = var.log_bucket_name
}

locals {
  log_bucket_id  = var.create_log_bucket ? aws_s3_bucket.logs[0].id : data.aws_s3_bucket.existing_logs[0].id
  log_bucket_arn = var.create_log_bucket ? aws_s3_bucket.logs[0].arn : data.aws_s3_bucket.existing_logs[0].arn
}

# Who may write logs into a bucket created here: Elastic Load Balancing (ALB and Classic
# ELB access logs: the region's ELB account in regions opened before August 2022, the
# logdelivery.elasticloadbalancing.amazonaws.com principal in newer ones) and
# delivery.logs.amazonaws.com (NLB access logs, VPC flow logs), each only under
# AWSLogs/<this account>/ and, for the service principals, only on this account's behalf.
# CloudFront standard logs need ACLs instead (README, Deploy).
locals {
  elb_account_regions = [
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "af-south-1", "ap-east-1", "ap-south-1",
    "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2",
    "ca-central-1", "eu-central-1", "eu-west-1", "eu-west-2", "eu-west-3", "eu-south-1",
    "eu-north-1", "me-south-1", "sa-east-1", "us-gov-west-1", "us-gov-east-1", "cn-north-1",
    "cn-northwest-1",
  ]
  log_delivery_keys = "${local.log_bucket_arn}/*AWSLogs/${data.aws_caller_identity.current.account_id}/*"
  # Log deliveries made on this account's behalf (CloudWatch Logs' delivery service).
  log_delivery_source = "arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:*"
}

# The provider's own table of the regional ELB accounts (no account ID typed here).
data "aws_elb_service_account" "current" {
  count = var.create_log_bucket && contains(local.elb_account_regions, data.aws_region.current.name) ? 1 : 0
}

data "aws_iam_policy_document" "log_bucket" {
  count = var.create_log_bucket ? 1 : 0

  statement {
    sid       = "ElbAccessLogs"
    actions   = ["s3:PutObject"]
    resources = [local.log_delivery_keys]

    # The region's ELB account where it has one: an empty list would render `"AWS": []`,
    # which S3 refuses as a malformed policy.
    dynamic "principals" {
      for_each = data.aws_elb_service_account.current

      content {
        type        = "AWS"
        identifiers = [principals.value.arn]
      }
    }

    principals {
      type        = "Service"
      identifiers = ["logdelivery.elasticloadbalancing.amazonaws.com"]
    }
  }

  statement {
    sid       = "LogDeliveryWrite"
    actions   = ["s3:PutObject"]
    resources = [local.log_delivery_keys]

    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "s3:x-amz-acl"
      values   = ["bucket-owner-full-control"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [local.log_delivery_source]
    }
  }

  statement {
    sid       = "LogDeliveryAclCheck"
    actions   = ["s3:GetBucketAcl"]
    resources = [local.log_bucket_arn]

    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [local.log_delivery_source]
    }
  }

  # Whoever writes logs decides capacity, so no one else writes here: every PutObject is
  # denied unless it comes from a delivery service principal or the regional ELB account.
  # A missing key makes a negated condition true, so an IAM user or role of this account
  # (the deployer and root included) is denied writing objects; managing the bucket
  # (policy, configuration, reading, deleting) is untouched, so nothing locks anyone out.
  # Conditional: the emulator never applies it.
  statement {
    sid       = "DenyWritesExceptLogDelivery"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${local.log_bucket_arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "aws:PrincipalServiceName"
      values   = ["delivery.logs.amazonaws.com", "logdelivery.elasticloadbalancing.amazonaws.com"]
    }

    # The regional ELB account, where the region has one.
    dynamic "condition" {
      for_each = data.aws_elb_service_account.current

      content {
        test     = "StringNotEquals"
        variable = "aws:PrincipalAccount"
        values   = [condition.value.id]
      }
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [local.log_bucket_arn, "${local.log_bucket_arn}/*"]

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

resource "aws_s3_bucket_policy" "logs" {
  count  = var.create_log_bucket ? 1 : 0
  bucket = aws_s3_bucket.logs[0].id
  policy = data.aws_iam_policy_document.log_bucket[0].json

  depends_on = [aws_s3_bucket_public_access_block.logs]
}

# New log objects reach the processor by the bucket's own notification configuration
# ("s3": Terraform owns that configuration whole, so only for a bucket created here unless
# asked), or through EventBridge ("eventbridge": a rule of this stack; the bucket's own
# notifications stay as they are).
locals {
  notification_mode = coalesce(var.notification_mode, var.create_log_bucket ? "s3" : "eventbridge")
  # EventBridge matches a prefix, or with a suffix a wildcard over the whole key.
  log_key_filter = var.log_suffix == "" ? { prefix = local.log_prefix } : { wildcard = "${local.log_prefix}*${var.log_suffix}" }
}

resource "aws_s3_bucket_notification" "logs" {
  # With "eventbridge", a bucket created here gets its EventBridge switch turned on; an
  # existing bucket must have it on already (README, Deploy), its configuration untouched.
  count = local.notification_mode == "s3" || var.create_log_bucket ? 1 : 0

  bucket      = local.log_bucket_id
  eventbridge = local.notification_mode == "eventbridge"

  dynamic "lambda_function" {
    for_each = local.notification_mode == "s3" ? [module.processor.function_arn] : []

    content {
      lambda_function_arn = lambda_function.value
      events              = ["s3:ObjectCreated:*"]
      filter_prefix       = local.log_prefix
      filter_suffix       = var.log_suffix
    }
  }

  depends_on = [aws_lambda_permission.processor_bucket]
}

resource "aws_cloudwatch_event_rule" "log_objects" {
  count = local.notification_mode == "eventbridge" ? 1 : 0

  name        = "${var.name_prefix}-log-objects"
  description = "New log objects in ${var.log_bucket_name} under ${local.log_prefix}, for the lambda-autoscaler log-processor."
  event_pattern = jsonencode({
    source        = ["aws.s3"]
    "detail-type" = ["Object Created"]
    detail = {
      bucket = { name = [local.log_bucket_id] }
      object = { key = [local.log_key_filter] }
    }
  })
}

resource "aws_cloudwatch_event_target" "log_objects" {
  count = local.notification_mode == "eventbridge" ? 1 : 0

  rule = aws_cloudwatch_event_rule.log_objects[0].name
  arn  = module.processor.function_arn
}

locals {
  policy_prefix    = "policy"
  poller_prefix    = "poller"
  processor_prefix = "log-processor"
  zips             = "${path.module}/../target/lambda"
  alarm_actions    = var.alarm_topic_arn == null ? [] : [var.alarm_topic_arn]

  # OUTPUT_URI split into bucket and prefix, for the processor's role.
  output        = var.output_uri == null ? null : regex("^s3://([^/]+)/?(.*)$", var.output_uri)
  output_bucket = local.output == null ? null : local.output[0]
  output_prefix = local.output == null ? null : local.output[1]
}

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

# Policy documents, the pollers' state and leases, the processor's idempotency markers.
resource "aws_s3_bucket" "state" {
  #checkov:skip=CKV_AWS_144:State is rebuilt conservatively when lost (a cold start); cross-region replication would double its cost for no safety.
  #checkov:skip=CKV_AWS_145:SSE-S3 (AES256) encrypts it; a customer-managed KMS key would add a key policy to manage and per-request KMS cost on every tick.
  #checkov:skip=CKV_AWS_18:Access logging of a state bucket written every 10 s would cost more than it tells; CloudTrail data events can be enabled account-wide.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to changes in the state bucket.
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

# The log bucket: created here, or an existing one (ALB, CloudFront and VPC delivery
# buckets usually exist already).
resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_144:Access logs are processed within minutes of arrival; replication is the log owner's choice.
  #checkov:skip=CKV_AWS_145:ELB access log delivery supports only SSE-S3 (AES256) on the target bucket.
  #checkov:skip=CKV_AWS_18:Access logging of an access-log bucket would log the log deliveries.
  #checkov:skip=CKV_AWS_21:Log objects are written once and never changed; versioning adds nothing.
  #checkov:skip=CKV2_AWS_61:Log retention is the log owner's policy; this module does not delete logs.
  count  = var.create_log_bucket ? 1 : 0
  bucket = var.log_bucket_name
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

resource "aws_s3_bucket_notification" "logs" {
  bucket = local.log_bucket_id

  lambda_function {
    lambda_function_arn = module.processor.function_arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = var.log_prefix
    filter_suffix       = var.log_suffix
  }

  depends_on = [aws_lambda_permission.processor_bucket]
}

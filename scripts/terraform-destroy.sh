#!/usr/bin/env bash
# `make destroy` (and the Terraform test): destroys the stack in DIR, passing the remaining
# arguments (-var-file=..., -var ...) to every terraform command. Needs no build.
#
# The state bucket is versioned, so it always holds objects (at least the old versions of
# the policies): deleting it needs force_destroy, which the provider reads from the state,
# not from the configuration. So: stop before anything is deleted unless
# force_destroy_buckets is true; apply that setting to the buckets alone; then destroy.
set -euo pipefail
dir=$1
shift
opt_in=$(echo 'var.force_destroy_buckets' | terraform -chdir="$dir" console "$@" | tail -n 1)
if [ "$opt_in" != "true" ]; then
  echo "Nothing was destroyed: destroying deletes the state bucket (policies, the pollers' state, the processor's markers) and a log bucket created by this stack, with every object in them. Set force_destroy_buckets = true (in terraform.tfvars) to go ahead." >&2
  exit 1
fi
terraform -chdir="$dir" apply -input=false -auto-approve -target=aws_s3_bucket.state -target=aws_s3_bucket.logs "$@"
terraform -chdir="$dir" destroy -input=false "$@"

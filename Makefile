# lambda-autoscaler. Needs only the Rust toolchain and python3; everything else is
# installed by `make setup` into .venv (moto, cargo-lambda with zig).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cksum < requirements-dev.txt | cut -d' ' -f1)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

FUNCTIONS := metric-poller log-processor
LAMBDA_ZIPS := $(foreach f,$(FUNCTIONS),target/lambda/$(f)/bootstrap.zip)
TFVARS := infra/terraform.tfvars
# A local filesystem mirror of the Terraform providers, for machines that cannot reach the
# registry (the build machines keep one there); empty: `terraform init` downloads them.
# The Terraform test in `make test` reads it from the environment.
TF_PLUGIN_DIR ?= $(firstword $(wildcard /opt/tf-plugins))
export TF_PLUGIN_DIR
TF_INIT := terraform -chdir=infra init -input=false $(if $(TF_PLUGIN_DIR),-plugin-dir=$(TF_PLUGIN_DIR))
# cargo-deny, pinned and built into .tools/ (see `lint`); defined before the rules that
# name it, as make expands prerequisites when it reads them.
CARGO_DENY_VERSION := 0.20.2
CARGO_DENY := .tools/cargo-deny-$(CARGO_DENY_VERSION)/bin/cargo-deny

.PHONY: help setup build test check-infra lint demo bench bench-control bench-logs fuzz advisories lock-providers mutants deploy-prerequisites deploy plan destroy clean

help:
	@echo "make demo     run the whole product on a local AWS emulator (moto)"
	@echo "make test     unit + integration tests (starts its own moto servers)"
	@echo "make lint     rustfmt, clippy, cargo deny (licenses, sources, bans)"
	@echo "make bench    engine throughput (criterion), poller API calls per tick against moto, init times"
	@echo "make bench-control  the engine vs an emulation of AWS target tracking on seeded traces, through CloudWatch's pipeline"
	@echo "make bench-logs  log-processor vs pigz -dc and GoAccess on a generated 1M-line ALB log (installs both)"
	@echo "make fuzz     the log parsers and event decoding over 200,000 random inputs each"
	@echo "make mutants  mutation testing of the engine, the log formats and idempotency (long; not in CI)"
	@echo "make build    release arm64 Lambda zips in target/lambda/*/bootstrap.zip"
	@echo "make deploy   build, then terraform init + apply in infra/ (plan, destroy likewise)"

setup: $(STAMP)

# Every package of the closure pinned with its hashes: pip refuses anything else.
$(STAMP): requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

build: setup
	rustup target add aarch64-unknown-linux-gnu
	cargo lambda build --locked --release --arm64 --output-format zip $(foreach f,$(FUNCTIONS),--package $(f))
	@ls -l $(LAMBDA_ZIPS)

# --locked everywhere: Cargo.lock is what was reviewed; a build never resolves anew.
test: setup check-infra
	cargo build --locked --workspace --bins
	cargo test --locked --workspace

# infra/ is checked by checkov (PyPI) here, and by cargo test: applied against moto with
# Terraform (tests/integration/terraform.rs), and its HCL in infra.rs and least_privilege.rs.
check-infra: setup
	$(VENV)/bin/checkov --directory infra --framework terraform --compact --quiet --skip-download

lint: $(CARGO_DENY)
	cargo fmt --all --check
	cargo clippy --locked --workspace --all-targets -- -D warnings
	$(CARGO_DENY) --locked check --hide-inclusion-graph bans licenses sources

# Supply chain (deny.toml): licenses, crate sources and bans in `make lint`. cargo-deny is
# built from crates.io at a pinned version into .tools/ (the versioned directory is the
# stamp). RustSec advisories need the advisory database, which cargo-deny fetches from
# GitHub: `make advisories` where GitHub is reachable (README, Supply chain).
$(CARGO_DENY):
	cargo install --locked --quiet --root .tools/cargo-deny-$(CARGO_DENY_VERSION) cargo-deny@$(CARGO_DENY_VERSION)

advisories: $(CARGO_DENY)
	$(CARGO_DENY) --locked check advisories

# infra/.terraform.lock.hcl holds the AWS provider's hashes for the platforms users deploy
# from; after changing the provider's version, refresh them (needs the Terraform registry).
lock-providers:
	terraform -chdir=infra providers lock -platform=linux_amd64 -platform=linux_arm64 \
	  -platform=darwin_amd64 -platform=darwin_arm64

demo: setup
	cargo build --locked --workspace --bins
	cargo run --locked --quiet --package integration-tests --bin demo

bench: setup
	cargo bench --locked --package metric-poller --bench engine
	cargo run --locked --quiet --package integration-tests --bin poller-bench
	cargo build --locked --release --package metric-poller --package log-processor
	cargo run --locked --quiet --package integration-tests --bin cold-start

# pigz and GoAccess come from Debian's packages (as root, or through sudo).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

# A simulation (no AWS, no moto): a few seconds in a debug build. Exits 1 if a target is missed.
bench-control:
	cargo run --locked --quiet --package integration-tests --bin bench-control

bench-logs: setup
	@command -v pigz >/dev/null && command -v goaccess >/dev/null || $(SUDO) apt-get install -y -q pigz goaccess
	cargo build --locked --release --package autoscaler-cli
	cargo build --locked --package integration-tests --bin gen-alb-log
	scripts/bench-logs.sh target/release/autoscaler target/debug/gen-alb-log target/bench-logs

# Property-based fuzzing on stable Rust (cargo-fuzz needs nightly): many more cases than
# the same tests run with in `make test`.
fuzz:
	PROPTEST_CASES=200000 cargo test --locked --release --package log-processor --lib -- fuzz invariant

# Mutation testing, a habit rather than a gate (it rebuilds and tests once per mutant: long,
# so not in CI). cargo-mutants is installed into .tools/ by the Makefile itself.
MUTANTS := .tools/bin/cargo-mutants
$(MUTANTS):
	cargo install --locked --root .tools cargo-mutants@25.3.1

mutants: $(MUTANTS)
	$(MUTANTS) mutants --package metric-poller --file 'functions/metric-poller/src/engine/**' --output target/mutants/engine
	$(MUTANTS) mutants --package log-processor --file 'functions/log-processor/src/formats/**' \
	  --file functions/log-processor/src/idempotency.rs --output target/mutants/log-processor

# Deployment: stop early, with one line saying what to do, when a prerequisite is missing.
deploy-prerequisites:
	@command -v terraform >/dev/null || { echo "terraform not found: install Terraform >= 1.9 (see README, Deploy)"; exit 1; }
	@[ -n "$${AWS_ACCESS_KEY_ID:-}$${AWS_PROFILE:-}$${AWS_WEB_IDENTITY_TOKEN_FILE:-}$${AWS_CONTAINER_CREDENTIALS_FULL_URI:-}$${AWS_CONTAINER_CREDENTIALS_RELATIVE_URI:-}" ] \
	  || [ -f "$${AWS_SHARED_CREDENTIALS_FILE:-$$HOME/.aws/credentials}" ] || [ -f "$${AWS_CONFIG_FILE:-$$HOME/.aws/config}" ] \
	  || { echo "no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_REGION)"; exit 1; }
	@[ -n "$${AWS_REGION:-}$${AWS_DEFAULT_REGION:-}$${AWS_PROFILE:-}" ] || [ -f "$${AWS_CONFIG_FILE:-$$HOME/.aws/config}" ] \
	  || { echo "no AWS region: set AWS_REGION"; exit 1; }
	@[ -f $(TFVARS) ] || { echo "$(TFVARS) not found: cp infra/examples/terraform.tfvars.example $(TFVARS) and edit it"; exit 1; }
	@for name in state_bucket_name log_bucket_name pollers; do \
	  grep -Eq "^[[:space:]]*$$name[[:space:]]*=" $(TFVARS) || { echo "$(TFVARS) does not set $$name (see infra/examples/terraform.tfvars.example)"; exit 1; }; \
	done

deploy: deploy-prerequisites build
	$(TF_INIT)
	terraform -chdir=infra apply -input=false -var-file=terraform.tfvars

plan: deploy-prerequisites build
	$(TF_INIT)
	terraform -chdir=infra plan -input=false -var-file=terraform.tfvars

# No build needed; stops before deleting anything unless force_destroy_buckets = true.
destroy: deploy-prerequisites
	$(TF_INIT)
	scripts/terraform-destroy.sh infra -var-file=terraform.tfvars

clean:
	cargo clean
	rm -rf $(VENV)

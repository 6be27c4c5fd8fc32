//! infra/ verified offline: Terraform cannot be downloaded here, so every `.tf` file is
//! parsed with hcl-rs and its wiring asserted; the example tfvars' HCL policy is run
//! through the poller's own validator.

use std::collections::BTreeMap;

use hcl::{Block, Body, Expression};
use integration_tests::workspace_root;

/// Every block of every .tf file in infra/, by file.
fn terraform() -> BTreeMap<String, Body> {
    let dir = workspace_root().join("infra");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tf"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let body = hcl::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), body)
        })
        .collect()
}

fn labels(block: &Block) -> Vec<&str> {
    block.labels().iter().map(|l| l.as_str()).collect()
}

fn blocks<'a>(files: &'a BTreeMap<String, Body>, kind: &str, resource_type: &str) -> Vec<&'a Block> {
    files
        .values()
        .flat_map(|b| b.blocks())
        .filter(|b| b.identifier() == kind && labels(b).first() == Some(&resource_type))
        .collect()
}

fn attribute<'a>(block: &'a Block, key: &str) -> Option<&'a Expression> {
    block.body().attributes().find(|a| a.key() == key).map(|a| a.expr())
}

/// The string literals of an array expression.
fn strings(expr: Option<&Expression>) -> Vec<String> {
    match expr {
        Some(Expression::Array(items)) => items
            .iter()
            .map(|e| match e {
                Expression::String(s) => s.clone(),
                other => panic!("not a string literal: {other}"),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

/// An expression as Terraform source text (for references and templates).
fn text(expr: &Expression) -> String {
    expr.to_string()
}

fn all_blocks<'a>(body: &'a Body, out: &mut Vec<&'a Block>) {
    for block in body.blocks() {
        out.push(block);
        all_blocks(block.body(), out);
    }
}

#[test]
fn every_file_parses_and_the_functions_are_arm64_al2023_bootstrap_zips() {
    let files = terraform();
    for name in ["versions.tf", "variables.tf", "main.tf", "iam.tf", "outputs.tf"] {
        assert!(files.contains_key(name), "infra/{name} missing");
    }
    let functions = blocks(&files, "resource", "aws_lambda_function");
    assert_eq!(functions.len(), 1, "one for_each resource for both functions");
    let function = functions[0];
    assert_eq!(attribute(function, "runtime").map(text).as_deref(), Some("\"provided.al2023\""));
    assert_eq!(strings(attribute(function, "architectures")), ["arm64"]);
    assert_eq!(attribute(function, "handler").map(text).as_deref(), Some("\"bootstrap\""));
    assert!(attribute(function, "source_code_hash").is_some_and(|e| text(e).contains("filebase64sha256")));
    let locals = files["main.tf"].blocks().find(|b| b.identifier() == "locals").unwrap();
    let functions_map = text(attribute(locals, "functions").unwrap());
    for name in ["metric-poller", "log-processor"] {
        assert!(functions_map.contains(&format!("target/lambda/{name}/bootstrap.zip")), "{functions_map}");
    }
    for variable in ["POLICY_URI", "STATE_URI", "TICK_INTERVAL_SECONDS", "DRY_RUN", "METRICS_NAMESPACE"] {
        assert!(functions_map.contains(variable), "{variable} not set for the functions");
    }
}

#[test]
fn triggers_are_wired_and_scoped() {
    let files = terraform();
    let permissions = blocks(&files, "resource", "aws_lambda_permission");
    assert_eq!(permissions.len(), 2);
    for permission in &permissions {
        assert!(attribute(permission, "source_arn").is_some(), "{:?} lacks source_arn", labels(permission));
    }
    let rule = blocks(&files, "resource", "aws_cloudwatch_event_rule")[0];
    assert_eq!(attribute(rule, "schedule_expression").map(text).as_deref(), Some("\"rate(1 minute)\""));
    let target = blocks(&files, "resource", "aws_cloudwatch_event_target")[0];
    assert!(text(attribute(target, "arn").unwrap()).contains("[\"metric-poller\"]"));
    let notification = blocks(&files, "resource", "aws_s3_bucket_notification")[0];
    let lambda = notification.body().blocks().find(|b| b.identifier() == "lambda_function").unwrap();
    assert!(text(attribute(lambda, "lambda_function_arn").unwrap()).contains("[\"log-processor\"]"));
    assert_eq!(strings(attribute(lambda, "events")), ["s3:ObjectCreated:*"]);
    assert!(attribute(notification, "depends_on").is_some_and(|d| text(d).contains("aws_lambda_permission")));
    let groups = blocks(&files, "resource", "aws_cloudwatch_log_group");
    assert!(attribute(groups[0], "retention_in_days").is_some());
}

#[test]
fn no_iam_statement_grants_a_wildcard_action() {
    let files = terraform();
    let mut every = Vec::new();
    for body in files.values() {
        all_blocks(body, &mut every);
    }
    let statements: Vec<&&Block> = every.iter().filter(|b| b.identifier() == "statement").collect();
    assert!(statements.len() >= 6, "{} statements", statements.len());
    for statement in statements {
        let Some(Expression::Array(actions)) = attribute(statement, "actions") else {
            panic!("statement without actions")
        };
        for action in actions {
            let Expression::String(action) = action else { panic!("non-literal action {action}") };
            assert!(action != "*" && !action.ends_with(":*"), "wildcard action {action}");
        }
    }
    // The poller may scale only groups tagged enabled.
    let iam = &files["iam.tf"];
    let mut blocks_in_iam = Vec::new();
    all_blocks(iam, &mut blocks_in_iam);
    let scale = blocks_in_iam
        .iter()
        .find(|b| {
            b.identifier() == "statement"
                && attribute(b, "sid").map(text).as_deref() == Some("\"ScaleOnlyEnabledGroups\"")
        })
        .unwrap();
    let condition = scale.body().blocks().find(|b| b.identifier() == "condition").unwrap();
    assert_eq!(
        attribute(condition, "variable").map(text).as_deref(),
        Some("\"autoscaling:ResourceTag/lambda-autoscaler:enabled\"")
    );
}

#[test]
fn the_example_tfvars_policy_is_valid_for_the_poller() {
    let path = workspace_root().join("infra/terraform.tfvars.example");
    let tfvars: serde_json::Value = hcl::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    // What jsonencode(var.policy) writes.
    let policy = &tfvars["policy"];
    let document = metric_poller::policy::parse_policy(policy).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(document.groups[0].metrics.len(), 2);
    assert_eq!(document.groups[0].behavior.scale_down.stabilization_seconds, 300);
}

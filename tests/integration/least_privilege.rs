//! Least privilege matches the code: the AWS operations each function's source can call
//! are derived from the source itself and compared with the IAM actions its role is
//! granted in infra/, neither missing nor extra (apart from the few the platform needs on
//! the function's behalf, listed below with their reasons).
//!
//! Derivation: every `fn` of the function's crate is a root; a function of the shared crate
//! is reached when a reached function calls something of its name; an SDK operation is a
//! method call with no arguments (`.get_object()`, the fluent builders' entry points) whose
//! name is an operation of one of the SDK crates the function depends on, as listed by that
//! crate's own `src/operation/` directory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hcl::{Block, Body, Expression};
use integration_tests::workspace_root;
use proc_macro2::{Delimiter, TokenStream, TokenTree};

/// IAM actions granted that no code calls, and why.
const PLATFORM_ACTIONS: &[(&str, &str)] = &[
    ("logs:CreateLogStream", "the Lambda runtime writes the function's logs with its role"),
    ("logs:PutLogEvents", "the Lambda runtime writes the function's logs with its role"),
    ("s3:ListBucket", "without it S3 answers a read of a missing object with 403, not 404"),
    (
        "s3:GetObjectVersion",
        "GetObject with the event's versionId (a versioned log bucket) is authorized by it, not by s3:GetObject",
    ),
    (
        "sqs:SendMessage",
        "Lambda sends failed asynchronous events to the on-failure queue with the function's role",
    ),
];

/// Operations authorized by another operation's action.
const ACTION_OF: &[(&str, &str)] = &[
    ("s3:HeadObject", "s3:GetObject"),
    ("s3:CreateMultipartUpload", "s3:PutObject"),
    ("s3:UploadPart", "s3:PutObject"),
    ("s3:CompleteMultipartUpload", "s3:PutObject"),
];

/// The SDK crates the functions use, with their IAM service prefixes.
const SERVICES: &[(&str, &str)] =
    &[("aws-sdk-autoscaling", "autoscaling"), ("aws-sdk-cloudwatch", "cloudwatch"), ("aws-sdk-s3", "s3")];

/// Each SDK operation's snake-case name → its IAM action (`s3:GetObject`).
fn sdk_operations() -> BTreeMap<String, String> {
    let mut operations = BTreeMap::new();
    for (krate, prefix) in SERVICES {
        let dir = registry_source(krate).join("src/operation");
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                let snake = path.file_name().unwrap().to_string_lossy().into_owned();
                let pascal: String =
                    snake.split('_').map(|w| w[..1].to_ascii_uppercase() + &w[1..]).collect();
                let previous = operations.insert(snake.clone(), format!("{prefix}:{pascal}"));
                assert!(previous.is_none(), "{snake} is an operation of two services: attribute it by hand");
            }
        }
    }
    operations
}

/// The unpacked source of `krate` at the version `Cargo.lock` pins, in the registry cache
/// that building this test filled. Not `cargo metadata`: offline it needs every package of
/// the lock file, other platforms' too, which a build on this platform never downloads.
fn registry_source(krate: &str) -> PathBuf {
    let lock = std::fs::read_to_string(workspace_root().join("Cargo.lock")).expect("Cargo.lock");
    let lock: toml::Table = toml::from_str(&lock).expect("Cargo.lock parses");
    let versions: Vec<&str> = lock["package"]
        .as_array()
        .expect("[[package]]")
        .iter()
        .filter(|p| p["name"].as_str() == Some(krate))
        .filter_map(|p| p["version"].as_str())
        .collect();
    let [version] = versions[..] else {
        panic!("{krate}: expected one version in Cargo.lock, found {versions:?}")
    };
    let cargo_home = std::env::var_os("CARGO_HOME").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").expect("HOME or CARGO_HOME")).join(".cargo")
    });
    let registries = cargo_home.join("registry/src");
    let wanted = format!("{krate}-{version}");
    std::fs::read_dir(&registries)
        .unwrap_or_else(|e| panic!("{}: {e}", registries.display()))
        .map(|entry| entry.unwrap().path().join(&wanted))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| panic!("{wanted} is not unpacked under {}", registries.display()))
}

/// The calls in one function body: method calls with no arguments, and all called names.
#[derive(Default, Debug)]
struct Calls {
    no_argument_methods: BTreeSet<String>,
    names: BTreeSet<String>,
}

fn scan(tokens: TokenStream, calls: &mut Calls) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, token) in tokens.iter().enumerate() {
        match token {
            TokenTree::Group(group) => scan(group.stream(), calls),
            TokenTree::Ident(ident) => {
                let Some(TokenTree::Group(args)) = tokens.get(i + 1) else { continue };
                if args.delimiter() != Delimiter::Parenthesis {
                    continue;
                }
                let name = ident.to_string();
                let after_dot = i > 0 && matches!(&tokens[i - 1], TokenTree::Punct(p) if p.as_char() == '.');
                if after_dot && args.stream().is_empty() {
                    calls.no_argument_methods.insert(name.clone());
                }
                calls.names.insert(name);
            }
            _ => {}
        }
    }
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg") && a.meta.require_list().is_ok_and(|l| l.tokens.to_string().contains("test"))
    })
}

/// Every non-test `fn` (free, in impls, in traits) of the crate under `src`, with its calls.
fn functions(src: &Path) -> Vec<(String, Calls)> {
    fn walk(items: &[syn::Item], out: &mut Vec<(String, Calls)>) {
        for item in items {
            match item {
                syn::Item::Fn(f) if !is_test_only(&f.attrs) => {
                    let mut calls = Calls::default();
                    scan(quote_block(&f.block), &mut calls);
                    out.push((f.sig.ident.to_string(), calls));
                }
                syn::Item::Impl(i) if !is_test_only(&i.attrs) => {
                    for member in &i.items {
                        if let syn::ImplItem::Fn(f) = member {
                            let mut calls = Calls::default();
                            scan(quote_block(&f.block), &mut calls);
                            out.push((f.sig.ident.to_string(), calls));
                        }
                    }
                }
                syn::Item::Mod(m) if !is_test_only(&m.attrs) => {
                    if let Some((_, inner)) = &m.content {
                        walk(inner, out);
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let file = syn::parse_file(&std::fs::read_to_string(&path).unwrap())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                walk(&file.items, &mut out);
            }
        }
    }
    out
}

fn quote_block(block: &syn::Block) -> TokenStream {
    use quote::ToTokens;
    block.to_token_stream()
}

/// The IAM actions the function at `crate_dir` needs for the operations its code calls.
fn actions_called(crate_dir: &str, operations: &BTreeMap<String, String>) -> BTreeSet<String> {
    let root = workspace_root();
    let own = functions(&root.join(crate_dir).join("src"));
    let shared = functions(&root.join("shared/src"));
    let mut reached: Vec<&Calls> = own.iter().map(|(_, c)| c).collect();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut i = 0;
    while i < reached.len() {
        let names = reached[i].names.clone();
        for (name, calls) in &shared {
            if names.contains(name) && seen.insert(name) {
                reached.push(calls);
            }
        }
        i += 1;
    }
    let aliases: BTreeMap<&str, &str> = ACTION_OF.iter().copied().collect();
    reached
        .iter()
        .flat_map(|c| c.no_argument_methods.iter())
        .filter_map(|m| operations.get(m))
        .map(|action| aliases.get(action.as_str()).map_or(action.clone(), |a| a.to_string()))
        .collect()
}

fn attribute<'a>(block: &'a Block, key: &str) -> Option<&'a Expression> {
    block.body().attributes().find(|a| a.key() == key).map(|a| a.expr())
}

/// The actions of every statement of `data "aws_iam_policy_document" "<name>"`, plus the
/// function module's own (log writing).
fn actions_granted(files: &BTreeMap<String, Body>, document: &str) -> BTreeSet<String> {
    let documents = |body: &Body, wanted: Option<&str>| -> Vec<Block> {
        body.blocks()
            .filter(|b| {
                let labels: Vec<&str> = b.labels().iter().map(|l| l.as_str()).collect();
                b.identifier() == "data"
                    && labels.first() == Some(&"aws_iam_policy_document")
                    && wanted.is_none_or(|w| labels.get(1) == Some(&w))
                    && labels.get(1) != Some(&"assume")
            })
            .cloned()
            .collect()
    };
    let mut blocks = documents(&files["iam.tf"], Some(document));
    assert_eq!(blocks.len(), 1, "data.aws_iam_policy_document.{document} missing");
    blocks.extend(documents(&files["modules/function/main.tf"], None));
    let mut actions = BTreeSet::new();
    for block in &blocks {
        // Statements, and the content of `dynamic "statement"` blocks (granted when enabled).
        let dynamic = block
            .body()
            .blocks()
            .filter(|b| b.identifier() == "dynamic")
            .flat_map(|d| d.body().blocks().filter(|b| b.identifier() == "content"));
        for statement in block.body().blocks().filter(|b| b.identifier() == "statement").chain(dynamic) {
            let Some(Expression::Array(items)) = attribute(statement, "actions") else {
                panic!("no actions")
            };
            for item in items {
                let Expression::String(action) = item else { panic!("non-literal action {item}") };
                actions.insert(action.clone());
            }
        }
    }
    actions
}

#[test]
fn each_role_grants_exactly_what_its_code_calls() {
    let operations = sdk_operations();
    let files = crate::infra::terraform();
    let platform: BTreeSet<String> = PLATFORM_ACTIONS.iter().map(|(a, _)| a.to_string()).collect();
    for (crate_dir, document, expected_calls) in [
        (
            "functions/metric-poller",
            "poller",
            &[
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeInstanceRefreshes",
                "autoscaling:SetDesiredCapacity",
                "cloudwatch:GetMetricData",
                "s3:GetObject",
                "s3:PutObject",
            ][..],
        ),
        (
            "functions/log-processor",
            "processor",
            &["cloudwatch:PutMetricData", "s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"][..],
        ),
    ] {
        let called = actions_called(crate_dir, &operations);
        // The derivation itself is checked against what we know the code does, so that a
        // broken scan cannot pass by finding nothing.
        let expected: BTreeSet<String> = expected_calls.iter().map(|s| s.to_string()).collect();
        assert_eq!(called, expected, "{crate_dir}: operations derived from the source");

        let granted = actions_granted(&files, document);
        let missing: Vec<&String> = called.difference(&granted).collect();
        assert!(missing.is_empty(), "{crate_dir} calls {missing:?}, which its role does not grant");
        let extra: Vec<&String> = granted.difference(&called).filter(|a| !platform.contains(*a)).collect();
        assert!(extra.is_empty(), "{crate_dir}'s role grants {extra:?}, which its code never calls");
    }
}

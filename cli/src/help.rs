//! The `Examples:` section that ends every command's `--help`.

use clap::builder::StyledStr;
use clap::builder::styling::Styles;

/// `(what it does, the command)` pairs under a heading styled as clap styles its own (clap
/// drops the styling when colour is off: not a terminal, `NO_COLOR`).
pub fn examples(examples: &[(&str, &str)]) -> StyledStr {
    let styles = Styles::default();
    let header = styles.get_header();
    let mut text = format!("{header}Examples:{header:#}\n");
    for (what, command) in examples {
        text.push_str(&format!("  # {what}\n  {command}\n"));
    }
    text.into()
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use crate::commands::Cli;

    /// Every command, its path from the top (`autoscaler logs summarize`).
    fn all(command: &clap::Command, path: String, out: &mut Vec<(String, clap::Command)>) {
        for sub in command.get_subcommands() {
            all(sub, format!("{path} {}", sub.get_name()), out);
        }
        out.push((path, command.clone()));
    }

    #[test]
    fn every_command_ends_its_help_with_two_or_three_examples_that_parse() {
        let mut commands = Vec::new();
        all(&Cli::command(), "autoscaler".into(), &mut commands);
        for (path, command) in commands {
            let help = command.get_after_help().map(|h| h.to_string()).unwrap_or_default();
            let runs: Vec<&str> =
                help.lines().filter(|l| l.contains("autoscaler ") && !l.trim().starts_with('#')).collect();
            assert!((2..=3).contains(&runs.len()), "{path}: {help:?}");
            for run in runs {
                // From `autoscaler` to a shell operator: `zcat x | autoscaler ... -`, `<(autoscaler ...)`.
                let args = &run[run.find("autoscaler").unwrap()..];
                let args = args.split(['|', '>', ')']).next().unwrap();
                let parsed = Cli::try_parse_from(args.split_whitespace());
                assert!(parsed.is_ok(), "{path}: example `{args}` does not parse: {}", parsed.unwrap_err());
            }
        }
    }
}

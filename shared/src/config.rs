//! Typed configuration from environment variables, with errors that name the variable.

use std::collections::HashMap;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}={value:?}: {message}")]
pub struct ConfigError {
    pub name: String,
    pub value: String,
    pub message: String,
}

/// A snapshot of the environment. Tests build one from pairs instead of mutating the
/// process environment.
#[derive(Clone, Debug, Default)]
pub struct Env(HashMap<String, String>);

impl Env {
    pub fn from_process() -> Self {
        Self(std::env::vars().collect())
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
    }

    /// The variable's value; unset and empty are the same.
    pub fn string(&self, name: &str) -> Option<String> {
        self.0.get(name).filter(|v| !v.is_empty()).cloned()
    }

    pub fn string_or(&self, name: &str, default: &str) -> String {
        self.string(name).unwrap_or_else(|| default.to_owned())
    }

    pub fn parse_or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.string(name) {
            None => Ok(default),
            Some(value) => value.trim().parse().map_err(|e: T::Err| ConfigError {
                name: name.to_owned(),
                message: e.to_string(),
                value,
            }),
        }
    }

    /// `true`/`false`/`1`/`0`/`yes`/`no`, case-insensitive.
    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.string(name) {
            None => Ok(default),
            Some(value) => match value.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(ConfigError {
                    name: name.to_owned(),
                    value,
                    message: "expected true or false".to_owned(),
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_and_errors_name_the_variable() {
        let env = Env::from_pairs([("A", "12"), ("B", "yes"), ("C", "x"), ("E", "")]);
        assert_eq!(env.parse_or("A", 0u32).unwrap(), 12);
        assert!(env.bool_or("B", false).unwrap());
        assert_eq!(env.parse_or("MISSING", 7u32).unwrap(), 7);
        assert_eq!(env.string("E"), None, "empty counts as unset");
        let err = env.parse_or("C", 0u32).unwrap_err();
        assert!(err.to_string().starts_with("environment variable C=\"x\""), "{err}");
        assert!(env.bool_or("C", false).is_err());
    }
}

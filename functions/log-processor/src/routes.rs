//! `ROUTES`: per-route metrics, which no AWS metric gives. An ordered list of path
//! patterns, each naming a route; a request's path takes the first pattern it matches, and
//! its request count, status classes and latency are published again under a `Route`
//! dimension. Cardinality (and so cost: every route is a set of custom metrics) is bounded
//! by the configuration: paths no pattern matches, and routes beyond `ROUTES_MAX`, go to
//! [`OTHER`].
//!
//! Syntax: `pattern=name,...`, e.g. `/api/users/*=users,/api/orders/**=orders,/=home`.
//! A pattern is a path of `/`-separated segments: a literal segment matches itself, `*`
//! matches any one segment, and a final `**` any number of them (none included). The query
//! string is ignored.

use shared::config::{ConfigError, Env};

/// The route of requests that match no pattern, or a pattern beyond the limit.
pub const OTHER: &str = "other";
/// The default `ROUTES_MAX`: 20 routes and `other` cost 21 × 6 custom metrics per load
/// balancer or distribution (README, "Per-route metrics").
pub const DEFAULT_MAX_ROUTES: usize = 20;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(Box<[u8]>),
    /// `*`
    One,
    /// A final `**`.
    Rest,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Routes {
    /// In order; each with the index of its route's name in `names`.
    patterns: Vec<(Vec<Segment>, usize)>,
    /// Route names, the last being [`OTHER`].
    names: Vec<String>,
}

fn invalid(name: &str, value: &str, message: impl Into<String>) -> ConfigError {
    ConfigError { name: name.into(), value: value.into(), message: message.into() }
}

/// `ROUTES` and `ROUTES_MAX` from the environment; no routes when `ROUTES` is unset.
pub fn from_env(env: &Env) -> Result<Routes, ConfigError> {
    let max = env.parse_or("ROUTES_MAX", DEFAULT_MAX_ROUTES)?;
    env.string("ROUTES").map_or(Ok(Routes::default()), |value| Routes::parse(&value, max))
}

impl Routes {
    /// `pattern=name,...`; routes beyond the first `max` distinct names go to [`OTHER`].
    pub fn parse(value: &str, max: usize) -> Result<Self, ConfigError> {
        let mut routes = Routes::default();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (pattern, name) = entry
                .rsplit_once('=')
                .map(|(p, n)| (p.trim(), n.trim()))
                .ok_or_else(|| invalid("ROUTES", value, format!("{entry:?} is not pattern=name")))?;
            if !pattern.starts_with('/') {
                return Err(invalid("ROUTES", value, format!("pattern {pattern:?} does not start with /")));
            }
            if name.is_empty() || name.len() > 255 || !name.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(invalid(
                    "ROUTES",
                    value,
                    format!("route name {name:?}: 1 to 255 printable ASCII characters"),
                ));
            }
            let segments: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
            if segments.iter().rev().skip(1).any(|s| *s == "**") {
                return Err(invalid(
                    "ROUTES",
                    value,
                    format!("pattern {pattern:?}: ** may only end a pattern"),
                ));
            }
            let segments = segments
                .iter()
                .map(|s| match *s {
                    "*" => Segment::One,
                    "**" => Segment::Rest,
                    literal => Segment::Literal(literal.as_bytes().into()),
                })
                .collect();
            let index = match routes.names.iter().position(|n| n == name) {
                Some(i) => i,
                None if routes.names.len() < max && name != OTHER => {
                    routes.names.push(name.to_owned());
                    routes.names.len() - 1
                }
                // Beyond the limit (or `other` by name): counted under `other`.
                None => usize::MAX,
            };
            routes.patterns.push((segments, index));
        }
        if routes.patterns.is_empty() {
            return Ok(Routes::default());
        }
        let other = routes.names.len();
        routes.names.push(OTHER.to_owned());
        for (_, index) in &mut routes.patterns {
            *index = (*index).min(other);
        }
        Ok(routes)
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The route names, [`OTHER`] last (every `Route` dimension value there can be).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The route of a request as logged: an HTTP request line (`GET http://host:80/a/b?q
    /// HTTP/1.1`, ALB and Classic ELB) or a path (CloudFront's `cs-uri-stem`).
    pub fn route(&self, request: &[u8]) -> &str {
        let path = path_of(request);
        self.patterns
            .iter()
            .find(|(pattern, _)| matches(pattern, path))
            .map_or(OTHER, |(_, index)| &self.names[*index])
    }
}

/// The path of a request line or path, without its query; empty if there is none.
fn path_of(request: &[u8]) -> &[u8] {
    // A request line's target is its second word.
    let target = match memchr::memchr(b' ', request) {
        Some(i) => {
            let rest = &request[i + 1..];
            &rest[..memchr::memchr(b' ', rest).unwrap_or(rest.len())]
        }
        None => request,
    };
    // An absolute URL (ALB logs `http://host:port/path`): the path starts after the host.
    let scheme =
        [&b"https://"[..], b"http://", b"wss://", b"ws://"].into_iter().find(|s| target.starts_with(s));
    let path = match scheme {
        Some(scheme) => {
            let after = &target[scheme.len()..];
            memchr::memchr(b'/', after).map_or(&b""[..], |j| &after[j..])
        }
        None => target,
    };
    &path[..memchr::memchr(b'?', path).unwrap_or(path.len())]
}

fn matches(pattern: &[Segment], path: &[u8]) -> bool {
    if !path.starts_with(b"/") {
        return false;
    }
    let mut segments = path.split(|b| *b == b'/').filter(|s| !s.is_empty());
    for segment in pattern {
        match segment {
            Segment::Rest => return true,
            Segment::One => {
                if segments.next().is_none() {
                    return false;
                }
            }
            Segment::Literal(literal) => {
                if segments.next() != Some(&literal[..]) {
                    return false;
                }
            }
        }
    }
    segments.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_pattern_names_the_route() {
        let routes =
            Routes::parse("/api/users/*=user, /api/users/**=users, /api/orders/**=orders, /=home", 20)
                .unwrap();
        for (request, route) in [
            (&b"GET http://shop.example.com:80/api/users/42 HTTP/1.1"[..], "user"),
            (b"GET https://shop.example.com:443/api/users/42/cart?x=1 HTTP/2.0", "users"),
            (b"GET wss://shop.example.com:443/api/orders HTTP/1.1", "orders"),
            (b"GET http://shop.example.com:80 HTTP/1.1", OTHER),
            (b"POST /api/users HTTP/1.1", "users"),
            (b"/api/orders", "orders"),
            (b"/api/orders/7/items/", "orders"),
            (b"GET http://shop.example.com:80/ HTTP/1.1", "home"),
            (b"/", "home"),
            (b"/static/app.js", OTHER),
            (b"- - - ", OTHER),
            (b"", OTHER),
        ] {
            assert_eq!(routes.route(request), route, "{}", String::from_utf8_lossy(request));
        }
        assert_eq!(routes.names(), ["user", "users", "orders", "home", OTHER]);
    }

    #[test]
    fn routes_beyond_the_limit_are_other() {
        let routes = Routes::parse("/a=a,/b=b,/b2=b,/c=c", 2).unwrap();
        assert_eq!(routes.names(), ["a", "b", OTHER]);
        assert_eq!((routes.route(b"/b2"), routes.route(b"/c")), ("b", OTHER));
    }

    #[test]
    fn bad_configurations_are_refused() {
        for (value, message) in [
            ("/a", "is not pattern=name"),
            ("a=b", "does not start with /"),
            ("/a=", "route name"),
            ("/a=two words", "route name"),
            ("/a/**/b=x", "** may only end"),
        ] {
            let error = Routes::parse(value, 20).unwrap_err();
            assert_eq!(error.name, "ROUTES");
            assert!(error.message.contains(message), "{value}: {}", error.message);
        }
        let env = Env::from_pairs([("ROUTES", "/a=a"), ("ROUTES_MAX", "many")]);
        assert_eq!(from_env(&env).unwrap_err().name, "ROUTES_MAX");
        assert!(from_env(&Env::from_pairs([])).unwrap().is_empty());
    }
}

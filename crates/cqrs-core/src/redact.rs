//! Keeping secrets out of messages: URLs with their passwords and tokens hidden.

/// `url` with its password, and the values of query parameters that look secret
/// (`password`, `token`, `secret`, `key`, ...), replaced by `***`: fit for an error
/// message or a log line. Text that is not a URL is returned unchanged.
///
/// ```
/// use cqrs_core::redact_url;
///
/// assert_eq!(
///     redact_url("postgres://cqrs:hunter2@db:5432/app?sslmode=require&password=x"),
///     "postgres://cqrs:***@db:5432/app?sslmode=require&password=***"
/// );
/// assert_eq!(redact_url("redis://127.0.0.1:6379/"), "redis://127.0.0.1:6379/");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let (scheme, rest) = url.split_at(scheme_end + 3);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (userinfo, host) = authority.split_at(at);
            match userinfo.find(':') {
                Some(colon) => format!("{}:***{host}", &userinfo[..colon]),
                None => format!("{userinfo}{host}"),
            }
        }
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let (query, fragment) = match query.split_once('#') {
                Some((q, f)) => (q, Some(f)),
                None => (query, None),
            };
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if is_secret(name) => format!("{name}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            let fragment = fragment.map(|f| format!("#{f}")).unwrap_or_default();
            format!("{path}?{}{fragment}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}{authority}{tail}")
}

fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "pass",
        "pwd",
        "token",
        "secret",
        "key",
        "credential",
        "signature",
    ]
    .iter()
    .any(|word| name.contains(word))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn hides_passwords_and_secret_parameters_only() {
        for (url, expected) in [
            (
                "mongodb://ada:pw@h1,h2/db?authSource=admin",
                "mongodb://ada:***@h1,h2/db?authSource=admin",
            ),
            (
                "redis://:pw@127.0.0.1:6379/0",
                "redis://:***@127.0.0.1:6379/0",
            ),
            ("postgres://ada@db/app", "postgres://ada@db/app"),
            (
                "postgres://ada:p%40ss@db/app?token=abc#x",
                "postgres://ada:***@db/app?token=***#x",
            ),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redact_url(url), expected);
        }
    }
}

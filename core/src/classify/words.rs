//! Names split into words: snake_case, camelCase, kebab-case, dots,
//! slashes and spaces.

/// Splits a name into word slices, keeping their case: snake_case,
/// camelCase (`getHTTPResponse` → get, HTTP, Response), kebab-case, dots,
/// slashes, spaces. Digits stay with their word.
pub(crate) fn word_slices(name: &str) -> impl Iterator<Item = &str> {
    let mut rest = name;
    std::iter::from_fn(move || {
        let start = rest.find(char::is_alphanumeric)?;
        rest = &rest[start..];
        let mut chars = rest.char_indices().peekable();
        let mut prev: Option<char> = None;
        let mut end = rest.len();
        while let Some((i, c)) = chars.next() {
            if !c.is_alphanumeric() {
                end = i;
                break;
            }
            if let Some(p) = prev {
                let next_lower = chars.peek().is_some_and(|(_, n)| n.is_lowercase());
                let boundary =
                    c.is_uppercase() && (p.is_lowercase() || p.is_numeric() || (p.is_uppercase() && next_lower));
                if boundary {
                    end = i;
                    break;
                }
            }
            prev = Some(c);
        }
        let word = &rest[..end];
        rest = &rest[end..];
        Some(word)
    })
}

/// Splits a tool name into lower-case words: snake_case, camelCase,
/// kebab-case, dots and slashes.
pub fn words(name: &str) -> Vec<String> {
    word_slices(name).map(str::to_lowercase).collect()
}

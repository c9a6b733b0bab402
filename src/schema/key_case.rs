//! Key case: extra context keys are stored in snake case and written in the case the schema
//! asks for.

use std::borrow::Cow;

/// Returns `key` in snake case: `tenantId` → `tenant_id`, `HTTPStatus` → `http_status`.
/// Characters other than ASCII letters are kept as they are. A key without capitals is
/// returned as it is, without allocating.
pub(crate) fn to_snake_case(key: &str) -> Cow<'_, str> {
    if !key.bytes().any(|b| b.is_ascii_uppercase()) {
        return Cow::Borrowed(key);
    }
    let chars: Vec<char> = key.chars().collect();
    let mut out = String::with_capacity(key.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1).copied();
            let starts_word = match prev {
                None | Some('_') => false,
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                Some(_) => false,
            };
            if starts_word {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Returns a snake-case key in camel case: `tenant_id` → `tenantId`. A leading underscore is
/// kept, so `_private` stays `_private`.
pub(crate) fn to_camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper_next = false;
    for (i, c) in snake.chars().enumerate() {
        if c == '_' && i > 0 {
            upper_next = true;
        } else if upper_next {
            out.push(c.to_ascii_uppercase());
            upper_next = false;
        } else {
            out.push(c);
        }
    }
    if upper_next {
        out.push('_');
    }
    out
}

/// Adds a field name to a list, and its snake-case form when that differs: the lists of
/// promoted and redacted names match a field as given or in snake case.
pub(crate) fn push_name_forms(list: &mut Vec<Box<str>>, name: &str) {
    let snake = to_snake_case(name);
    if *snake != *name {
        list.push(snake.into());
    }
    list.push(name.into());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_between_cases() {
        let table = [
            ("tenant_id", "tenant_id", "tenantId"),
            ("tenantId", "tenant_id", "tenantId"),
            ("HTTPStatus", "http_status", "httpStatus"),
            ("userID", "user_id", "userId"),
            ("order2Id", "order2_id", "order2Id"),
            ("already", "already", "already"),
            ("_private", "_private", "_private"),
            ("dotted.key", "dotted.key", "dotted.key"),
            ("trailing_", "trailing_", "trailing_"),
        ];
        for (input, snake, camel) in table {
            assert_eq!(to_snake_case(input), snake, "snake of {input}");
            assert_eq!(
                to_camel_case(&to_snake_case(input)),
                camel,
                "camel of {input}"
            );
        }
    }
}

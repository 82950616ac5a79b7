//! Personalization: `{{first_name}}` and `{{name}}` in a message, filled in per recipient.
//! The wizard's live preview and the dispatcher both render through [`render`], so what staff
//! see is what customers get. A fallback for customers without a name goes after a bar:
//! `Hi {{first_name|there}}`.

/// The placeholders a message may use.
pub const PLACEHOLDERS: [&str; 2] = ["first_name", "name"];

/// One `{{…}}` found in a message: byte range, field name and fallback.
struct Found<'a> {
    start: usize,
    end: usize,
    field: &'a str,
    fallback: &'a str,
}

fn scan(body: &str) -> Vec<Found<'_>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = body[from..].find("{{").map(|i| from + i) {
        let Some(close) = body[open + 2..].find("}}").map(|i| open + 2 + i) else {
            break;
        };
        let inner = &body[open + 2..close];
        let (field, fallback) = inner.split_once('|').unwrap_or((inner, ""));
        out.push(Found {
            start: open,
            end: close + 2,
            field: field.trim(),
            fallback: fallback.trim(),
        });
        from = close + 2;
    }
    out
}

/// Why the message's placeholders cannot be filled in, if they cannot.
pub fn problem(body: &str) -> Option<String> {
    let unknown: Vec<String> = scan(body)
        .into_iter()
        .filter(|f| !PLACEHOLDERS.contains(&f.field))
        .map(|f| format!("{{{{{}}}}}", f.field))
        .collect();
    (!unknown.is_empty()).then(|| {
        format!(
            "Unknown placeholder {}: use {{{{first_name}}}} or {{{{name}}}}.",
            unknown.join(", ")
        )
    })
}

/// The first word of a customer's name.
pub fn first_name(name: &str) -> &str {
    name.split_whitespace().next().unwrap_or("")
}

/// `body` with the placeholders filled in for a customer called `name` (unknown placeholders
/// are left as typed; validation refuses them before anything is sent).
pub fn render(body: &str, name: &str) -> String {
    let mut out = String::with_capacity(body.len() + 16);
    let mut last = 0;
    for f in scan(body) {
        let value = match f.field {
            "first_name" => first_name(name),
            "name" => name.trim(),
            _ => continue,
        };
        out.push_str(&body[last..f.start]);
        out.push_str(if value.is_empty() { f.fallback } else { value });
        last = f.end;
    }
    out.push_str(&body[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_names_with_fallbacks() {
        let body = "Hi {{first_name}} 👋, {{ name }}! {{first_name|there}}";
        assert_eq!(render(body, "Ann  Lee"), "Hi Ann 👋, Ann  Lee! Ann");
        assert_eq!(render(body, ""), "Hi  👋, ! there");
        assert_eq!(render("{{first_name|dear customer}}", " "), "dear customer");
        assert_eq!(render("no placeholders {", "Ann"), "no placeholders {");
        assert_eq!(render("{{first_name", "Ann"), "{{first_name");
        assert_eq!(render("{{nickname}} {{name}}", "Bo"), "{{nickname}} Bo");
    }

    #[test]
    fn unknown_placeholders_are_a_problem() {
        assert_eq!(problem("Hi {{first_name}} {{name|x}}"), None);
        let p = problem("Hi {{nickname}} and {{ city }}").unwrap();
        assert!(p.contains("{{nickname}}, {{city}}"), "{p}");
        assert_eq!(problem("{{ not closed"), None);
    }
}

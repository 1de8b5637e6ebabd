//! Quoting of SQL identifiers and literals.

/// `"name"`, with embedded quotes doubled. Always quoted, so mixed case,
/// spaces and keywords survive.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"schema"."name"`.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// `'text'`, with embedded quotes doubled (standard_conforming_strings on).
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `("a", "b")`, or nothing for a table without columns.
pub fn column_list(columns: &[String]) -> String {
    if columns.is_empty() {
        String::new()
    } else {
        let cols: Vec<String> = columns.iter().map(|c| ident(c)).collect();
        format!(" ({})", cols.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(ident("Order\"Lines"), "\"Order\"\"Lines\"");
        assert_eq!(qualified("Sales Data", "x"), "\"Sales Data\".\"x\"");
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(column_list(&["a".into(), "B c".into()]), " (\"a\", \"B c\")");
        assert_eq!(column_list(&[]), "");
    }
}

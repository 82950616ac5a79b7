//! Substring search over text columns, served by a trigram index on both backends: an FTS5
//! table with the trigram tokenizer on SQLite, pg_trgm GIN indexes on PostgreSQL.

use super::Dialect;

/// Shortest search text a trigram index can serve; shorter text falls back to LIKE.
pub const TRIGRAM: usize = 3;

/// Where a table's search index is: its FTS5 table (SQLite) and the searched columns.
pub struct Searchable {
    /// The searched table; columns are qualified with it (the query may join others).
    pub table: &'static str,
    pub fts_table: &'static str,
    pub columns: &'static [&'static str],
}

/// The search condition (starting with ` AND`, with `$N` for its one parameter) and the
/// parameter's value, or `None` when not searching. Both backends match any substring of any
/// column, ignoring case; `%`, `_` and quotes are literal.
pub fn filter(dialect: Dialect, text: &str, on: &Searchable) -> Option<(String, String)> {
    if text.is_empty() {
        return None;
    }
    let like = |op: &str| {
        let ors: Vec<String> = on
            .columns
            .iter()
            .map(|c| format!("{}.{c} {op} $N ESCAPE '\\'", on.table))
            .collect();
        format!(" AND ({})", ors.join(" OR "))
    };
    Some(match dialect {
        Dialect::Sqlite if text.chars().count() >= TRIGRAM => (
            // A quoted FTS5 phrase is literal: only `"` needs escaping (by doubling).
            format!(
                " AND {}.id IN (SELECT rowid FROM {t} WHERE {t} MATCH $N)",
                on.table,
                t = on.fts_table
            ),
            format!("\"{}\"", text.replace('"', "\"\"")),
        ),
        // SQLite's LIKE ignores ASCII case already.
        Dialect::Sqlite => (like("LIKE"), contains_pattern(text)),
        Dialect::Postgres => (like("ILIKE"), contains_pattern(text)),
    })
}

/// The FROM source and the extra WHERE text for searching `text` in `on`, numbering the one
/// parameter after `*n` (and advancing it); `(table, "")` when not searching.
///
/// On PostgreSQL a trigram search goes behind an `OFFSET 0` fence: the planner then collects
/// the index hits first and sorts them, instead of walking the sort index and testing every
/// row it passes. (Text too short for a trigram is usually common: walking is better there.)
pub fn clause(dialect: Dialect, text: &str, on: &Searchable, n: &mut usize) -> (String, String) {
    let Some((predicate, _)) = filter(dialect, text, on) else {
        return (on.table.to_string(), String::new());
    };
    *n += 1;
    let predicate = predicate.replace("$N", &format!("${n}"));
    if dialect == Dialect::Postgres && text.chars().count() >= TRIGRAM {
        let t = on.table;
        (
            format!("(SELECT * FROM {t} WHERE TRUE{predicate} OFFSET 0) AS {t}"),
            String::new(),
        )
    } else {
        (on.table.to_string(), predicate)
    }
}

/// The value to bind for `clause`'s parameter, if searching.
pub fn value(dialect: Dialect, text: &str, on: &Searchable) -> Option<String> {
    filter(dialect, text, on).map(|(_, v)| v)
}

/// `text` as a LIKE pattern matching it anywhere, with LIKE's wildcards escaped.
pub fn contains_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for ch in text.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const ON: Searchable = Searchable {
        table: "t",
        fts_table: "t_fts",
        columns: &["a", "b"],
    };

    #[test]
    fn like_wildcards_in_search_text_are_literal() {
        assert_eq!(contains_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }

    #[test]
    fn sqlite_uses_the_trigram_index_from_three_characters() {
        let (sql, value) = filter(Dialect::Sqlite, "say \"hi\"", &ON).unwrap();
        assert_eq!(
            sql,
            " AND t.id IN (SELECT rowid FROM t_fts WHERE t_fts MATCH $N)"
        );
        assert_eq!(value, "\"say \"\"hi\"\"\"");
        let (sql, value) = filter(Dialect::Sqlite, "é%", &ON).unwrap();
        assert_eq!(
            sql,
            " AND (t.a LIKE $N ESCAPE '\\' OR t.b LIKE $N ESCAPE '\\')"
        );
        assert_eq!(value, "%é\\%%");
        let (sql, _) = filter(Dialect::Postgres, "abc", &ON).unwrap();
        assert_eq!(
            sql,
            " AND (t.a ILIKE $N ESCAPE '\\' OR t.b ILIKE $N ESCAPE '\\')"
        );
        assert!(filter(Dialect::Postgres, "", &ON).is_none());
    }
}

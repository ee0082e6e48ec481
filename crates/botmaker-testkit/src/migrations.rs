//! Reading the CHECK constraints of a migration's SQL, for the tests that compare
//! them with the domain's enums (the same on every backend).

/// The quoted values of `CHECK (column IN (...))` in a migration (V1's form).
///
/// # Panics
/// When `sql` has no such list for `column` (a test helper).
pub fn check_list(sql: &str, column: &str) -> Vec<String> {
    let start = sql
        .find(&format!("CHECK ({column} IN ("))
        .unwrap_or_else(|| panic!("no CHECK list for {column}"));
    let rest = &sql[start..];
    let open = rest.find("IN (").unwrap() + 4;
    let close = rest[open..].find(')').unwrap() + open;
    rest[open..close]
        .split(',')
        .map(|v| v.trim().trim_matches('\'').to_owned())
        .collect()
}

/// The quoted values of `CHECK (column = 'a' OR column = 'b' ...)` (V2's form),
/// refusing any other term in the chain.
///
/// # Panics
/// When `sql` has no such chain for `column`, or a term of it is anything else.
pub fn check_chain(sql: &str, column: &str) -> Vec<String> {
    let head = format!("CHECK ({column} = ");
    let start = sql
        .find(&head)
        .unwrap_or_else(|| panic!("no CHECK chain for {column}"));
    let rest = &sql[start + "CHECK (".len()..];
    let close = rest.find(')').unwrap();
    rest[..close]
        .split(" OR ")
        .map(|term| {
            let value = term
                .strip_prefix(&format!("{column} = '"))
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or_else(|| panic!("{column}: unexpected term {term:?}"));
            value.to_owned()
        })
        .collect()
}

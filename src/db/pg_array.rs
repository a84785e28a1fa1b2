//! PostgreSQL array literals (`{1,2,3}`, `{"a","b\"c"}`), bound as one text parameter and cast
//! in SQL (`CAST(? AS BIGINT[])`): a whole column of values in one bind, for statements whose
//! row count varies (page ids, bulk inserts through `UNNEST`), so that one statement text serves
//! every size and stays prepared.

/// `{1,2,3}`.
pub fn ints(values: impl IntoIterator<Item = i64>) -> String {
    let mut buffer = itoa::Buffer::new();
    literal(values, |out, v| out.push_str(buffer.format(v)))
}

/// `{1.5,-0.25,1e300}`. Rust's shortest round-trip form, which `float8in` reads back to the same
/// double.
pub fn floats(values: impl IntoIterator<Item = f64>) -> String {
    literal(values, |out, v| out.push_str(&format!("{v:?}")))
}

/// `{"a","b \"c\" \\ d"}`: every element quoted, so that no value is read as `NULL`, and
/// braces, commas and spaces stay part of it; `"` and `\` are escaped with `\`.
pub fn texts<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    literal(values, |out, v| {
        out.push('"');
        for c in v.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    })
}

/// `{e1,e2,…}`, each element written by `element`.
fn literal<T>(
    values: impl IntoIterator<Item = T>,
    mut element: impl FnMut(&mut String, T),
) -> String {
    let mut out = String::from("{");
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        element(&mut out, v);
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(ints([]), "{}");
        assert_eq!(ints([1, -2, i64::MAX]), "{1,-2,9223372036854775807}");
    }

    #[test]
    fn floats_keep_every_digit() {
        assert_eq!(floats([1.5, -0.25, 1e300, 0.1]), "{1.5,-0.25,1e300,0.1}");
    }

    #[test]
    fn texts_are_quoted_and_escaped() {
        assert_eq!(
            texts(["a", "", "NULL", "x,y {z}", r#"say "hi" \o/"#]),
            r#"{"a","","NULL","x,y {z}","say \"hi\" \\o/"}"#
        );
    }
}

//! Which keys two trees of settings differ in, for refusals that name what changed: `train`
//! comparing a recorded run spec with the config's, `sweep` comparing a results directory's
//! sweep.toml with the config given. One walk serves both, over JSON values (TOML converts).

use serde_json::Value;

/// One key whose value differs: dotted path, and the value on each side (`None`: absent).
#[derive(Clone, Debug, PartialEq)]
pub struct Difference {
    pub key: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Every key whose value differs between `before` and `after`, depth first in key order; objects
/// present on both sides are compared key by key, numbers by value (`8` is `8.0`, `6e-3` is
/// `0.006`), arrays element by element.
pub fn differences(before: &Value, after: &Value) -> Vec<Difference> {
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    out
}

fn walk(prefix: &str, before: &Value, after: &Value, out: &mut Vec<Difference>) {
    let (Value::Object(a), Value::Object(b)) = (before, after) else {
        if !same(before, after) {
            out.push(Difference { key: prefix.to_string(), before: Some(before.clone()), after: Some(after.clone()) });
        }
        return;
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match (a.get(key), b.get(key)) {
            (Some(x), Some(y)) => walk(&path, x, y, out),
            (x, y) => out.push(Difference { key: path, before: x.cloned(), after: y.cloned() }),
        }
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        _ => a == b,
    }
}

/// A value as a user would write it: large and small floats in exponent form (`1e13`, `6e-4`),
/// an object as "a table".
pub fn written(value: &Value) -> String {
    match value {
        Value::Object(_) => "a table".into(),
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f != 0.0 && (f.abs() >= 1e5 || f.abs() < 1e-3) {
                format!("{f:e}")
            } else {
                format!("{f:?}")
            }
        }
        Value::Array(items) => format!("[{}]", items.iter().map(written).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

/// A value as written, cut to 60 characters; "absent" for a key one side lacks.
pub fn shown(value: Option<&Value>) -> String {
    let Some(value) = value else { return "absent".into() };
    let text = written(value);
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(59).collect::<String>())
    } else {
        text
    }
}

/// A difference as refusals name it: "grid.span (6.0 there, 4.0 here)", where "there" is the
/// recorded side (`before`) and "here" the one given now.
pub fn there_and_here(difference: &Difference) -> String {
    let (there, here) = match (&difference.before, &difference.after) {
        (Some(Value::String(a)), Some(Value::String(b))) => around_first_difference(a, b),
        (before, after) => (shown(before.as_ref()), shown(after.as_ref())),
    };
    format!("{} ({there} there, {here} here)", difference.key)
}

/// Two long strings cut to the stretch where they first differ (from 20 characters before it),
/// so that a refusal shows the difference instead of the 60 characters they share.
fn around_first_difference(a: &str, b: &str) -> (String, String) {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let first = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let start = if a.len().max(b.len()) > 60 { first.saturating_sub(20) } else { 0 };
    let cut = |text: &[char]| {
        let rest = &text[start.min(text.len())..];
        let mut out = String::from(if start > 0 { "…" } else { "" });
        out.extend(rest.iter().take(59));
        if rest.len() > 59 {
            out.push('…');
        }
        format!("{:?}", out)
    };
    (cut(&a), cut(&b))
}

/// "data differs at source (X there, Y here)", naming up to two keys where the serialized
/// values `there` (recorded) and `here` (now) differ; None when they are equal.
pub fn differs<T: serde::Serialize>(what: &str, there: &T, here: &T) -> Option<String> {
    let (Ok(there), Ok(here)) = (serde_json::to_value(there), serde_json::to_value(here)) else {
        return Some(format!("its {what} does not compare"));
    };
    let found = differences(&there, &here);
    if found.is_empty() {
        return None;
    }
    let keys: Vec<String> = found.iter().take(2).map(there_and_here).collect();
    Some(format!("{what} differs at {}", keys.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_keys_are_dotted_with_both_sides_and_numbers_compare_by_value() {
        let before = json!({"lr": 6e-3, "grid": {"span": 6.0, "sizes": 9}, "flops": [1e12, 1e13], "gone": 1});
        let after = json!({"lr": 0.006, "grid": {"span": 4.0, "sizes": 9.0}, "flops": [1e12, 3e13], "new": "x"});
        let keys: Vec<String> = differences(&before, &after).into_iter().map(|d| d.key).collect();
        assert_eq!(keys, ["flops", "gone", "grid.span", "new"]);
        let gone = &differences(&before, &after)[1];
        assert_eq!((gone.before.clone(), gone.after.clone()), (Some(json!(1)), None));
        assert!(differences(&before, &before).is_empty());
    }

    #[test]
    fn values_are_written_as_a_user_would() {
        assert_eq!(written(&json!([1e12, 6e-4, 0.006, 6.0, 8])), "[1e12, 6e-4, 0.006, 6.0, 8]");
        assert_eq!(written(&json!({"a": 1})), "a table");
        assert_eq!(written(&json!("s")), "\"s\"");
    }

    #[test]
    fn long_strings_are_shown_where_they_differ() {
        let common = "text(files=12, documents=12 (10 train, 2 validation), tokens=5000, tokenizer=cache/";
        let there = json!({ "source": format!("{common}bpe-300-aaaa/tokenizer.json)") });
        let here = json!({ "source": format!("{common}bpe-300-bbbb/tokenizer.json)") });
        let message = differs("data", &there, &here).unwrap();
        assert!(message.contains("\"…nizer=cache/bpe-300-aaaa/tokenizer.json)\" there"), "{message}");
        assert!(message.contains("\"…nizer=cache/bpe-300-bbbb/tokenizer.json)\" here"), "{message}");
        // Short strings as they are.
        let message = differs("data", &json!({ "kind": "synthetic" }), &json!({ "kind": "text" })).unwrap();
        assert_eq!(message, "data differs at kind (\"synthetic\" there, \"text\" here)");
    }
}

//! Numbers for people: counts with their noun in the right number ("1 run", "2 runs") and
//! durations as people say them ("45s", "12m05s", "3h20m"). One home, so every command's
//! output reads the same.

/// `count` and `noun`, plural unless the count is one: "1 run", "0 runs", "2 runs".
pub fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("{count} {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// The first `shown` items joined by commas, then how many more: "a, b, c and 5 more".
pub fn first_of(items: &[String], shown: usize) -> String {
    let mut text = items.iter().take(shown).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > shown {
        text.push_str(&format!(" and {} more", items.len() - shown));
    }
    text
}

/// A duration for people: 45s, 12m05s, 3h20m.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_durations_read_as_people_say_them() {
        assert_eq!(plural(1, "run"), "1 run");
        let items: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        assert_eq!(first_of(&items, 2), "a, b and 1 more");
        assert_eq!(first_of(&items, 3), "a, b, c");
        assert_eq!(plural(0, "point"), "0 points");
        assert_eq!(plural(2, "run"), "2 runs");
        assert_eq!(duration(45.2), "45s");
        assert_eq!(duration(725.0), "12m05s");
        assert_eq!(duration(12_000.0), "3h20m");
    }
}

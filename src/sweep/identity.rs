//! Why a results directory refuses a config, in the user's own terms. A directory belongs to the
//! config whose hash its plan.json holds; a hash alone tells the user nothing they can act on.
//! The directory keeps a copy of the config it was planned from (sweep.toml), so the refusal
//! compares that copy with the config given now, key by key as written, and says either which
//! keys differ (the user edited the config, or gave another one), or that the text is the same,
//! in which case what changed is a file the config names or the sweeplaw that planned it. The
//! second case is refused too: a run trained now might not measure what the finished runs did,
//! and one fit must not mix the two.

use serde_json::Value;

use crate::diff::{differences, there_and_here};

/// At most this many differing keys are named; the rest are counted.
const MAX_NAMED: usize = 4;

/// One sentence on how `planned` (the directory's sweep.toml) and `given` (the config given now)
/// differ, or `None` when either is not a TOML table (then the hashes are all there is to say).
pub fn explain(planned: &str, given: &str) -> Option<String> {
    let as_json = |text: &str| text.parse::<toml::Table>().ok().and_then(|t| serde_json::to_value(t).ok());
    let (planned, given) = (as_json(planned)?, as_json(given)?);
    let mut named: Vec<String> = differences(&planned, &given).iter().map(there_and_here).collect();
    if named.is_empty() {
        return Some(same_text(&given));
    }
    let more = named.len().saturating_sub(MAX_NAMED);
    named.truncate(MAX_NAMED);
    let mut sentence = format!("its sweep.toml differs from this config at {}", named.join(", "));
    if more > 0 {
        sentence.push_str(&format!(" and {more} more key{}", if more == 1 { "" } else { "s" }));
    }
    Some(sentence)
}

/// The sentence for a config whose text equals the directory's copy.
fn same_text(given: &Value) -> String {
    let mut named = Vec::new();
    let get = |section: &str, key: &str| given.get(section).and_then(|s| s.get(key)).and_then(Value::as_str);
    if let Some(centre) = get("grid", "centre").filter(|c| *c != "chinchilla") {
        named.push(format!("grid.centre = {centre:?}"));
    }
    if get("train", "hyperparameters") == Some("tuned") {
        if let Some(table) = get("train", "tuned_table") {
            named.push(format!("train.tuned_table = {table:?}"));
        }
    }
    let files = if named.is_empty() { String::new() } else { format!("a file it names ({}) or ", named.join(", ")) };
    format!(
        "its sweep.toml is this same config, so what changed is {files}the sweeplaw that planned it \
         (an older build identifies a config differently); runs trained now might not measure what \
         its finished runs did, so it is not resumed (fit, plot and report still read it)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLANNED: &str = "# sweeplaw config hash 0123\nname = \"s\"\n[grid]\nspan = 6.0\nsizes = 9\n\
                           [budget]\nflops = [1e12, 1e13]\n[train]\nlr = 6e-3\n";

    #[test]
    fn an_edited_config_is_refused_naming_each_changed_key_with_both_values() {
        let given = "name = \"s\"\n[grid]\nspan = 4.0\nsizes = 9\n[budget]\nflops = [1e12, 3e13]\n\
                     [train]\nlr = 6e-3\nbatch_size = 8\n";
        let why = explain(PLANNED, given).unwrap();
        assert_eq!(
            why,
            "its sweep.toml differs from this config at budget.flops ([1e12, 1e13] there, [1e12, 3e13] here), \
             grid.span (6.0 there, 4.0 here), train.batch_size (absent there, 8 here)"
        );
    }

    #[test]
    fn numbers_compare_by_value_and_comments_and_layout_do_not_count() {
        let given = "name = \"s\" # the same sweep\n[grid]\nsizes = 9.0\nspan = 6\n[budget]\n\
                     flops = [1_000_000_000_000, 1e13]\n[train]\nlr = 0.006\n";
        let why = explain(PLANNED, given).unwrap();
        assert!(why.starts_with("its sweep.toml is this same config"), "{why}");
        assert!(why.contains("the sweeplaw that planned it") && !why.contains("a file it names"), "{why}");
    }

    #[test]
    fn the_same_text_names_the_files_it_reads() {
        let text = "name = \"s\"\n[grid]\ncentre = \"../r/fit.json\"\n[train]\nhyperparameters = \"tuned\"\n\
                    tuned_table = \"../r/tuned.json\"\n";
        let why = explain(text, text).unwrap();
        assert!(
            why.contains("a file it names (grid.centre = \"../r/fit.json\", train.tuned_table = \"../r/tuned.json\")"),
            "{why}"
        );
    }

    #[test]
    fn many_differences_are_counted_past_the_first_few_and_long_values_cut() {
        let given = format!("name = \"t\"\nx = 1\ny = 2\nz = 3\n[grid]\nspan = \"{}\"\n", "w".repeat(80));
        let why = explain(PLANNED, &given).unwrap();
        assert!(why.ends_with(" and 4 more keys"), "{why}");
        assert!(why.contains("grid.span (6.0 there, \"wwww") && why.contains("… here)"), "{why}");
    }

    #[test]
    fn text_that_is_not_toml_leaves_only_the_hashes() {
        assert_eq!(explain("name = ", PLANNED), None);
        assert_eq!(explain(PLANNED, "[grid"), None);
    }
}

//! "Did you mean ...?": the closest known name by edit distance.
//!
//! Names are compared case-insensitively with the optimal string alignment
//! distance (Levenshtein plus swaps of two neighbouring letters, so
//! `replcias` is one edit from `replicas`). Kubernetes spellings are folded
//! first: `initialDelaySeconds` is read as `initial_delay`, so a user coming
//! from a Kubernetes manifest is pointed at drover's field.

/// Optimal string alignment distance between `a` and `b`, in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[n][m]
}

/// The largest distance still worth a suggestion for a name of `len`
/// characters: 1 for short names, then about a third of the length.
fn threshold(len: usize) -> usize {
    match len {
        0..=2 => 0,
        3..=5 => 1,
        _ => (len / 3).max(2),
    }
}

/// Kubernetes' camelCase to snake_case, and `_seconds` dropped
/// (`periodSeconds` -> `period`): drover takes duration strings instead.
fn fold(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 4);
    for (i, c) in word.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    let mut out = out.replace('-', "_");
    for suffix in ["_seconds", "_probe"] {
        if let Some(stem) = out.strip_suffix(suffix) {
            if !stem.is_empty() {
                out = stem.to_string();
            }
        }
    }
    out
}

/// The known name closest to `word`, if one is close enough.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = word.to_lowercase();
    let folded = fold(word);
    let mut best: Option<(usize, &'a str)> = None;
    for &cand in candidates {
        if cand == word {
            continue;
        }
        let cand_lower = cand.to_lowercase();
        let d = if cand_lower == lower || cand_lower == folded {
            0
        } else {
            edit_distance(&lower, &cand_lower).min(edit_distance(&folded, &cand_lower))
        };
        if d <= threshold(cand.chars().count()) && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, cand));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("replica", "replicas"), 1);
        assert_eq!(edit_distance("replcias", "replicas"), 1);
        assert_eq!(edit_distance("Allways", "Always"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn suggestions() {
        let fields = ["replicas", "selector", "template"];
        assert_eq!(closest("replica", &fields), Some("replicas"));
        assert_eq!(closest("templates", &fields), Some("template"));
        assert_eq!(closest("zzz", &fields), None);
        let probe = ["initial_delay", "period", "timeout"];
        assert_eq!(
            closest("initialDelaySeconds", &probe),
            Some("initial_delay")
        );
        assert_eq!(closest("periodSeconds", &probe), Some("period"));
        let process = ["liveness", "readiness"];
        assert_eq!(closest("readinessProbe", &process), Some("readiness"));
        let policies = ["Always", "OnFailure", "Never"];
        assert_eq!(closest("always", &policies), Some("Always"));
        assert_eq!(closest("on_failure", &policies), Some("OnFailure"));
    }
}

//! Tokenization for full-text search, the same for indexing and for queries, and the same on
//! both databases (they index the tokens this produces, not the raw text).
//!
//! Latin-script text is split into lower-cased words. Chinese (and other CJK) text has no
//! spaces, so each run of CJK characters yields its single characters and every pair of
//! neighbours: a two-character query such as 数据 then matches 数据库 and 大数据平台.

/// Whether `c` is written without spaces between words.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK Extension A
        | 0x4E00..=0x9FFF    // CJK Unified Ideographs
        | 0xAC00..=0xD7AF    // Hangul
        | 0xF900..=0xFAFF    // CJK Compatibility Ideographs
        | 0x20000..=0x2FFFF) // Extensions B+
}

/// The tokens of `text`, in order, possibly repeated.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut cjk: Vec<char> = Vec::new();
    let flush_word = |word: &mut String, out: &mut Vec<String>| {
        if !word.is_empty() {
            out.push(std::mem::take(word));
        }
    };
    let flush_cjk = |cjk: &mut Vec<char>, out: &mut Vec<String>| {
        for (i, c) in cjk.iter().enumerate() {
            out.push(c.to_string());
            if let Some(next) = cjk.get(i + 1) {
                out.push(format!("{c}{next}"));
            }
        }
        cjk.clear();
    };
    for c in text.chars() {
        if is_cjk(c) {
            flush_word(&mut word, &mut out);
            cjk.push(c);
        } else if c.is_alphanumeric() {
            flush_cjk(&mut cjk, &mut out);
            word.extend(c.to_lowercase());
        } else {
            flush_word(&mut word, &mut out);
            flush_cjk(&mut cjk, &mut out);
        }
    }
    flush_word(&mut word, &mut out);
    flush_cjk(&mut cjk, &mut out);
    out
}

/// The text an index stores: tokens joined by spaces.
pub fn index_text(parts: &[&str]) -> String {
    parts.iter().flat_map(|p| tokens(p)).collect::<Vec<_>>().join(" ")
}

/// The tokens a query must all match. CJK runs of two or more characters need only their
/// pairs (the single characters add nothing but noise).
pub fn query_tokens(query: &str) -> Vec<String> {
    let all = tokens(query);
    let has_pairs = |t: &String| t.chars().count() == 2 && t.chars().all(is_cjk);
    let mut out: Vec<String> = Vec::new();
    for (i, t) in all.iter().enumerate() {
        let single_cjk = t.chars().count() == 1 && t.chars().all(is_cjk);
        // Keep a lone CJK character only if no pair covers it.
        let covered = single_cjk
            && (all.get(i + 1).is_some_and(has_pairs)
                || (i > 0 && all.get(i - 1).is_some_and(|p| has_pairs(p) && p.ends_with(t.as_str()))));
        if !covered && !out.contains(t) {
            out.push(t.clone());
        }
    }
    out.truncate(16);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin_words_are_lowercased() {
        assert_eq!(tokens("Acme Uptime-Monitor, v2!"), vec!["acme", "uptime", "monitor", "v2"]);
    }

    #[test]
    fn chinese_runs_give_characters_and_pairs() {
        assert_eq!(tokens("大数据"), vec!["大", "大数", "数", "数据", "据"]);
        assert_eq!(tokens("云ERP系统"), vec!["云", "erp", "系", "系统", "统"]);
    }

    #[test]
    fn a_chinese_query_matches_inside_longer_words() {
        let indexed = index_text(&["大数据平台"]);
        let words: Vec<&str> = indexed.split(' ').collect();
        for t in query_tokens("数据") {
            assert!(words.contains(&t.as_str()), "{t} not indexed");
        }
        assert_eq!(query_tokens("数据"), vec!["数据"]);
        assert_eq!(query_tokens("云"), vec!["云"]);
        assert_eq!(query_tokens("Data 平台"), vec!["data", "平台"]);
    }
}

//! License codes (seed §21): their shape, the status a code shows (following its
//! subscription), and the rules for a seller's uploaded pool.

use std::collections::BTreeSet;

use crate::identity::string_enum;

string_enum!(
    /// What a code's holder may do, from its subscription's state: `alive` while the
    /// subscription is pending or active, `expired` in the grace period, `released` after.
    LicenseStatus { Alive => "alive", Expired => "expired", Released => "released" }
);

impl LicenseStatus {
    pub fn of_subscription(state: &str) -> Self {
        match state {
            "pending_fulfillment" | "active" => Self::Alive,
            "expired" => Self::Expired,
            _ => Self::Released,
        }
    }
}

/// Characters of generated codes: no 0/O or 1/I, so a code read aloud or typed is unambiguous.
const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A generated code from 20 random bytes: five groups of five, `XXXXX-XXXXX-XXXXX-XXXXX-XXXXX`
/// (125 bits). The randomness is passed in, which keeps this pure.
pub fn generate(random: [u8; 25]) -> String {
    let chars: Vec<char> = random.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect();
    chars.chunks(5).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

/// The most codes one upload may hold, and the longest code.
pub const MAX_POOL_ROWS: usize = 100_000;
pub const MAX_CODE_LEN: usize = 200;
/// Fewer available codes than this warns the seller.
pub const LOW_STOCK: i64 = 10;

/// What an uploaded pool file held.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PoolFile {
    /// Distinct valid codes, in file order.
    pub codes: Vec<String>,
    /// Codes that appeared again in the file.
    pub duplicates: usize,
    /// (1-based line, why) for rows refused.
    pub errors: Vec<(usize, String)>,
}

/// Parses a pool upload: one code per line (the first column of a CSV; a header line
/// `code` is skipped). Codes are trimmed; blank lines are ignored.
pub fn parse_pool(text: &str) -> PoolFile {
    let mut out = PoolFile::default();
    let mut seen = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let code = line.split(',').next().unwrap_or("").trim().trim_matches('"').trim();
        if code.is_empty() || (n == 1 && code.eq_ignore_ascii_case("code")) {
            continue;
        }
        if out.codes.len() + out.errors.len() >= MAX_POOL_ROWS {
            out.errors.push((n, format!("more than {MAX_POOL_ROWS} rows in one file")));
            break;
        }
        if code.chars().count() > MAX_CODE_LEN {
            out.errors.push((n, format!("longer than {MAX_CODE_LEN} characters")));
        } else if code.chars().any(|c| c.is_control() || c.is_whitespace()) {
            out.errors.push((n, "contains spaces or control characters".into()));
        } else if !seen.insert(code.to_owned()) {
            out.duplicates += 1;
        } else {
            out.codes.push(code.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_are_grouped_and_unambiguous() {
        let c = generate([7; 25]);
        assert_eq!(c.len(), 29);
        assert_eq!(c.matches('-').count(), 4);
        assert!(!c.contains('0') && !c.contains('O') && !c.contains('I') && !c.contains('1'));
        assert_ne!(generate([1; 25]), generate([2; 25]));
    }

    #[test]
    fn statuses_follow_the_subscription() {
        assert_eq!(LicenseStatus::of_subscription("active"), LicenseStatus::Alive);
        assert_eq!(LicenseStatus::of_subscription("expired"), LicenseStatus::Expired);
        assert_eq!(LicenseStatus::of_subscription("cancelled"), LicenseStatus::Released);
        assert_eq!(LicenseStatus::of_subscription("released"), LicenseStatus::Released);
    }

    #[test]
    fn pool_files_lose_duplicates_and_report_bad_rows() {
        let f = parse_pool("code\nAAA-1\n\nBBB-2,extra column\nAAA-1\nbad code\n\"CCC-3\"\n");
        assert_eq!(f.codes, vec!["AAA-1", "BBB-2", "CCC-3"]);
        assert_eq!(f.duplicates, 1);
        assert_eq!(f.errors, vec![(6, "contains spaces or control characters".to_owned())]);
        let long = format!("{}\n", "x".repeat(201));
        assert_eq!(parse_pool(&long).errors[0].0, 1);
    }
}

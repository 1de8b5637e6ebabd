//! What the leak scan remembers and looks up: the keys of a value. An
//! original is remembered whole (when long enough to identify), with its
//! identifying tokens (emails, runs of six digits or more) and the digits of
//! its phone-like spans; a field is looked up the same way, or whole only
//! for types without words.
//!
//! What a remembered key is matters for the verdict ([`Shape`]): an email,
//! a phone number's digits or a long number identifies on its own; a whole
//! original of two words or more, or with digits (a full name, a street
//! address), identifies when its column's values are mostly distinct; a
//! single word (a first name, a city) identifies nobody alone, and counts
//! only when a kept column is a copy of such words.

/// What kind of key a remembered original gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// An email address, a run of six digits or more, a phone number's
    /// digits: evidence wherever it is found.
    Identifying,
    /// A whole original of two words or more, or with digits: a full name,
    /// a street address.
    Phrase,
    /// A whole original of one word without digits: a first name, a city.
    Word,
}

impl Shape {
    /// The shape of a whole original.
    pub fn of_whole(value: &[u8]) -> Shape {
        let text = String::from_utf8_lossy(value);
        if identifying(text.trim()) {
            return Shape::Identifying;
        }
        let words = text.split_whitespace().count();
        if words >= 2 || value.iter().any(u8::is_ascii_digit) {
            Shape::Phrase
        } else {
            Shape::Word
        }
    }
}

/// Whether `needle` occurs in `hay`. Fields and keys are short: finding the
/// first byte and comparing beats building a substring searcher per key.
pub(super) fn occurs(hay: &[u8], needle: &[u8]) -> bool {
    match needle.split_first() {
        None => true,
        Some((&first, _)) => {
            needle.len() <= hay.len()
                && memchr::memchr_iter(first, &hay[..=hay.len() - needle.len()]).any(|at| hay[at..].starts_with(needle))
        }
    }
}

/// Visits the keys of a value, as [`Bloom::remember`] stores them and
/// [`Bloom::slots`] looks up a text field's, until `visit` returns true (and then
/// returns true): the whole value when it is worth it, its identifying
/// tokens (with `every_token`, also a token that is the whole value), and
/// `#` + the digits of each phone-like span. The order of the keys is not
/// part of the contract.
///
/// ASCII values, nearly all, take one pass over their bytes; others go
/// through the `char` functions below, which define the same keys.
pub(super) fn keys(value: &[u8], every_token: bool, mut visit: impl FnMut(&[u8]) -> bool) -> bool {
    if !value.is_ascii() {
        // A field that is not UTF-8 is tested as its lossy decoding.
        let value = String::from_utf8_lossy(value);
        let value = value.as_ref();
        return (worth(value) && visit(value.as_bytes()))
            || tokens(value)
                .filter(|t| (every_token || t.len() != value.len()) && identifying(t))
                .any(|t| visit(t.as_bytes()))
            || digit_runs(value).any(|d| visit(d.as_bytes()));
    }
    let b = value;
    // One pass, without a branch that depends on the kind of each byte (hex
    // and random digits would mispredict it): byte classes from a table,
    // counters and selects. Branches are taken only where a token or a run of
    // phone characters ends holding enough to be a key, which is rare.
    let mut all: u8 = !0;
    // The current token: where it starts, and its score (one a digit, 1 << 20
    // an `@`): it may identify when the score reaches 6.
    let (mut tok_start, mut tok_score) = (0usize, 0u32);
    // The current run of phone characters: where it starts, its digits.
    let (mut run_start, mut run_digits) = (0usize, 0usize);
    for (i, &c) in b.iter().enumerate() {
        let k = CLASSES[c as usize];
        all &= k;
        let sep = k & SEPARATOR != 0;
        if sep & (tok_score >= 6) && token(b, tok_start, i, tok_score, every_token, &mut visit) {
            return true;
        }
        tok_start = if sep { i + 1 } else { tok_start };
        // Masks instead of branches: all ones to keep counting, zero to restart.
        tok_score = (tok_score + SCORES[c as usize]) & u32::from(sep).wrapping_sub(1);
        let span = k & SPAN != 0;
        if !span & (run_digits >= 8) && phone_key(&b[run_start..i], &mut visit) {
            return true;
        }
        run_start = if span { run_start } else { i + 1 };
        run_digits = (run_digits + usize::from(k & DIGIT)) & usize::from(span).wrapping_neg();
    }
    if tok_score >= 6 && token(b, tok_start, b.len(), tok_score, every_token, &mut visit) {
        return true;
    }
    if run_digits >= 8 && phone_key(&b[run_start..], &mut visit) {
        return true;
    }
    let numeric = all & NUMERIC != 0;
    b.len() >= 4 && (!numeric || b.len() >= 8) && visit(b)
}

/// An `@` in a token's score: more than any count of digits that matters.
const AT_SCORE: u32 = 1 << 20;

/// A token of an ASCII value that may identify (its `score` is 6 or more):
/// `b[start..end]` trimmed, visited when it is an email address or holds
/// six digits or more.
fn token(
    b: &[u8],
    start: usize,
    end: usize,
    score: u32,
    every_token: bool,
    visit: &mut impl FnMut(&[u8]) -> bool,
) -> bool {
    let t = trim_ascii_token(&b[start..end]);
    if t.is_empty() || (!every_token && t.len() == b.len()) {
        return false;
    }
    if score < AT_SCORE {
        // Six digits or more, and no `@`: trimming keeps every digit.
        return visit(t);
    }
    let (mut at, mut dot, mut d) = (false, false, 0);
    for &c in t {
        at |= c == b'@';
        dot |= c == b'.';
        d += usize::from(c.is_ascii_digit());
    }
    ((at && dot && t.len() >= 6) || d >= 6) && visit(t)
}

/// The key of a run of phone characters with eight digits or more: `#` + its digits.
fn phone_key(run: &[u8], visit: &mut impl FnMut(&[u8]) -> bool) -> bool {
    let mut key = Vec::with_capacity(run.len() + 1);
    key.push(b'#');
    key.extend(run.iter().filter(|c| c.is_ascii_digit()));
    visit(&key)
}

/// The keys of a field tested whole: the value (when worth it), and `#` +
/// its digits when it is made only of a phone number's characters.
pub(super) fn whole_keys(value: &[u8], mut visit: impl FnMut(&[u8]) -> bool) -> bool {
    let b = value;
    // One pass, branch-free: the classes all bytes share, and the digits.
    let (mut all, mut any, mut digits) = (!0u8, 0u8, 0usize);
    for &c in b {
        let k = CLASSES[c as usize];
        all &= k;
        any |= c;
        digits += usize::from(k & DIGIT);
    }
    let visited = if any < 0x80 {
        b.len() >= 4 && (all & NUMERIC == 0 || b.len() >= 8) && visit(b)
    } else {
        // A field that is not UTF-8 is tested as its lossy decoding.
        let value = String::from_utf8_lossy(b);
        worth(&value) && visit(value.as_bytes())
    };
    if visited {
        return true;
    }
    digits >= 8 && all & PHONE != 0 && phone_key(b, &mut visit)
}

/// Byte classes of ASCII text, for the one-pass key finders.
const DIGIT: u8 = 1;
/// What [`worth`] counts as part of a number: digits and `.-+ ,:`.
const NUMERIC: u8 = 2;
/// What a phone-like run is made of inside a text: digits and ` ().-`.
const SPAN: u8 = 4;
/// What [`tokens`] splits on.
const SEPARATOR: u8 = 8;
/// What a whole phone number is made of: digits and `+-. ()`.
const PHONE: u8 = 32;

/// What a byte adds to its token's score ([`keys`]).
const SCORES: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut c = b'0';
    while c <= b'9' {
        t[c as usize] = 1;
        c += 1;
    }
    t[b'@' as usize] = AT_SCORE;
    t
};

/// Adds `class` to each of `bytes` in a table of byte classes.
const fn with_class(mut table: [u8; 256], bytes: &[u8], class: u8) -> [u8; 256] {
    let mut i = 0;
    while i < bytes.len() {
        table[bytes[i] as usize] |= class;
        i += 1;
    }
    table
}

const CLASSES: [u8; 256] = {
    let t = with_class([0; 256], b"0123456789", DIGIT | NUMERIC | SPAN | PHONE);
    let t = with_class(t, b".-+ ,:", NUMERIC);
    let t = with_class(t, b" ().-", SPAN);
    let t = with_class(t, b"+-. ()", PHONE);
    with_class(t, b" \t\n\x0b\x0c\r,;()<>\"'[]{}|\\/!?=", SEPARATOR)
};

fn trim_ascii_token(mut t: &[u8]) -> &[u8] {
    while let [b'.' | b':' | b'-', rest @ ..] = t {
        t = rest;
    }
    while let [rest @ .., b'.' | b':' | b'-'] = t {
        t = rest;
    }
    t
}

/// Values too short or too generic to identify anyone are not remembered.
fn worth(v: &str) -> bool {
    let len = v.chars().count();
    if len < 4 {
        return false;
    }
    let numeric = v.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | ' ' | ',' | ':'));
    !numeric || len >= 8
}

/// Tokens that identify on their own: an email address, or a run of six or
/// more digits. Ordinary words are not remembered: text that a masker keeps
/// on purpose (around the spans pii_scrub replaces, product names) would
/// otherwise look like a leak.
fn identifying(t: &str) -> bool {
    (t.contains('@') && t.contains('.') && t.len() >= 6) || t.chars().filter(|c| c.is_ascii_digit()).count() >= 6
}

/// The digits of phone-like spans (digits with spaces, dots, dashes,
/// brackets, a leading +), when there are at least eight: `#` + digits.
fn digit_runs(s: &str) -> impl Iterator<Item = String> + '_ {
    // Most fields have too few digits to hold a phone number: skip the regex.
    let enough = s.bytes().filter(u8::is_ascii_digit).count() >= 8;
    static RE: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| regex::Regex::new(r"[+(]?[0-9][0-9 ().\-]{6,}[0-9]").ok());
    re.iter().filter(move |_| enough).flat_map(move |re| re.find_iter(s)).filter_map(|m| {
        let digits: String = m.as_str().chars().filter(|c| c.is_ascii_digit()).collect();
        (digits.len() >= 8).then(|| format!("#{digits}"))
    })
}

/// Word-like tokens: split on white space and punctuation that never belongs
/// to an email, a phone number or an identifier.
fn tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                ',' | ';'
                    | '('
                    | ')'
                    | '<'
                    | '>'
                    | '"'
                    | '\''
                    | '['
                    | ']'
                    | '{'
                    | '}'
                    | '|'
                    | '\\'
                    | '/'
                    | '!'
                    | '?'
                    | '='
            )
    })
    .map(|t| t.trim_matches(|c: char| matches!(c, '.' | ':' | '-')))
    .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys of the `char` functions, which define them.
    fn reference_keys(value: &str, every_token: bool) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if worth(value) {
            out.push(value.as_bytes().to_vec());
        }
        out.extend(
            tokens(value)
                .filter(|t| (every_token || t.len() != value.len()) && identifying(t))
                .map(|t| t.as_bytes().to_vec()),
        );
        out.extend(digit_runs(value).map(String::into_bytes));
        out.sort();
        out
    }

    /// The keys the fast functions visit, sorted (their order is not part
    /// of the contract).
    fn fast_keys(visit_all: impl FnOnce(&mut dyn FnMut(&[u8]) -> bool)) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        visit_all(&mut |k| {
            out.push(k.to_vec());
            false
        });
        out.sort();
        out
    }

    proptest::proptest! {
        #[test]
        fn the_ascii_pass_finds_the_keys_the_char_functions_define(
            value in "[a-c0-9@.:+() \\-,;/=\t\x0b]{0,40}",
            every_token: bool,
        ) {
            let fast = fast_keys(|v| {
                keys(value.as_bytes(), every_token, v);
            });
            proptest::prop_assert_eq!(fast, reference_keys(&value, every_token));
        }

        #[test]
        fn whole_values_give_the_keys_of_the_char_rules(value in "[0-9a-c .:,+()\\-é]{0,24}") {
            let fast = fast_keys(|v| {
                whole_keys(value.as_bytes(), v);
            });
            let mut reference = Vec::new();
            if worth(&value) {
                reference.push(value.as_bytes().to_vec());
            }
            let digits: Vec<u8> = value.bytes().filter(u8::is_ascii_digit).collect();
            if digits.len() >= 8 && value.bytes().all(|b| b.is_ascii_digit() || b"+-. ()".contains(&b)) {
                reference.push([b"#".as_slice(), &digits].concat());
            }
            reference.sort();
            proptest::prop_assert_eq!(fast, reference);
        }

        #[test]
        fn the_ascii_pass_finds_phone_numbers_as_the_char_functions_do(
            value in "[0-9 ().+\\-]{0,30}[a@.x]?[0-9 ().\\-]{0,20}",
        ) {
            let fast = fast_keys(|v| {
                keys(value.as_bytes(), true, v);
            });
            proptest::prop_assert_eq!(fast, reference_keys(&value, true));
        }
    }

    proptest::proptest! {
        #[test]
        fn occurs_finds_what_a_window_search_finds(hay in "[ab]{0,12}", needle in "[ab]{0,4}") {
            let reference = needle.is_empty() || hay.as_bytes().windows(needle.len()).any(|w| w == needle.as_bytes());
            proptest::prop_assert_eq!(occurs(hay.as_bytes(), needle.as_bytes()), reference);
        }
    }
}

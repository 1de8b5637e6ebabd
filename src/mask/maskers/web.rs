//! Web identifiers: URLs with their personal parts replaced, domain names,
//! user agents.

use super::super::{MaskError, Masker, Seeder};
use super::{ascii_slug, pick, tag, Locale};

/// A keyed token standing for `part`: lower-case base32 of its seed, of
/// the part's length (at most 16 characters), so a URL never grows.
fn token(s: &Seeder, part: &str) -> String {
    tag(&s.seed(part.as_bytes()), part.chars().count().clamp(1, 16))
}

/// File extensions a masked path segment keeps.
const FILE_EXTENSIONS: &[&str] = &[
    "html", "htm", "php", "asp", "aspx", "jsp", "json", "xml", "txt", "csv", "pdf", "png", "jpg", "jpeg", "gif", "svg",
    "webp", "ico", "js", "css", "zip", "gz", "mp3", "mp4", "doc", "docx", "xls", "xlsx",
];

/// Keeps a URL's scheme, host and port, the names of its query parameters
/// and its shape; replaces user information, every path segment (but the
/// file extension), every query value and the fragment by keyed tokens, so
/// one path always maps to one path.
pub struct Url {
    pub keep_path: bool,
}
impl Masker for Url {
    fn mask(&self, v: &str, s: &Seeder) -> Result<Option<String>, MaskError> {
        let (scheme, rest) = v.split_once("://").ok_or_else(|| MaskError("not a URL (no scheme://)".into()))?;
        if scheme.is_empty() || !scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
            return Err(MaskError("not a URL".into()));
        }
        let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(auth_end);
        let host = match authority.rsplit_once('@') {
            Some((user, host)) => format!("{}@{host}", token(s, user)),
            None => authority.to_string(),
        };
        let (before_frag, fragment) = match tail.split_once('#') {
            Some((b, f)) => (b, Some(f)),
            None => (tail, None),
        };
        let (path, query) = match before_frag.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (before_frag, None),
        };
        let mut out = format!("{scheme}://{host}");
        if self.keep_path {
            out.push_str(path);
        } else {
            let segments: Vec<String> = path
                .split('/')
                .map(|seg| {
                    if seg.is_empty() {
                        return String::new();
                    }
                    // Only a known file extension stays: "alice.smith" is a name.
                    match seg.rsplit_once('.') {
                        Some((stem, ext))
                            if !stem.is_empty() && FILE_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()) =>
                        {
                            format!("{}.{ext}", token(s, stem))
                        }
                        _ => token(s, seg),
                    }
                })
                .collect();
            out.push_str(&segments.join("/"));
        }
        if let Some(q) = query {
            out.push('?');
            let pairs: Vec<String> = q
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, "")) => format!("{k}="),
                    Some((k, val)) => format!("{k}={}", token(s, val)),
                    // A bare value (`?alice@example.com`) is data, not a name.
                    None if pair.is_empty() => String::new(),
                    None => token(s, pair),
                })
                .collect();
            out.push_str(&pairs.join("&"));
        }
        if let Some(f) = fragment {
            out.push('#');
            if !f.is_empty() {
                out.push_str(&token(s, f));
            }
        }
        Ok(Some(out))
    }
}

/// `lastname-tag.example.com`: unique in practice (65-bit tag, as email).
pub struct DomainName {
    pub locale: Locale,
    /// The column's length: the name part is shortened to fit, the tag kept.
    pub max_chars: Option<usize>,
}
impl Masker for DomainName {
    fn mask(&self, v: &str, s: &Seeder) -> Result<Option<String>, MaskError> {
        let seed = s.seed(v.as_bytes());
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::from_seed(seed);
        let mut name = ascii_slug(pick(&mut rng, self.locale.last_names));
        // "-" + 13-character tag + ".example.com" take 26.
        if let Some(max) = self.max_chars {
            name.truncate(max.saturating_sub(26).max(1));
        }
        Ok(Some(format!("{name}-{}.example.com", tag(&seed, 13))))
    }
}

/// A browser user agent from a list.
pub struct UserAgent {
    pub agents: &'static [&'static str],
}
impl Masker for UserAgent {
    fn mask(&self, v: &str, s: &Seeder) -> Result<Option<String>, MaskError> {
        Ok(Some(pick(&mut s.rng(v.as_bytes()), self.agents).to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::MaskKey;

    #[test]
    fn urls_keep_host_and_shape() {
        let k = MaskKey::from_material(b"web-test-key-0123456789abcdef").unwrap();
        let s = k.seeder("d", "url");
        let u = Url { keep_path: false };
        let out = u
            .mask("https://bob:pw@shop.example.org:8443/users/alice.smith/avatar.png?id=42&ref=&x#top", &s)
            .unwrap()
            .unwrap();
        assert!(out.starts_with("https://") && out.contains("@shop.example.org:8443/"), "{out}");
        assert_eq!(out.split('/').count(), 6, "{out}");
        assert!(
            !out.contains("alice")
                && !out.contains("smith")
                && !out.contains("bob")
                && !out.contains("=42")
                && out.contains(".png?id="),
            "{out}"
        );
        assert!(out.contains("&ref=&"), "{out}");
        let bare = u.mask("https://x.example/unsubscribe?alice@example.com&flag", &s).unwrap().unwrap();
        assert!(!bare.contains("alice") && !bare.contains("flag"), "{bare}");
        assert_eq!(
            out,
            u.mask("https://bob:pw@shop.example.org:8443/users/alice.smith/avatar.png?id=42&ref=&x#top", &s)
                .unwrap()
                .unwrap()
        );
        assert!(u.mask("not a url", &s).is_err());
        assert_eq!(u.mask("https://example.org", &s).unwrap().unwrap(), "https://example.org");
    }
}

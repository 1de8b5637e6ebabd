//! Signed snapshots: provenance a developer can check.
//!
//! A nightly job that holds the signing key signs the manifest, which names
//! every file of the snapshot with its size and SHA-256 (and the snapshot
//! id). The signature is stored beside it (`manifest.sig`), written before
//! the manifest, so a snapshot is signed from the moment it is visible. A
//! restore, verify or export with trusted public keys refuses a snapshot
//! that is unsigned, signed by another key, or whose manifest does not
//! match its signature; every file is then checked against the manifest as
//! it is read. Keys are Ed25519, in standard PEM files (PKCS#8 for the
//! private key, SPKI for the public one).

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

/// Name of the signature object inside a snapshot.
pub const SIGNATURE: &str = "manifest.sig";
const FORMAT: &str = "scrubsnap-signature";

/// A key or signature that cannot be used. Names files, never key bytes.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("cannot read the key file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path} is not an Ed25519 {what} key in PEM (write one with `scrubsnap keys generate`)")]
    Parse { path: String, what: &'static str },
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
}

/// A public key a restore trusts, with its fingerprint.
#[derive(Debug, Clone)]
pub struct Trusted {
    pub key: VerifyingKey,
    pub fingerprint: String,
}

/// The signing key of a create.
pub struct SnapshotSigner {
    key: SigningKey,
    pub fingerprint: String,
}

impl std::fmt::Debug for SnapshotSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SnapshotSigner(<redacted>, {})", self.fingerprint)
    }
}

/// `ed25519:` and the first 16 hex digits of the SHA-256 of the public key.
pub fn fingerprint(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("ed25519:{}", hex::encode(&digest[..8]))
}

impl SnapshotSigner {
    /// Loads a private key file (PEM, PKCS#8).
    pub fn load(path: &std::path::Path) -> Result<Self, SignatureError> {
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| SignatureError::Read { path: path.display().to_string(), reason: e.to_string() })?,
        );
        let key = SigningKey::from_pkcs8_pem(&text)
            .map_err(|_| SignatureError::Parse { path: path.display().to_string(), what: "private" })?;
        let fingerprint = fingerprint(&key.verifying_key());
        Ok(SnapshotSigner { key, fingerprint })
    }

    /// The signature file of a manifest's exact bytes.
    pub fn sign(&self, manifest: &[u8]) -> Vec<u8> {
        let signature = self.key.sign(manifest);
        let doc = serde_json::json!({
            "format": FORMAT,
            "algorithm": "ed25519",
            "key": self.fingerprint,
            "signature": hex::encode(signature.to_bytes()),
        });
        let mut bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

/// Loads a public key file (PEM, SPKI).
pub fn load_trusted(path: &std::path::Path) -> Result<Trusted, SignatureError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SignatureError::Read { path: path.display().to_string(), reason: e.to_string() })?;
    let key = VerifyingKey::from_public_key_pem(&text)
        .map_err(|_| SignatureError::Parse { path: path.display().to_string(), what: "public" })?;
    Ok(Trusted { fingerprint: fingerprint(&key), key })
}

/// Writes a new key pair: the private key readable by this user only.
pub fn generate(private: &std::path::Path, public: &std::path::Path) -> Result<String, SignatureError> {
    use std::io::Write;
    let seed = zeroize::Zeroizing::new(rand::random::<[u8; 32]>());
    let key = SigningKey::from_bytes(&seed);
    let write_err =
        |path: &std::path::Path, reason: String| SignatureError::Write { path: path.display().to_string(), reason };
    let pem = key
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map_err(|e| write_err(private, e.to_string()))?;
    let public_pem = key
        .verifying_key()
        .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map_err(|e| write_err(public, e.to_string()))?;
    // A private key is never overwritten: that would lose the key a store's
    // snapshots were signed with.
    let mut file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(private)
    }
    .map_err(|e| write_err(private, e.to_string()))?;
    file.write_all(pem.as_bytes()).map_err(|e| write_err(private, e.to_string()))?;
    std::fs::write(public, public_pem).map_err(|e| write_err(public, e.to_string()))?;
    Ok(fingerprint(&key.verifying_key()))
}

/// Who signed a snapshot, as its signature file says (not yet verified).
pub fn claimed_key(signature: &[u8]) -> Option<String> {
    let doc: serde_json::Value = serde_json::from_slice(signature).ok()?;
    (doc.get("format")?.as_str()? == FORMAT).then(|| doc.get("key")?.as_str().map(str::to_string))?
}

/// Why a snapshot's signature does not check out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No signature file.
    Unsigned,
    /// Signed, but by none of the trusted keys (its fingerprint, if given).
    UnknownKey(String),
    /// The manifest is not what was signed (or the signature is malformed).
    Mismatch,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Unsigned => write!(f, "it is not signed (--allow-unsigned loads it anyway)"),
            Refusal::UnknownKey(k) => write!(f, "it is signed by {k}, which is not a trusted key"),
            Refusal::Mismatch => write!(f, "its manifest does not match its signature: it was altered after signing"),
        }
    }
}

/// Checks a signature file against a manifest's exact bytes and the
/// trusted keys; returns the fingerprint of the key that signed it.
pub fn check(manifest: &[u8], signature: Option<&[u8]>, trusted: &[Trusted]) -> Result<String, Refusal> {
    let Some(signature) = signature else { return Err(Refusal::Unsigned) };
    let doc: serde_json::Value = serde_json::from_slice(signature).map_err(|_| Refusal::Mismatch)?;
    let claimed = doc.get("key").and_then(|k| k.as_str()).unwrap_or("an unnamed key").to_string();
    let bytes = doc
        .get("signature")
        .and_then(|s| s.as_str())
        .and_then(|s| hex::decode(s).ok())
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .ok_or(Refusal::Mismatch)?;
    if doc.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(Refusal::Mismatch);
    }
    let signature = ed25519_dalek::Signature::from_bytes(&bytes);
    let Some(key) = trusted.iter().find(|t| t.fingerprint == claimed) else {
        return Err(Refusal::UnknownKey(claimed));
    };
    key.key.verify(manifest, &signature).map_err(|_| Refusal::Mismatch)?;
    Ok(key.fingerprint.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_holds_for_its_manifest_and_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let (private, public) = (dir.path().join("k"), dir.path().join("k.pub"));
        let fpr = generate(&private, &public).unwrap();
        assert!(generate(&private, &public).is_err(), "a private key is never overwritten");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&private).unwrap().permissions().mode() & 0o777, 0o600);
        let signer = SnapshotSigner::load(&private).unwrap();
        let trusted = load_trusted(&public).unwrap();
        assert_eq!(signer.fingerprint, fpr);
        assert_eq!(trusted.fingerprint, fpr);
        let manifest = br#"{"snapshot_id": "x"}"#;
        let sig = signer.sign(manifest);
        assert_eq!(claimed_key(&sig).as_deref(), Some(fpr.as_str()));
        assert_eq!(check(manifest, Some(&sig), std::slice::from_ref(&trusted)), Ok(fpr.clone()));
        assert_eq!(
            check(br#"{"snapshot_id": "y"}"#, Some(&sig), std::slice::from_ref(&trusted)),
            Err(Refusal::Mismatch)
        );
        assert_eq!(check(manifest, None, std::slice::from_ref(&trusted)), Err(Refusal::Unsigned));
        let (p2, q2) = (dir.path().join("o"), dir.path().join("o.pub"));
        generate(&p2, &q2).unwrap();
        let other = load_trusted(&q2).unwrap();
        assert!(
            matches!(check(manifest, Some(&sig), std::slice::from_ref(&other)), Err(Refusal::UnknownKey(k)) if k == fpr)
        );
        // Two trusted keys at once: rotation.
        assert!(check(manifest, Some(&sig), &[other, trusted]).is_ok());
        assert!(load_trusted(&private).is_err() && SnapshotSigner::load(&public).is_err());
    }
}

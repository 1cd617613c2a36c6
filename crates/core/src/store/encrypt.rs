//! `sameframe encrypt`: give a store created without encryption a key ring, and seal what it
//! holds — blobs, previews and record bodies — crash-safely (run it again to finish).

use serde::Serialize;
use serde_json::json;

use super::keys::{self, Encryption, KeySource, Keys};
use super::{BlobKey, BlobKind, Store, StoreError, crypto, small_preview_label};
use crate::ids::hex;

/// What `sameframe encrypt` did.
#[derive(Clone, Debug, Serialize)]
pub struct EncryptReport {
    pub sealed: usize,
    pub already_sealed: usize,
    pub mode: String,
}

impl Store {
    /// Set up encryption on a store that has none, or finish a migration that was interrupted.
    /// Every blob is re-written sealed, one object at a time; records are sealed in one unit
    /// of work.
    pub fn encrypt_existing(
        &mut self,
        encryption: Encryption,
    ) -> Result<EncryptReport, StoreError> {
        let status = self.encryption_status();
        if self.is_encrypted() && !status.migration_pending {
            return Ok(EncryptReport {
                sealed: 0,
                already_sealed: self.read(|r| r.blob_rows())?.len(),
                mode: status.mode,
            });
        }
        if !self.is_encrypted() {
            if let Encryption::None = encryption {
                return Err(crypto::KeyError::Kdf(
                    "choose a passphrase or a key file to encrypt with".into(),
                )
                .into());
            }
            keys::precheck(&encryption, self.keys.allow_open_key_file)?;
            let mut ring =
                keys::new_keyring(&self.store_id, &encryption, self.keys.allow_open_key_file)?
                    .ok_or_else(|| crypto::KeyError::Kdf("no key ring was made".into()))?;
            ring.migration_pending = true;
            let mode = ring.mode.clone();
            self.write(|tx| {
                tx.put_keyring(&ring)?;
                tx.audit(
                    "store.encrypt.start",
                    json!({ "store": self.store_id }),
                    json!({ "mode": mode }),
                )?;
                Ok::<_, StoreError>(())
            })?;
            self.reload_keys(encryption.key_source())?;
        }
        let (sealed, already) = self.seal_blobs()?;
        // Previews are regenerated sealed.
        for t in self.blobs.list(BlobKind::Thumb)? {
            match &t.key {
                Some(k) => self.blobs.delete(k)?,
                None => self.blobs.remove_leftover(&t.location)?,
            }
        }
        self.seal_small_previews()?;
        let seal = self.keys.record_seal(true)?;
        self.write(|tx| {
            crate::records::reseal_all(tx, &seal)?;
            tx.set_keyring_pending(false)?;
            // Every row's MAC is under the new key from here on.
            tx.bind_all_rows();
            tx.audit(
                "store.encrypt.finish",
                json!({ "store": self.store_id }),
                json!({ "sealed": sealed, "already_sealed": already }),
            )?;
            Ok::<_, StoreError>(())
        })?;
        self.reload_keys(KeySource::None)?;
        Ok(EncryptReport {
            sealed,
            already_sealed: already,
            mode: self.encryption_status().mode,
        })
    }

    /// Re-read the key ring (after it changed), keeping an unlocked master key.
    fn reload_keys(&mut self, source: KeySource) -> Result<(), StoreError> {
        let ring = self.read(|r| r.keyring())?;
        let master = self.keys.master.get().cloned();
        let source = match source {
            KeySource::None => std::mem::take(&mut self.keys.source),
            s => s,
        };
        let mut keys = Keys::new(
            self.keys.location.clone(),
            self.store_id.clone(),
            source,
            self.keys.station_key_file.clone(),
            ring,
        );
        keys.allow_open_key_file = self.keys.allow_open_key_file;
        if let Some(m) = master {
            let _ = keys.master.set(m);
        }
        self.keys = keys;
        self.check_keys()?;
        let _ = self.seal.take();
        let pending = self.encryption_status().migration_pending;
        let _ = self.seal.set(self.keys.record_seal(pending)?);
        Ok(())
    }

    /// Seal every plaintext blob under its consent's key; returns (sealed now, already sealed).
    fn seal_blobs(&self) -> Result<(usize, usize), StoreError> {
        let rows = self.read(|r| r.blob_rows())?;
        let (mut sealed, mut already) = (0, 0);
        for row in rows {
            let key = BlobKey::Blob(row.sha256.clone());
            let raw = match self.blobs.get(&key) {
                Ok(r) => r,
                Err(super::BlobError::Missing { .. }) => continue, // reported by verify
                Err(e) => return Err(e.into()),
            };
            if crypto::sealed_key_id(&raw).is_some() {
                already += 1;
                continue;
            }
            if super::blob_address(&raw) != super::address_bytes(&row.sha256)? {
                continue; // corrupt: left for verify to report, never seal damaged data
            }
            let ck = self
                .consent_key(&row.consent_id)?
                .ok_or_else(|| crypto::KeyError::Kdf("the store has no key ring".into()))?;
            let addr = super::address_bytes(&row.sha256)?;
            let file = crypto::seal_blob(&raw, &addr, &ck.0, &ck.1)?;
            self.blobs.replace(&key, &file)?;
            let kid = hex(&ck.0);
            self.write(|tx| tx.set_blob_key(&row.sha256, Some(&kid)))?;
            sealed += 1;
        }
        Ok((sealed, already))
    }

    /// Seal the reduced previews stored with fingerprints.
    fn seal_small_previews(&self) -> Result<(), StoreError> {
        for (capture, consent) in self.read(|r| r.fingerprints_with_small())? {
            let Some(plain) = self.read(|r| r.fingerprint_small(&capture))? else {
                continue;
            };
            if crypto::sealed_key_id(&plain).is_some() {
                continue;
            }
            let sealed = self.seal_cache(&plain, &small_preview_label(&capture), &consent)?;
            self.write(|tx| tx.set_fingerprint_small(&capture, &sealed))?;
        }
        Ok(())
    }
}

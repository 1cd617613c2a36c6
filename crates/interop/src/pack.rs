//! `sameframe audit pack`: everything about a patient's, a consent's or a publication's consent
//! and photos in one zip an auditor can check offline, without the store.
//!
//! The pack holds the records (consents, captures with their SHA-256, publications and their
//! take-downs), the signed consent documents, the deletion certificates, the comparability of
//! published pairs, optionally the photos (decrypted, and said so), a README, a manifest with
//! every file's SHA-256, and the segment of the audit chain from the first entry that concerns
//! them up to the chain's head. Writing the pack appends an `audit.pack` entry carrying the
//! SHA-256 of the manifest's file list, so the chain itself vouches for the files; `verify`
//! recomputes every hash and every link and names what was changed, removed, added or
//! reordered. The head it prints can be compared with one kept elsewhere (a certificate's
//! anchor, `audit verify`'s output).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use sameframe_core::ids::sha256_hex;
use sameframe_core::records::RecordError;
use sameframe_core::store::audit::entry_hash;
use sameframe_core::store::repo::{AuditRow, BlobKind};
use sameframe_core::store::{BlobKey, Store, StoreError};

/// What a pack is about.
#[derive(Clone, Debug)]
pub enum PackScope {
    Patient(String),
    Consent(String),
    Publication(String),
}

/// Pack failures.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] sameframe_core::store::BlobError),
    #[error("{path} already exists: nothing was written (use --force to replace it)")]
    Exists { path: std::path::PathBuf },
    #[error("{path}: {why}")]
    File { path: String, why: String },
}

/// One file of the pack, as the manifest lists it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PackFile {
    pub name: String,
    pub sha256: String,
    pub size: u64,
}

/// The manifest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub store_id: String,
    pub created_at: String,
    pub scope: String,
    pub photos_included: bool,
    /// The chain's head once the pack was recorded: its `audit.pack` entry.
    pub head_seq: i64,
    pub head_hash: String,
    pub files: Vec<PackFile>,
}

const FORMAT: &str = "sameframe-audit-pack/1";
const CHAIN: &str = "audit/chain.jsonl";
const MANIFEST: &str = "manifest.json";

/// What writing a pack gave.
#[derive(Clone, Debug, Serialize)]
pub struct PackSummary {
    pub out: std::path::PathBuf,
    pub files: usize,
    pub chain_entries: usize,
    pub head_seq: i64,
    pub head_hash: String,
    pub photos_included: bool,
}

/// The IDs a pack is about.
#[derive(Default)]
struct Subjects {
    patient_ref: String,
    patient_id: String,
    consents: BTreeSet<String>,
    captures: BTreeSet<String>,
    publications: BTreeSet<String>,
}

fn subjects(store: &Store, scope: &PackScope) -> Result<Subjects, RecordError> {
    let mut s = Subjects::default();
    let patient = match scope {
        PackScope::Patient(r) => store.patient_by_ref(r)?,
        PackScope::Consent(c) => store.patient_by_id(&store.consent(c)?.patient_id)?,
        PackScope::Publication(p) => {
            let p = store.publication(p)?;
            let src = p.sources.first().ok_or_else(|| RecordError::Invalid {
                what: p.id.clone(),
                why: "this publication shows no capture: it concerns no patient".into(),
            })?;
            store.patient_by_id(&src.patient_id)?
        }
    };
    s.patient_ref = patient.reference.clone();
    s.patient_id = patient.id.clone();
    s.consents = match scope {
        PackScope::Consent(c) => [store.consent(c)?.id].into(),
        PackScope::Publication(p) => store
            .publication(p)?
            .sources
            .iter()
            .map(|x| x.consent_id.clone())
            .collect(),
        PackScope::Patient(_) => store
            .consents_of_patient_id(&patient.id)?
            .into_iter()
            .map(|c| c.id)
            .collect(),
    };
    for c in store.list_captures(Some(&patient.reference))? {
        if s.consents.contains(&c.consent_id) {
            s.captures.insert(c.id);
        }
    }
    for p in store.publications()? {
        let ours = match scope {
            PackScope::Publication(id) => p.id == id.trim(),
            _ => p.sources.iter().any(|x| s.consents.contains(&x.consent_id)),
        };
        if ours {
            s.publications.insert(p.id);
        }
    }
    Ok(s)
}

fn json_bytes(v: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap_or_default()
}

/// The pack's files other than the manifest and the chain.
fn files(
    store: &Store,
    s: &Subjects,
    include_photos: bool,
) -> Result<BTreeMap<String, Vec<u8>>, PackError> {
    let mut out = BTreeMap::new();
    out.insert(
        "records/patient.json".to_string(),
        json_bytes(&json!({ "patient_id": s.patient_id, "reference": s.patient_ref })),
    );
    for id in &s.consents {
        let c = store.consent(id)?;
        if c.document_sha256.is_some() {
            out.insert(format!("documents/{id}.bin"), store.consent_document(id)?);
        }
        out.insert(format!("records/consents/{id}.json"), json_bytes(&c));
    }
    for id in &s.captures {
        let c = store.capture(id)?;
        if include_photos {
            out.insert(
                format!("photos/{id}.{}", c.format.as_str()),
                store.capture_bytes(id)?,
            );
        }
        out.insert(format!("records/captures/{id}.json"), json_bytes(&c));
    }
    let mut pubs = Vec::new();
    for id in &s.publications {
        let p = store.publication(id)?;
        let ids = p.capture_ids();
        if let [a, b, ..] = ids.as_slice()
            && s.captures.contains(a)
            && s.captures.contains(b)
        {
            let g = store.grade_pair(a, b)?;
            out.insert(format!("comparability/{id}.json"), json_bytes(&g));
        }
        pubs.push(p);
    }
    out.insert("records/publications.json".into(), json_bytes(&pubs));
    for item in store.blobs().list(BlobKind::Certificate)? {
        let Some(BlobKey::Certificate(name)) = &item.key else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        let bytes = store.blobs().get(&BlobKey::Certificate(name.clone()))?;
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        if v["consent_id"]
            .as_str()
            .is_some_and(|c| s.consents.contains(c))
        {
            out.insert(format!("certificates/{name}"), bytes);
            let txt = BlobKey::Certificate(format!("{stem}.txt"));
            if let Ok(t) = store.blobs().get(&txt) {
                out.insert(format!("certificates/{stem}.txt"), t);
            }
        }
    }
    out.insert("README.txt".into(), readme(s, include_photos).into_bytes());
    Ok(out)
}

fn readme(s: &Subjects, photos: bool) -> String {
    format!(
        "sameframe audit pack — patient {} ({})\n\n\
manifest.json            every file's SHA-256 and size; the chain head the pack was recorded at\n\
audit/chain.jsonl        the audit chain from the first entry about these records to the head,\n\
                         as stored (IDs and hashes; entries about other records are included\n\
                         only to link the chain); the last entry, audit.pack, holds the SHA-256\n\
                         of the manifest's file list\n\
records/patient.json     the patient's ID and clinic reference\n\
records/consents/        each consent: scopes, who signed, when, withdrawals\n\
documents/               the signed consent documents (as stored)\n\
records/captures/        each capture's record: SHA-256, area, view, date, confounders, numbers\n\
records/publications.json  where images went out, their sources and take-downs\n\
comparability/           the comparability grade of each published before/after pair\n\
certificates/            deletion certificates of withdrawals\n\
photos/                  {}\n\n\
Check it offline with: sameframe audit pack verify THIS.zip\n",
        s.patient_ref,
        s.patient_id,
        if photos {
            "THE PHOTOGRAPHS, DECRYPTED: clinical data, handle and delete accordingly"
        } else {
            "(not included: ask for --include-photos)"
        }
    )
}

fn scope_text(scope: &PackScope) -> String {
    match scope {
        PackScope::Patient(r) => format!("patient {r}"),
        PackScope::Consent(c) => format!("consent {c}"),
        PackScope::Publication(p) => format!("publication {p}"),
    }
}

/// The chain's rows from the first one that mentions any of `ids` to the head.
fn chain_segment(store: &Store, ids: &BTreeSet<String>) -> Result<Vec<AuditRow>, StoreError> {
    let mut rows = Vec::new();
    let mut started = false;
    store.read(|r| {
        r.each_audit(&mut |row| {
            if !started && ids.iter().any(|id| row.subjects.contains(id.as_str())) {
                started = true;
            }
            if started {
                rows.push(row);
            }
            Ok(())
        })
    })?;
    Ok(rows)
}

fn row_json(r: &AuditRow) -> Value {
    json!({ "seq": r.seq, "at": r.at, "actor": r.actor, "action": r.action,
            "subjects": r.subjects, "details": r.details, "prev_hash": r.prev_hash, "hash": r.hash })
}

/// Write the pack of `scope` to `out` (a zip).
pub fn write_pack(
    store: &Store,
    scope: &PackScope,
    out: &Path,
    include_photos: bool,
    force: bool,
) -> Result<PackSummary, PackError> {
    if out.exists() && !force {
        return Err(PackError::Exists {
            path: out.to_path_buf(),
        });
    }
    let s = subjects(store, scope)?;
    let files = files(store, &s, include_photos)?;
    let list: Vec<PackFile> = files
        .iter()
        .map(|(name, b)| PackFile {
            name: name.clone(),
            sha256: sha256_hex(b),
            size: b.len() as u64,
        })
        .collect();
    let list_sha = sha256_hex(&serde_json::to_vec(&list).unwrap_or_default());
    store.audit_now(
        "audit.pack",
        json!({ "patient": s.patient_id, "consents": s.consents, "captures": s.captures }),
        json!({ "files_sha256": list_sha, "files": list.len(), "photos_included": include_photos }),
    )?;
    let mut ids: BTreeSet<String> = s.consents.clone();
    ids.extend(s.captures.iter().cloned());
    ids.extend(s.publications.iter().cloned());
    ids.insert(s.patient_id.clone());
    let chain = chain_segment(store, &ids)?;
    let head = chain.last().ok_or_else(|| PackError::File {
        path: out.display().to_string(),
        why: "the audit chain is empty".into(),
    })?;
    let manifest = Manifest {
        format: FORMAT.into(),
        store_id: store.store_id().into(),
        created_at: sameframe_core::timefmt::now_utc(),
        scope: scope_text(scope),
        photos_included: include_photos,
        head_seq: head.seq,
        head_hash: head.hash.clone(),
        files: list,
    };
    let chain_text: String = chain.iter().map(|r| format!("{}\n", row_json(r))).collect();
    let mut zip_bytes = Vec::new();
    {
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(&mut zip_bytes));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let fail = |e: zip::result::ZipError| PackError::File {
            path: out.display().to_string(),
            why: e.to_string(),
        };
        let io = |e: std::io::Error| PackError::File {
            path: out.display().to_string(),
            why: e.to_string(),
        };
        z.start_file(MANIFEST, opts).map_err(fail)?;
        z.write_all(&json_bytes(&manifest)).map_err(io)?;
        z.start_file(CHAIN, opts).map_err(fail)?;
        z.write_all(chain_text.as_bytes()).map_err(io)?;
        for (name, b) in &files {
            z.start_file(name.as_str(), opts).map_err(fail)?;
            z.write_all(b).map_err(io)?;
        }
        z.finish().map_err(fail)?;
    }
    sameframe_core::records::capture::write_file_atomic(out, &zip_bytes)?;
    Ok(PackSummary {
        out: out.to_path_buf(),
        files: files.len(),
        chain_entries: chain.len(),
        head_seq: head.seq,
        head_hash: head.hash.clone(),
        photos_included: include_photos,
    })
}

/// What `verify` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PackCheck {
    pub ok: bool,
    pub files_checked: usize,
    pub chain_entries: usize,
    pub head_seq: i64,
    pub head_hash: String,
    pub scope: String,
    pub problems: Vec<String>,
}

/// Check a pack offline: every file against the manifest, nothing added or removed, every
/// chain entry's hash and link, and the chain's last entry vouching for the file list.
pub fn verify_pack(path: &Path) -> Result<PackCheck, PackError> {
    let file = std::fs::File::open(path).map_err(|e| PackError::File {
        path: path.display().to_string(),
        why: e.to_string(),
    })?;
    let bad = |why: String| PackError::File {
        path: path.display().to_string(),
        why,
    };
    let mut z = zip::ZipArchive::new(file).map_err(|e| bad(format!("not a readable zip: {e}")))?;
    let mut contents: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).map_err(|e| bad(e.to_string()))?;
        let mut b = Vec::new();
        f.by_ref()
            .take(1 << 31)
            .read_to_end(&mut b)
            .map_err(|e| bad(format!("{}: {e}", f.name())))?;
        contents.insert(f.name().to_string(), b);
    }
    let manifest: Manifest = serde_json::from_slice(
        contents
            .get(MANIFEST)
            .ok_or_else(|| bad("no manifest.json: not an audit pack".into()))?,
    )
    .map_err(|e| bad(format!("manifest.json: {e}")))?;
    let mut c = PackCheck {
        scope: manifest.scope.clone(),
        ..Default::default()
    };
    for f in &manifest.files {
        match contents.get(&f.name) {
            None => c
                .problems
                .push(format!("{}: removed from the pack", f.name)),
            Some(b) if sha256_hex(b) != f.sha256 => {
                c.problems.push(format!(
                    "{}: changed (its SHA-256 differs from the manifest's)",
                    f.name
                ));
            }
            Some(_) => c.files_checked += 1,
        }
    }
    let listed: BTreeSet<&str> = manifest.files.iter().map(|f| f.name.as_str()).collect();
    for name in contents.keys() {
        if name != MANIFEST && name != CHAIN && !listed.contains(name.as_str()) {
            c.problems
                .push(format!("{name}: added (not in the manifest)"));
        }
    }
    check_chain(&contents, &manifest, &mut c);
    c.ok = c.problems.is_empty();
    Ok(c)
}

fn check_chain(contents: &BTreeMap<String, Vec<u8>>, m: &Manifest, c: &mut PackCheck) {
    let Some(text) = contents.get(CHAIN) else {
        c.problems.push(format!("{CHAIN}: removed from the pack"));
        return;
    };
    let text = String::from_utf8_lossy(text);
    let mut prev: Option<(i64, String)> = None;
    let mut last: Option<Value> = None;
    for (n, line) in text.lines().enumerate() {
        let Ok(e) = serde_json::from_str::<Value>(line) else {
            c.problems
                .push(format!("{CHAIN} line {}: not an entry", n + 1));
            return;
        };
        let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
        let seq = e["seq"].as_i64().unwrap_or(-1);
        let hash = entry_hash(
            seq,
            &s("at"),
            &s("actor"),
            &s("action"),
            &s("subjects"),
            &s("details"),
            &s("prev_hash"),
        );
        if hash != s("hash") {
            c.problems.push(format!(
                "{CHAIN}: entry {seq} was altered (its hash does not match its content)"
            ));
        }
        if let Some((pseq, phash)) = &prev {
            if seq != pseq + 1 {
                c.problems.push(format!(
                    "{CHAIN}: entry {seq} follows entry {pseq} (entries removed or reordered)"
                ));
            }
            if &s("prev_hash") != phash {
                c.problems.push(format!(
                    "{CHAIN}: entry {seq} does not link to the entry before it"
                ));
            }
        }
        prev = Some((seq, s("hash")));
        c.chain_entries += 1;
        last = Some(e);
    }
    let Some(last) = last else {
        c.problems.push(format!("{CHAIN}: empty"));
        return;
    };
    c.head_seq = last["seq"].as_i64().unwrap_or(-1);
    c.head_hash = last["hash"].as_str().unwrap_or_default().to_string();
    if c.head_hash != m.head_hash || c.head_seq != m.head_seq {
        c.problems
            .push("the chain does not end at the manifest's head".into());
    }
    let details: Value =
        serde_json::from_str(last["details"].as_str().unwrap_or("{}")).unwrap_or_default();
    let list_sha = sha256_hex(&serde_json::to_vec(&m.files).unwrap_or_default());
    if last["action"] != "audit.pack" || details["files_sha256"] != list_sha.as_str() {
        c.problems
            .push("the chain's last entry does not vouch for this manifest's file list".into());
    }
}

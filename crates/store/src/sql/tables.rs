//! Every table of the current schema, as `sameframe migrate` copies it: in the order rows must
//! be loaded (a referenced row before the rows that refer to it), each with the columns that
//! order and page it.

/// A table as copied.
pub struct Table {
    pub name: &'static str,
    /// Columns that order the rows uniquely (the copy pages on them).
    pub order: &'static [&'static str],
    /// The other columns.
    pub rest: &'static [&'static str],
}

impl Table {
    /// Every column, ordering columns first.
    pub fn columns(&self) -> Vec<&'static str> {
        self.order.iter().chain(self.rest).copied().collect()
    }
}

/// The tables in load order.
pub const TABLES: &[Table] = &[
    Table {
        name: "meta",
        order: &["key"],
        rest: &["value"],
    },
    Table {
        name: "setting",
        order: &["key"],
        rest: &["body"],
    },
    Table {
        name: "keyring",
        order: &["id"],
        rest: &[
            "mode",
            "kdf",
            "salt",
            "wrapped_master",
            "key_file",
            "check_value",
            "migration_pending",
            "created_at",
        ],
    },
    Table {
        name: "patient",
        order: &["id"],
        rest: &["ref_key", "body", "created_at"],
    },
    Table {
        name: "consent",
        order: &["id"],
        rest: &["patient_id", "body", "created_at"],
    },
    Table {
        name: "data_key",
        order: &["id"],
        rest: &[
            "consent_id",
            "wrapped",
            "created_at",
            "destroyed_at",
            "destroyed_by",
        ],
    },
    Table {
        name: "blob",
        order: &["sha256"],
        rest: &["size", "kind", "consent_id", "key_id", "created_at"],
    },
    Table {
        name: "visit",
        order: &["id"],
        rest: &["patient_id", "body", "created_at"],
    },
    // A follow-up refers to its baseline, imported before it.
    Table {
        name: "capture",
        order: &["imported_at", "id"],
        rest: &[
            "sha256",
            "patient_id",
            "consent_id",
            "visit_id",
            "area",
            "view",
            "role",
            "baseline_id",
            "captured_at",
            "body",
        ],
    },
    Table {
        name: "treatment",
        order: &["id"],
        rest: &[
            "kind",
            "patient_id",
            "visit_id",
            "consent_id",
            "body",
            "created_at",
        ],
    },
    Table {
        name: "fingerprint",
        order: &["capture_id"],
        rest: &[
            "version",
            "phash",
            "dhash",
            "width",
            "height",
            "keypoints",
            "descriptors",
            "created_at",
            "small",
        ],
    },
    Table {
        name: "fingerprint_index",
        order: &["capture_id"],
        rest: &["phash", "dhash", "keypoints", "descriptors"],
    },
    Table {
        name: "export",
        order: &["id"],
        rest: &[
            "capture_id",
            "sha256",
            "purpose",
            "path",
            "inside_store",
            "at",
            "actor",
            "station",
            "purge_job",
        ],
    },
    Table {
        name: "publication",
        order: &["id"],
        rest: &["file_sha256", "body", "recorded_at"],
    },
    Table {
        name: "lighting_profile",
        order: &["name"],
        rest: &[
            "profile",
            "image_sha256",
            "exif",
            "created_at",
            "created_by",
        ],
    },
    Table {
        name: "purge_job",
        order: &["id"],
        rest: &[
            "consent_id",
            "scopes",
            "purge_originals",
            "retention_override",
            "reason",
            "actor",
            "started_at",
            "committed_at",
            "completed_at",
            "certificate_sha256",
        ],
    },
    Table {
        name: "purge_item",
        order: &["job_id", "seq"],
        rest: &["kind", "subject_id", "sha256", "path", "detail"],
    },
    Table {
        name: "tombstone",
        order: &["id"],
        rest: &[
            "kind",
            "sha256",
            "subject_id",
            "consent_id",
            "job_id",
            "purged_at",
            "purged_by",
            "reason",
        ],
    },
    Table {
        name: "audit",
        order: &["seq"],
        rest: &[
            "at",
            "actor",
            "action",
            "subjects",
            "details",
            "prev_hash",
            "hash",
        ],
    },
];

impl Table {
    /// The column that names a row: `id`, else the last ordering column (`key`, `seq`…).
    pub fn id_column(&self) -> &'static str {
        if self.rest.contains(&"id") || self.order.contains(&"id") {
            "id"
        } else {
            self.order[self.order.len() - 1]
        }
    }

    /// Where the ID column is in [`Table::columns`].
    pub fn id_index(&self) -> usize {
        let id = self.id_column();
        self.columns().iter().position(|c| *c == id).unwrap_or(0)
    }
}

/// The select of one row by its ID column.
pub fn row_sql(t: &Table) -> String {
    format!(
        "SELECT {} FROM {} WHERE {} = ?1",
        t.columns().join(", "),
        t.name,
        t.id_column()
    )
}

/// The table called `name`.
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

/// `?1, ?2, …, ?n` starting at `from`.
pub fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The query for a page of `t` after a key (`after = true`) or from the start.
pub fn page_sql(t: &Table, after: bool, limit: usize) -> String {
    let cols = t.columns().join(", ");
    let order = t.order.join(", ");
    let filter = if after {
        format!(" WHERE ({order}) > ({})", placeholders(1, t.order.len()))
    } else {
        String::new()
    };
    format!(
        "SELECT {cols} FROM {}{filter} ORDER BY {order} LIMIT {limit}",
        t.name
    )
}

/// Rows one insert statement carries.
pub const ROWS_PER_INSERT: usize = 50;

/// The insert of `rows` rows that skips rows already there.
pub fn insert_sql(t: &Table, rows: usize) -> String {
    let cols = t.columns();
    let n = cols.len();
    let values = (0..rows)
        .map(|r| format!("({})", placeholders(1 + r * n, n)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO {} ({}) VALUES {values} ON CONFLICT DO NOTHING",
        t.name,
        cols.join(", ")
    )
}

//! The review's folder walk on trees the input describes: folders, files, hidden entries,
//! links to files and links to folders (up the tree: loops). The walk must end, list no file
//! twice, and never list a file through a link to a folder.
#![no_main]

use std::collections::HashSet;
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(root) = tempfile::tempdir() else {
        return;
    };
    let mut dirs: Vec<PathBuf> = vec![root.path().to_path_buf()];
    for (i, op) in data.chunks(2).take(64).enumerate() {
        let (kind, arg) = (op[0] % 6, usize::from(*op.get(1).unwrap_or(&0)));
        let parent = dirs[arg % dirs.len()].clone();
        let name = if kind == 5 {
            format!(".h{i}")
        } else {
            format!("e{i}")
        };
        let p = parent.join(&name);
        let _ = match kind {
            0 => std::fs::create_dir(&p).map(|()| dirs.push(p)),
            1 | 5 => std::fs::write(p.with_extension("jpg"), b"x"),
            2 => std::fs::write(p.with_extension("txt"), b"caption"),
            3 => std::os::unix::fs::symlink(&dirs[(arg / 7) % dirs.len()], &p),
            _ => std::fs::write(parent.join("f.jpg"), b"y").and_then(|()| {
                std::os::unix::fs::symlink(parent.join("f.jpg"), p.with_extension("jpg"))
            }),
        };
    }
    let files = sameframe_core::review::report::collect_files(&[root.path().to_path_buf()])
        .expect("a readable tree walks");
    let mut seen = HashSet::new();
    for f in &files {
        let real = std::fs::canonicalize(f).unwrap_or_else(|_| f.clone());
        assert!(seen.insert(real), "{} listed twice", f.display());
        assert!(
            f.extension().is_none_or(|e| e != "txt"),
            "a caption listed as an image"
        );
    }
});

//! The hostile-input corpus, run against every command that reads a file or keeps text: files
//! that are not files (pipes, devices, folders, link loops), files too large, damaged images,
//! several pictures in one file, images that are cheap to send and dear to decode, text that
//! would drive a terminal or impersonate a patient, impossible dates. Each case is a class of
//! inputs; every command that meets the class is run on it through the real binary.

#![allow(clippy::unwrap_used)]

mod util;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use util::TestStore;
use util::images;

/// Longest any command may take on a hostile file: a hang is a failure, not a wait.
const DEADLINE: Duration = Duration::from_secs(30);

/// Run `cmd`, killing it at the deadline.
fn run_bounded(mut cmd: Command) -> (Output, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let (so, se) = (dir.path().join("out"), dir.path().join("err"));
    cmd.stdout(std::fs::File::create(&so).unwrap())
        .stderr(std::fs::File::create(&se).unwrap())
        .stdin(std::process::Stdio::null());
    let t = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > DEADLINE {
            child.kill().unwrap();
            panic!("{cmd:?} still running after {DEADLINE:?}: it waits on its input");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = Output {
        status,
        stdout: std::fs::read(&so).unwrap(),
        stderr: std::fs::read(&se).unwrap(),
    };
    (out, t.elapsed())
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A store with patient `P-1` under a consent that covers publication, and one capture.
struct Setup {
    t: TestStore,
    consent: String,
    photo: PathBuf,
}

fn setup() -> Setup {
    let t = TestStore::new();
    let consent = t.patient_with_consent("P-1", "clinical,publication");
    let photo = t.write("photo.jpg", &images::jpeg(320, 240, 7));
    t.import(&photo, "P-1", &consent, &[]);
    Setup { t, consent, photo }
}

/// Every command that reads an image file a user names, with `{}` for the file.
fn image_commands(consent: &str) -> Vec<Vec<String>> {
    let c = consent.to_string();
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        v(&[
            "capture",
            "import",
            "{}",
            "--patient",
            "P-1",
            "--consent",
            &c,
            "--area",
            "face",
            "--view",
            "frontal",
        ]),
        v(&["analyze", "lighting", "{}"]),
        v(&["analyze", "pose", "--baseline", "{}", "--frame", "{}"]),
        v(&["calibrate", "--image", "{}", "--name", "room-x"]),
        v(&["publish", "record", "{}", "--channel", "web", "--force"]),
        v(&[
            "consent",
            "grant",
            "--patient",
            "P-1",
            "--scope",
            "clinical",
            "--signed-by",
            "P-1",
            "--signed-on",
            "2026-01-05",
            "--document",
            "{}",
        ]),
    ]
}

fn with_file(args: &[String], file: &Path) -> Vec<String> {
    args.iter()
        .map(|a| {
            if a == "{}" {
                file.display().to_string()
            } else {
                a.clone()
            }
        })
        .collect()
}

/// The counts `status` reports, to prove a refusal stored nothing.
fn counts(t: &TestStore) -> Value {
    let s = t.ok(&["status"]);
    serde_json::json!([
        s["captures"],
        s["consents"],
        s["patients"],
        s["publications"]
    ])
}

#[test]
fn files_that_are_not_files_are_refused_at_once() {
    let s = setup();
    let fifo = s.t.path("pipe.jpg");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let folder = s.t.path("folder.jpg");
    std::fs::create_dir(&folder).unwrap();
    let before = counts(&s.t);
    for (file, what) in [
        (fifo.clone(), "named pipe"),
        (PathBuf::from("/dev/zero"), "device"),
        (folder.clone(), "folder"),
    ] {
        for args in image_commands(&s.consent) {
            let args = with_file(&args, &file);
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let (out, took) = run_bounded(s.t.command(&refs));
            assert!(!out.status.success(), "{refs:?} accepted {what}");
            let msg = text(&out);
            assert!(
                msg.contains(what) && msg.contains(&file.display().to_string()),
                "{refs:?}: {msg}"
            );
            assert!(took < Duration::from_secs(10), "{refs:?} took {took:?}");
        }
    }
    // Key, passphrase and calibration files too.
    for flag in ["--key-file", "--passphrase-file"] {
        let mut c = Command::new(util::bin());
        c.arg("--data-dir")
            .arg(s.t.path("data"))
            .arg(flag)
            .arg(&fifo)
            .args(["patient", "list"]);
        let (out, _) = run_bounded(c);
        assert!(!out.status.success(), "{flag} pipe accepted");
        assert!(text(&out).contains("pipe.jpg"), "{flag}: {}", text(&out));
    }
    let cal = s.t.path("cal");
    std::fs::create_dir(&cal).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(cal.join("limits.toml"))
            .status()
            .unwrap()
            .success()
    );
    let (out, _) = run_bounded(s.t.command(&[
        "--calibration-dir",
        cal.to_str().unwrap(),
        "analyze",
        "lighting",
        s.photo.to_str().unwrap(),
    ]));
    assert!(!out.status.success());
    assert!(text(&out).contains("limits.toml"), "{}", text(&out));
    // A review walks past a pipe (and a pipe named as a caption) and reports it.
    let published = s.t.path("published");
    std::fs::create_dir(&published).unwrap();
    std::fs::copy(&s.photo, published.join("a.jpg")).unwrap();
    for name in ["b.jpg", "a.txt"] {
        assert!(
            Command::new("mkfifo")
                .arg(published.join(name))
                .status()
                .unwrap()
                .success()
        );
    }
    let (out, took) = run_bounded(s.t.command(&["--json", "review", published.to_str().unwrap()]));
    assert!(out.status.success(), "{}", text(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["summary"]["images"], 2, "{r}");
    assert_eq!(r["summary"]["unreadable"], 1, "{r}");
    assert!(took < Duration::from_secs(20));
    assert_eq!(counts(&s.t), before, "a refusal stored something");
}

#[test]
fn files_beyond_the_size_limit_are_refused_before_they_are_read() {
    let s = setup();
    // 1.1 GiB that occupies nothing on disk.
    let big = s.t.path("big.jpg");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(1_100 * 1024 * 1024).unwrap();
    drop(f);
    for args in image_commands(&s.consent) {
        let args = with_file(&args, &big);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (out, mib) = util::peak::run(&mut s.t.command(&refs));
        assert!(!out.status.success(), "{refs:?}");
        assert!(text(&out).contains("more than the limit"), "{}", text(&out));
        assert!(
            mib < 150.0,
            "{refs:?} used {mib:.0} MiB refusing a file it never read"
        );
    }
}

#[test]
fn damaged_images_are_refused_by_name_and_store_nothing() {
    let s = setup();
    let good = images::jpeg(200, 150, 3);
    let png = images::png(200, 150, 3);
    let mut bad_crc = png.clone();
    bad_crc[40] ^= 0xFF;
    let mut noise = vec![0u8; 5000];
    let mut rng = images::Rng(9);
    for b in noise.iter_mut() {
        *b = rng.next() as u8;
    }
    let corpus: Vec<(&str, Vec<u8>)> = vec![
        ("empty.jpg", Vec::new()),
        ("noise.jpg", noise),
        ("half.jpg", good[..good.len() / 2].to_vec()),
        ("header-only.jpg", good[..300].to_vec()),
        ("half.png", png[..png.len() / 2].to_vec()),
        ("bad-crc.png", bad_crc),
        ("claims-huge.png", images::png_claiming(60_000, 60_000)),
        ("zero-size.png", images::png_claiming(0, 10)),
    ];
    let before = counts(&s.t);
    for (name, bytes) in &corpus {
        let file = s.t.write(name, bytes);
        for args in image_commands(&s.consent) {
            // The consent document is any file: only its size and kind are checked.
            if args.contains(&"--document".to_string()) {
                continue;
            }
            let args = with_file(&args, &file);
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let (out, _) = run_bounded(s.t.command(&refs));
            assert!(!out.status.success(), "{refs:?} accepted {name}");
            assert!(text(&out).contains(name), "{refs:?}: {}", text(&out));
            assert!(!text(&out).contains("panicked"), "{}", text(&out));
        }
    }
    assert_eq!(counts(&s.t), before);
}

/// Patient A consents to publication, patient B only to clinical use; a file whose first
/// picture is A's and second is B's.
#[test]
fn several_pictures_in_one_file_cannot_pass_a_review_or_be_recorded() {
    let t = TestStore::new();
    let a_consent = t.patient_with_consent("A-1", "clinical,publication");
    let b_consent = t.patient_with_consent("B-1", "clinical");
    let a_img = util::published::scene("faces/astronaut.jpg", 1);
    let b_img = util::published::scene("textures/coffee.jpg", 2);
    let a_img = util::published::resize(&a_img, 480, 360);
    let b_img = util::published::resize(&b_img, 480, 360);
    t.import(
        &t.write("a.jpg", &util::published::jpeg(&a_img, 92)),
        "A-1",
        &a_consent,
        &[],
    );
    t.import(
        &t.write("b.jpg", &util::published::jpeg(&b_img, 92)),
        "B-1",
        &b_consent,
        &[],
    );

    use sameframe::testkit::files;
    let pair = [a_img.clone(), b_img.clone()];
    let multi: Vec<(&str, Vec<u8>)> = vec![
        ("anim.png", files::apng_of(&pair)),
        ("anim.webp", files::animated_webp_of(&pair)),
        ("pages.tif", files::tiff_of(&pair)),
        ("anim.gif", files::gif_of(&pair)),
    ];
    let published = t.path("published");
    std::fs::create_dir(&published).unwrap();
    for (name, bytes) in &multi {
        std::fs::write(published.join(name), bytes).unwrap();
    }
    // The same picture alone, in the same formats, is traced to A.
    std::fs::write(
        published.join("still.tif"),
        files::tiff_of(std::slice::from_ref(&a_img)),
    )
    .unwrap();
    std::fs::write(
        published.join("still.png"),
        files::apng_of(std::slice::from_ref(&a_img)),
    )
    .unwrap();
    let r = t.ok(&["review", published.to_str().unwrap()]);
    for img in r["images"].as_array().unwrap() {
        let file = img["file"].as_str().unwrap();
        if file.contains("still") {
            assert_eq!(img["sources"].as_array().unwrap().len(), 1, "{img}");
            continue;
        }
        assert_eq!(img["verdict"], "fail", "{file}: {img}");
        assert!(img["sources"].as_array().unwrap().is_empty(), "{img}");
        let msg = img["findings"][0]["message"].as_str().unwrap();
        assert!(msg.contains("2 frames") || msg.contains("2 pages"), "{msg}");
    }
    assert_eq!(r["summary"]["refused"], 4, "{r}");
    // Exit status for scripts.
    let (out, _) =
        run_bounded(t.command(&["review", published.to_str().unwrap(), "--fail-on", "fail"]));
    assert!(!out.status.success());

    for (name, _) in &multi {
        let f = published.join(name);
        let f = f.to_str().unwrap();
        t.fails(
            &["publish", "record", f, "--channel", "web", "--force"],
            &[name, "only single pictures"],
        );
        // Captures are JPEG, PNG or TIFF: an animated PNG or a multi-page TIFF is refused for
        // what it holds, the others for their format.
        let why = if name.ends_with(".png") || name.ends_with(".tif") {
            "only single pictures"
        } else {
            "not a JPEG, PNG or TIFF"
        };
        t.fails(
            &util::import_args(f, "A-1", &a_consent, "frontal"),
            &[name, why],
        );
    }
    assert!(t.ok(&["publish", "list"]).as_array().unwrap().is_empty());
}

#[test]
fn images_dear_to_decode_stay_within_memory() {
    let s = setup();
    // A tight budget, so a whole decode (200 MB for this PNG) cannot hide under the bar.
    let cal = s.t.path("cal");
    std::fs::create_dir(&cal).unwrap();
    std::fs::write(
        cal.join("limits.toml"),
        "max_megapixels = 100.0\nmax_file_mib = 64\ndecode_memory_mib = 48\n",
    )
    .unwrap();
    let cal = cal.to_str().unwrap().to_string();
    for interlaced in [false, true] {
        let name = if interlaced { "bomb-i.png" } else { "bomb.png" };
        let bomb = s.t.write(
            name,
            &sameframe::testkit::files::flat_png16(5000, 5000, interlaced),
        );
        let review_dir = s.t.path(&format!("review-{name}"));
        std::fs::create_dir(&review_dir).unwrap();
        std::fs::copy(&bomb, review_dir.join(name)).unwrap();
        // (A consent document is stored, never decoded.)
        let mut all: Vec<Vec<String>> = image_commands(&s.consent)
            .into_iter()
            .filter(|a| !a.contains(&"--document".to_string()))
            .collect();
        all.push(vec!["review".into(), review_dir.display().to_string()]);
        for args in all {
            let mut args = with_file(&args, &bomb);
            args.splice(0..0, ["--calibration-dir".to_string(), cal.clone()]);
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let (out, mib) = util::peak::run(&mut s.t.command(&refs));
            // A calibration photo must show a card; this one has none.
            let fine = out.status.success() || text(&out).contains("no card was measured");
            assert!(fine, "{refs:?}: {}", text(&out));
            assert!(mib < 200.0, "{refs:?}: peak {mib:.0} MiB");
        }
    }
}

#[test]
fn file_names_and_text_cannot_forge_output_or_drive_the_terminal() {
    let s = setup();
    let published = s.t.path("published");
    std::fs::create_dir(&published).unwrap();
    let forged = "x.jpg\nPASS  forged.jpg";
    std::fs::copy(&s.photo, published.join(forged)).unwrap();
    std::fs::copy(&s.photo, published.join("\u{1b}[2Jclear.jpg")).unwrap();
    let (out, _) = run_bounded(s.t.command(&["review", published.to_str().unwrap()]));
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        !shown.lines().any(|l| l.starts_with("PASS  forged.jpg")),
        "{shown}"
    );
    assert!(shown.contains("x.jpg\\nPASS  forged.jpg"), "{shown}");
    assert!(!shown.contains('\u{1b}'), "{shown:?}");

    // Every kind of stored text refuses control and invisible characters, naming the option.
    let hostile = [
        "Dr \u{1b}[2J Smith",
        "Smith\u{7}",
        "Smith\u{202e}htims",
        "Smi\u{200b}th",
        "two\nlines",
    ];
    for h in hostile {
        let cases: Vec<(Vec<&str>, &str)> = vec![
            (
                vec![
                    "consent",
                    "grant",
                    "--patient",
                    "P-1",
                    "--scope",
                    "clinical",
                    "--signed-by",
                    h,
                    "--signed-on",
                    "2026-01-05",
                ],
                "--signed-by",
            ),
            (vec!["patient", "add", "--ref", "P-9", "--name", h], "name"),
            (
                vec![
                    "publish",
                    "record",
                    s.photo.to_str().unwrap(),
                    "--channel",
                    h,
                    "--force",
                ],
                "--channel",
            ),
            (
                vec![
                    "visit",
                    "add",
                    "--patient",
                    "P-1",
                    "--area",
                    "face",
                    "--product",
                    h,
                    "--date",
                    "2026-01-06",
                ],
                "--product",
            ),
            (
                vec![
                    "consent",
                    "withdraw",
                    &s.consent,
                    "--scope",
                    "publication",
                    "--reason",
                    h,
                    "--confirm",
                ],
                "--reason",
            ),
        ];
        for (args, what) in cases {
            let (out, _) = run_bounded(s.t.command(&args));
            assert!(!out.status.success(), "{args:?} stored {h:?}");
            let msg = text(&out);
            assert!(msg.contains(what), "{args:?}: {msg}");
            assert!(
                !msg.contains('\u{1b}') && !msg.contains('\u{202e}'),
                "{msg:?}"
            );
        }
    }
    // A note keeps its line breaks, and `capture show` prints them escaped on one line.
    let note = s.t.write("n.jpg", &images::jpeg(320, 240, 8));
    let r = s.t.ok(&[
        "capture",
        "import",
        note.to_str().unwrap(),
        "--patient",
        "P-1",
        "--consent",
        &s.consent,
        "--area",
        "face",
        "--view",
        "frontal",
        "--note",
        "first\nPASS second",
    ]);
    let id = r["capture_id"].as_str().unwrap().to_string();
    let (out, _) = run_bounded(s.t.command(&["capture", "show", &id]));
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!shown.lines().any(|l| l.starts_with("PASS")), "{shown}");
}

#[test]
fn look_alike_references_are_the_same_patient_or_refused() {
    let t = TestStore::new();
    t.ok(&["patient", "add", "--ref", "P-0042"]);
    for r in [
        "P-0042\u{200b}",
        "\u{202e}P-0042",
        "p-0042",
        "Ｐ-００４２",
        "P-0042\u{feff}",
        "P\u{2060}-0042",
    ] {
        let (out, _) = run_bounded(t.command(&["patient", "add", "--ref", r]));
        assert!(!out.status.success(), "{r:?} became a new patient");
    }
    // The look-alikes that normalise to it find the patient.
    for r in ["p-0042", "Ｐ-００４２"] {
        assert_eq!(t.ok(&["patient", "show", r])["ref"], "P-0042");
    }
    assert_eq!(t.ok(&["patient", "list"]).as_array().unwrap().len(), 1);
}

#[test]
fn impossible_dates_are_never_stored() {
    let t = TestStore::new();
    t.ok(&["patient", "add", "--ref", "P-1"]);
    let tomorrow2 = (chrono::Local::now().date_naive() + chrono::Days::new(2))
        .format("%Y-%m-%d")
        .to_string();
    for d in [
        "26-3-1",
        "0000-01-01",
        "0026-03-01",
        "2026-02-30",
        "1899-12-31",
        "99999-01-01",
        tomorrow2.as_str(),
    ] {
        let (out, _) = run_bounded(t.command(&[
            "consent",
            "grant",
            "--patient",
            "P-1",
            "--scope",
            "clinical",
            "--signed-by",
            "P-1",
            "--signed-on",
            d,
        ]));
        assert!(!out.status.success(), "--signed-on {d} was stored");
        let (out, _) = run_bounded(t.command(&[
            "visit",
            "add",
            "--patient",
            "P-1",
            "--area",
            "face",
            "--date",
            d,
        ]));
        assert!(!out.status.success(), "visit --date {d} was stored");
    }
    // A camera clock set to year 9999 or year 1: the capture imports, its time is not taken.
    let consent = t.patient_with_consent("P-2", "clinical");
    for (k, when) in ["9999:12:31 23:59:59", "0001:01:01 00:00:00"]
        .iter()
        .enumerate()
    {
        let e = images::Exif {
            date_time_original: when,
            ..Default::default()
        };
        let f = t.write(
            &format!("c{k}.jpg"),
            &images::jpeg_with_exif(320, 240, 30 + k as u64, &e),
        );
        let r = t.import(&f, "P-2", &consent, &[]);
        let at = r["captured_at"].as_str().unwrap_or("");
        assert!(!at.starts_with("9999") && !at.starts_with("0001"), "{r}");
    }
}

/// Writes the seed corpus of the fuzz targets (`fuzz/corpus/…`, kept in the repository):
/// run `cargo test --test hostile write_fuzz_seeds -- --ignored` after changing the formats
/// sameframe reads.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    use sameframe::testkit::files;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let put = |target: &str, name: &str, bytes: &[u8]| {
        let d = root.join(target);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), bytes).unwrap();
    };
    let small = images::scene(24, 16, 3);
    let enc = |fmt| images::encode(&small, fmt);
    put("decode", "a.jpg", &enc(image::ImageFormat::Jpeg));
    put("decode", "a.png", &enc(image::ImageFormat::Png));
    put("decode", "a.tif", &enc(image::ImageFormat::Tiff));
    put("decode", "a.webp", &enc(image::ImageFormat::WebP));
    put("decode", "a.gif", &enc(image::ImageFormat::Gif));
    put(
        "decode",
        "interlaced16.png",
        &files::flat_png16(19, 13, true),
    );
    put("decode", "apng.png", &files::apng(2));
    put("decode", "pages.tif", &files::tiff_pages(2));
    put("decode", "anim.webp", &files::animated_webp(2));
    put(
        "decode",
        "cmyk.jpg",
        &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cmyk.jpg")).unwrap(),
    );
    put(
        "decode",
        "exif.jpg",
        &images::jpeg_with_exif(24, 16, 4, &images::Exif::default()),
    );
    put(
        "exif",
        "exif.tiff",
        &images::exif_tiff(&images::Exif::default()),
    );
    put("exif", "malformed", b"XX\x2a\x00\xff\xff\xff\x7fgarbage");
    let cal = Path::new(env!("CARGO_MANIFEST_DIR")).join("calibration");
    for (k, f) in [
        "cards.toml",
        "tolerances.toml",
        "protocols.toml",
        "confounders.toml",
        "limits.toml",
    ]
    .iter()
    .enumerate()
    {
        let mut seed = vec![k as u8];
        seed.extend(std::fs::read(cal.join(f)).unwrap());
        put("calibration", f, &seed);
    }
    put(
        "key_file",
        "hex",
        format!("{}\n", "ab".repeat(32)).as_bytes(),
    );
    put("key_file", "raw", &[7u8; 32]);
    put(
        "review_walk",
        "tree",
        &[0, 0, 1, 1, 3, 0, 0, 1, 4, 2, 5, 0, 2, 1],
    );
}

/// Run `cmd` under umask 022 (through a shell that sets it), expecting success.
fn with_umask_022(cmd: Command) -> Output {
    let quote = |a: &std::ffi::OsStr| format!("'{}'", a.to_string_lossy().replace('\'', "'\\''"));
    let line: Vec<String> = std::iter::once(quote(cmd.get_program()))
        .chain(cmd.get_args().map(quote))
        .collect();
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("umask 022; exec {}", line.join(" ")));
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    out
}

/// Under the usual umask (022), everything the store writes is its owner's alone, and no
/// patient reference or name can be read from the database without the key.
#[test]
fn the_store_is_private_by_default() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestStore::uninitialised();
    with_umask_022(t.command(&["init"]));
    let consent = t.patient_with_consent("P-SECRET-77", "clinical,publication");
    t.ok(&[
        "patient",
        "add",
        "--ref",
        "P-SECRET-78",
        "--name",
        "Zelda Quartermaine",
    ]);
    let photo = t.write("p.jpg", &images::jpeg(320, 240, 5));
    let cap = t.import(&photo, "P-SECRET-77", &consent, &[])["capture_id"]
        .as_str()
        .unwrap()
        .to_string();
    let export = t.path("export.jpg");
    with_umask_022(t.command(&["capture", "export", &cap, "--out", export.to_str().unwrap()]));
    let report = t.path("report.html");
    let published = t.path("pub");
    std::fs::create_dir(&published).unwrap();
    std::fs::copy(&photo, published.join("p.jpg")).unwrap();
    with_umask_022(t.command(&[
        "review",
        published.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]));

    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let data = t.path("data");
    assert_eq!(mode(&data), 0o700, "data dir");
    for f in [export.as_path(), report.as_path(), t.key.as_path()] {
        assert_eq!(mode(f) & 0o077, 0, "{} is readable by others", f.display());
    }
    if !t.is_shared() {
        let mut stack = vec![data.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    assert_eq!(mode(&p) & 0o077, 0, "{} is readable by others", p.display());
                }
            }
        }
        let db = std::fs::read(data.join("sameframe.db")).unwrap();
        for needle in ["P-SECRET-77", "P-SECRET-78", "Zelda", "Quartermaine"] {
            assert!(
                !db.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} is readable in the database file"
            );
        }
    }
}

/// A review of a folder with links back up the tree (a loop) and links to files already
/// listed: each file is reviewed once, and the walk ends.
#[test]
fn a_review_walks_each_file_once_through_link_loops() {
    let s = setup();
    let root = s.t.path("site");
    let sub = root.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    for (k, dir) in [&root, &sub].iter().enumerate() {
        std::fs::write(
            dir.join(format!("p{k}.jpg")),
            images::jpeg(120, 90, 40 + k as u64),
        )
        .unwrap();
    }
    std::os::unix::fs::symlink("..", sub.join("up")).unwrap();
    std::os::unix::fs::symlink(&root, sub.join("again")).unwrap();
    std::os::unix::fs::symlink(root.join("p0.jpg"), sub.join("same.jpg")).unwrap();
    let (out, took) = run_bounded(s.t.command(&["--json", "review", root.to_str().unwrap()]));
    assert!(out.status.success(), "{}", text(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["summary"]["images"], 2, "{}", r["images"]);
    assert!(took < Duration::from_secs(20));
}

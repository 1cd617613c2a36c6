//! The capture station driven by widget labels (egui_kittest, AccessKit) with the replay camera
//! and a temp store: the injector's workflow end to end, refusals, and overrides. No display
//! is needed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use sameframe::app::core::StoreConfig;
use sameframe::app::{AppOptions, StationApp};
use sameframe::records::{Area, ImportRequest, NewVisit, Role, Scope, View};
use sameframe::store::Store;

mod util;

struct Station {
    t: util::TestStore,
    data: PathBuf,
    key: PathBuf,
    frames: PathBuf,
}

/// A temp store (key-file encryption, on this run's backend) and a replay folder holding the
/// demo keyframes `keep`.
fn station(keep: &[usize]) -> Station {
    station_of(util::TestStore::new(), keep)
}

/// The station of an initialised store, with a replay folder of the demo keyframes `keep`.
fn station_of(t: util::TestStore, keep: &[usize]) -> Station {
    let all = t.path("all");
    let files = sameframe::camera::demo::write_keyframes(&all).unwrap();
    let frames = t.path("frames");
    std::fs::create_dir(&frames).unwrap();
    for &i in keep {
        std::fs::copy(&files[i], frames.join(files[i].file_name().unwrap())).unwrap();
    }
    Station {
        data: t.data.clone(),
        key: t.key.clone(),
        frames,
        t,
    }
}

fn store(s: &Station) -> Store {
    s.t.open_lib()
}

fn options(s: &Station, replay: &Path) -> AppOptions {
    let mut o = AppOptions::new(StoreConfig {
        data_dir: s.data.clone(),
        actor: "test-nurse".into(),
        key_file: Some(s.key.clone()),
        passphrase: None,
        calibration_dir: None,
    });
    o.replay = Some(replay.to_path_buf());
    o.fps = Some(15.0);
    o.no_camera_query = true;
    o
}

fn harness(opts: AppOptions) -> Harness<'static, StationApp> {
    Harness::builder()
        .with_size([1366.0, 900.0])
        .build_eframe(move |cc| StationApp::new(cc, opts).expect("the station starts"))
}

/// Step the app until `done`, failing with the app's messages after a minute.
fn until(
    h: &mut Harness<'static, StationApp>,
    what: &str,
    done: impl Fn(&Harness<'static, StationApp>) -> bool,
) {
    let end = Instant::now() + Duration::from_secs(90);
    loop {
        h.step();
        if done(h) {
            return;
        }
        if Instant::now() > end {
            let notices: Vec<String> = h
                .state()
                .state()
                .notices
                .iter()
                .map(|n| n.text.clone())
                .collect();
            panic!(
                "timed out waiting for {what}; gate {:?}; messages {notices:#?}",
                h.state().state().gate
            );
        }
        std::thread::sleep(Duration::from_millis(15));
    }
}

fn shows(h: &Harness<'static, StationApp>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

fn type_into(h: &mut Harness<'static, StationApp>, label: &str, text: &str) {
    let node = h.get_by_label(label);
    node.focus();
    node.type_text(text);
    h.step();
    h.step();
}

fn click(h: &mut Harness<'static, StationApp>, label: &str) {
    // As a user would: scroll the widget into view (nested scroll areas may take a few
    // passes), then click it.
    for _ in 0..4 {
        h.get_by_label(label).scroll_to_me();
        h.step();
        h.step();
        if h.get_by_label(label).rect().top() >= 0.0 {
            break;
        }
    }
    let at = h.get_by_label(label).rect().center();
    h.hover_at(at);
    h.step();
    h.step();
    h.get_by_label(label).click();
    h.step();
    h.step();
}

fn enabled(h: &Harness<'static, StationApp>, label: &str) -> bool {
    !h.get_by_label(label).accesskit_node().is_disabled()
}

fn create_patient(h: &mut Harness<'static, StationApp>, reference: &str) {
    until(h, "the store to open", |h| {
        shows(h, "Patient reference") || shows(h, "New patient")
    });
    if !shows(h, "Patient reference") {
        click(h, "New patient");
    }
    type_into(h, "Patient reference", reference);
    click(h, "Create patient");
    until(h, "the patient to load", |h| {
        h.state()
            .state()
            .patient
            .as_ref()
            .is_some_and(|p| p.patient.reference == reference)
    });
}

fn record_consent(h: &mut Harness<'static, StationApp>, signer: &str) {
    type_into(h, "Signed by", signer);
    click(h, "Record consent");
    until(h, "the consent", |h| {
        h.state().state().capture_consent().is_some()
    });
}

fn start_visit_and_protocol(h: &mut Harness<'static, StationApp>) {
    type_into(h, "Product", "Profhilo");
    type_into(h, "Lot", "L2311");
    click(h, "Start visit");
    until(h, "the visit and the face protocol", |h| {
        let st = h.state().state();
        st.visit_id.is_some() && st.step_status().is_some()
    });
}

/// Capture the current frame: with the plain button when the station is ready, else with an
/// override and a reason (the demo sequence's drift).
fn capture_now(h: &mut Harness<'static, StationApp>) {
    until(h, "a capture decision", |h| {
        h.state().state().gate.refusal.is_none()
    });
    if h.state().state().gate.ready {
        click(h, "Capture");
    } else {
        click(h, "Capture with override…");
        type_into(h, "Override reason", "test: small drift accepted");
        click(h, "Capture anyway");
    }
    until(h, "the capture", |h| {
        h.state().state().last_capture.is_some()
    });
}

/// A patient with a consent of `scopes`, a face visit and a frontal baseline of `png`, made
/// through the library as another station would: (consent ID, visit ID, baseline capture ID).
fn patient_with_frontal_baseline(
    s: &Station,
    reference: &str,
    scopes: &[Scope],
    png: &[u8],
) -> (String, String, String) {
    patient_with_frontal_baseline_at(s, reference, scopes, png, None)
}

/// As [`patient_with_frontal_baseline`], the baseline taken at `captured_at` when given.
fn patient_with_frontal_baseline_at(
    s: &Station,
    reference: &str,
    scopes: &[Scope],
    png: &[u8],
    captured_at: Option<&str>,
) -> (String, String, String) {
    let store = store(s);
    store.add_patient(reference, None).unwrap();
    let day = chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
    let c = store
        .grant_consent(sameframe::records::consent::NewConsent {
            identifiable: false,
            patient_ref: reference,
            scopes: scopes.to_vec(),
            signed_by: reference,
            signed_on: day,
            expires_on: None,
            document: None,
        })
        .unwrap();
    let v = store
        .add_visit(NewVisit {
            patient_ref: reference,
            area: Area::Face,
            date: day,
            product: Some("Profhilo"),
            lot: None,
            lot_expiry: None,
            technique: None,
            clinician: None,
            expired_lot_reason: None,
        })
        .unwrap();
    let mut req = ImportRequest::new(png, "baseline", reference, &c.id, Area::Face, View::Frontal);
    req.visit_id = Some(&v.visit.id);
    req.captured_at = captured_at;
    let b = store.import_capture(req).unwrap().capture.id;
    (c.id, v.visit.id, b)
}

#[test]
fn the_injector_captures_a_view_with_confounders_and_the_numbers_are_stored() {
    // The aligned demo pose: the card passes the lighting check.
    let s = station(&[3]);
    let mut h = harness(options(&s, &s.frames));
    create_patient(&mut h, "P-0001");
    // No consent yet: refused, and the station says why.
    until(&mut h, "the refusal", |h| shows(h, "capture refused"));
    assert!(!enabled(&h, "Capture"));
    assert!(!enabled(&h, "Capture with override…"));

    record_consent(&mut h, "P-0001 (patient)");
    start_visit_and_protocol(&mut h);
    let st = h.state().state();
    assert_eq!(st.protocol.as_deref(), Some("face"));
    assert_eq!(st.step_status().unwrap().view, View::Frontal);
    assert!(st.step_status().unwrap().baseline_id.is_none());

    // Fill a confounder before capturing: it is stored with the capture.
    click(&mut h, "Make-up, tinted products or hair fibres present");
    until(&mut h, "ready to capture", |h| {
        h.state().state().gate.refusal.is_none() && h.state().state().gate.ready
    });
    assert!(shows(&h, "Ready to capture"));
    assert!(enabled(&h, "Capture"));
    click(&mut h, "Capture");
    until(&mut h, "the capture", |h| {
        h.state().state().last_capture.is_some()
    });
    // The station moves to the next view.
    until(&mut h, "the next view", |h| {
        h.state().state().step_status().map(|s| s.view) == Some(View::ObliqueLeft45)
    });

    // A confounder ticked after the capture is saved onto the visit's captures.
    click(&mut h, "Recent sun exposure or tanning (last 4 weeks)");
    type_into(&mut h, "Note", "holiday, returned 5 days ago");
    h.get_by_label_contains("Save confounders").scroll_to_me();
    h.step();
    h.step();
    let at = h.get_by_label_contains("Save confounders").rect().center();
    h.hover_at(at);
    h.step();
    h.step();
    h.get_by_label_contains("Save confounders").click();
    until(&mut h, "the confounders to be saved", |h| {
        !h.state().state().draft.dirty
            && h.state()
                .state()
                .notices
                .iter()
                .any(|n| n.text.contains("confounders saved"))
    });

    let store = store(&s);
    let caps = store.list_captures(Some("P-0001")).unwrap();
    assert_eq!(caps.len(), 1, "{caps:#?}");
    let c = &caps[0];
    assert_eq!(
        (c.area, c.view, c.role),
        (Area::Face, View::Frontal, Role::Baseline)
    );
    assert!(c.visit_id.is_some());
    let keys: Vec<&str> = c.confounders.iter().map(|k| k.key.as_str()).collect();
    assert!(
        keys.contains(&"makeup_present") && keys.contains(&"recent_sun_exposure"),
        "{keys:?}"
    );
    assert_eq!(c.note.as_deref(), Some("holiday, returned 5 days ago"));
    let a = &serde_json::to_value(c.analysis.as_ref().expect("analysis recorded")).unwrap();
    let ev = a["lighting"]["exposure_ev"]
        .as_f64()
        .expect("exposure number");
    assert!(ev.abs() < 0.2, "{ev}");
    assert!(
        a["lighting"]["wb_gains"]
            .as_array()
            .is_some_and(|g| g.len() == 3)
    );
    assert_eq!(a["lighting"]["verdict"], "pass");
    assert_eq!(a["readiness"]["light"], "green");
    assert!(a["override"].is_null());
    assert_eq!(a["camera"]["kind"], "replay");
    assert_eq!(a["protocol"]["view"], "frontal");
    // The replayed file's bytes are what was stored.
    let original = std::fs::read(s.frames.join("demo-03.png")).unwrap();
    assert_eq!(c.sha256, sameframe::ids::sha256_hex(&original));
    assert!(
        store
            .verify(std::time::Duration::from_secs(120))
            .unwrap()
            .is_clean()
    );
}

#[test]
fn capture_is_refused_without_a_valid_clinical_consent() {
    let s = station(&[3]);
    {
        let store = store(&s);
        store.add_patient("P-0002", None).unwrap();
        // Only teaching and publication: no clinical photos.
        store
            .grant_consent(sameframe::records::consent::NewConsent {
                identifiable: false,
                patient_ref: "P-0002",
                scopes: vec![Scope::Teaching],
                signed_by: "P-0002",
                signed_on: chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(),
                expires_on: None,
                document: None,
            })
            .unwrap();
    }
    let mut h = harness(options(&s, &s.frames));
    until(&mut h, "the patient list", |h| shows(h, "P-0002"));
    click(&mut h, "P-0002");
    until(&mut h, "the patient", |h| {
        h.state().state().patient.is_some()
    });
    until(&mut h, "the refusal", |h| {
        shows(h, "no valid clinical-scope consent")
    });
    let refusal = h.state().state().gate.refusal.clone().unwrap();
    assert!(refusal.contains("not granted"), "{refusal}");
    assert!(!enabled(&h, "Capture"));
    assert!(!enabled(&h, "Capture with override…"));
    // Space does nothing either.
    h.key_press(egui::Key::Space);
    h.step();
    assert!(store(&s).list_captures(Some("P-0002")).unwrap().is_empty());
}

#[test]
fn an_override_needs_a_reason_which_is_recorded() {
    // The over-exposed demo pose: lighting is out of tolerance.
    let s = station(&[4]);
    let mut h = harness(options(&s, &s.frames));
    create_patient(&mut h, "P-0003");
    record_consent(&mut h, "P-0003");
    start_visit_and_protocol(&mut h);
    until(&mut h, "the lighting verdict", |h| {
        let st = h.state().state();
        st.gate.refusal.is_none() && st.live.is_some() && !st.gate.ready
    });
    assert!(!enabled(&h, "Capture"));
    assert!(enabled(&h, "Capture with override…"));
    click(&mut h, "Capture with override…");
    until(&mut h, "the override dialog", |h| {
        shows(h, "Override reason")
    });
    assert!(!enabled(&h, "Capture anyway"), "no reason, no capture");
    type_into(
        &mut h,
        "Override reason",
        "patient cannot stay longer; room light fixed next visit",
    );
    assert!(enabled(&h, "Capture anyway"));
    click(&mut h, "Capture anyway");
    until(&mut h, "the capture", |h| {
        h.state().state().last_capture.is_some()
    });
    let caps = store(&s).list_captures(Some("P-0003")).unwrap();
    assert_eq!(caps.len(), 1);
    let a = &serde_json::to_value(caps[0].analysis.as_ref().unwrap()).unwrap();
    assert_eq!(
        a["override"]["reason"],
        "patient cannot stay longer; room light fixed next visit"
    );
    // The audit entry of the import names the reason too (the station's override was once
    // audited with a null reason, read from a field the station never wrote).
    let st = store(&s);
    let log = st
        .read(|r| {
            sameframe::store::audit::read(
                r,
                &sameframe::store::audit::LogFilter {
                    action_prefix: Some("capture.import".into()),
                    ..Default::default()
                },
            )
        })
        .unwrap();
    assert_eq!(
        log.last().unwrap().details["override_reason"],
        "patient cannot stay longer; room light fixed next visit"
    );
    assert!(
        a["override"]["out_of_tolerance"]
            .as_array()
            .is_some_and(|r| r
                .iter()
                .any(|x| x.as_str().unwrap_or("").contains("lighting")))
    );
    assert_ne!(a["lighting"]["verdict"], "pass");
}

#[test]
fn a_follow_up_is_compared_with_the_baseline_of_its_view() {
    let s = station(&[5]);
    let baseline_png = {
        let all = s.frames.parent().unwrap().join("all");
        std::fs::read(all.join("demo-03.png")).unwrap()
    };
    let (_, _, baseline_id) = patient_with_frontal_baseline(
        &s,
        "P-0004",
        &[Scope::Clinical, Scope::Publication],
        &baseline_png,
    );
    let mut h = harness(options(&s, &s.frames));
    until(&mut h, "the patient list", |h| shows(h, "P-0004"));
    click(&mut h, "P-0004");
    until(&mut h, "the patient", |h| {
        h.state().state().patient.is_some()
    });
    start_visit_and_protocol(&mut h);
    assert_eq!(
        h.state()
            .state()
            .step_status()
            .unwrap()
            .baseline_id
            .as_deref(),
        Some(baseline_id.as_str())
    );
    until(&mut h, "the ghost and the pose", |h| {
        let st = h.state().state();
        st.baseline.is_some() && st.live.as_ref().is_some_and(|r| r.pose.is_some())
    });
    let pose = h
        .state()
        .state()
        .live
        .as_ref()
        .unwrap()
        .pose
        .clone()
        .unwrap();
    assert!(pose.score > 60.0, "{pose:?}");
    assert_eq!(pose.method, "face+features");
    capture_now(&mut h);
    let caps = store(&s).list_captures(Some("P-0004")).unwrap();
    let f = caps
        .iter()
        .find(|c| c.role == Role::FollowUp)
        .expect("a follow-up");
    assert_eq!(f.baseline_id.as_deref(), Some(baseline_id.as_str()));
    let a = &serde_json::to_value(f.analysis.as_ref().unwrap()).unwrap();
    assert!(a["pose"]["score"].as_f64().is_some());
    assert_eq!(a["baseline_id"], baseline_id.as_str());
    // The score kept with the capture is the score `pair` and Compare give for the pair (the
    // same measure on the same stored pixels): equal within 0.5 points.
    let kept = a["pose_at_commit"]["score"]
        .as_f64()
        .expect("re-checked at commit");
    let pair = store(&s).grade_pair(&baseline_id, &f.id).unwrap();
    let paired = pair.pose_score.expect("pair aligns the follow-up");
    assert!((kept - paired).abs() <= 0.5, "kept {kept}, pair {paired}");
    // The station confirmed what it stored: the view, "saved", the kept score.
    let saved = h.state().state().last_capture.as_ref().unwrap();
    assert_eq!(saved.capture.id, f.id);
    assert_eq!(saved.score, Some(kept));
    assert!(saved.thumbnail.is_some());
    assert!(shows(&h, "Saved: Frontal"));
    assert!(shows(&h, &format!("pose score {kept:.0}/100 (as stored)")));
    // Compare opens on this pair, its reasons whole sentences.
    click(&mut h, "Compare…");
    until(&mut h, "the pair in Compare", |h| {
        h.state().state().compare.loaded.is_some()
    });
    let st = h.state().state();
    assert_eq!(
        st.compare.baseline_id.as_deref(),
        Some(baseline_id.as_str())
    );
    assert_eq!(st.compare.followup_id.as_deref(), Some(f.id.as_str()));
    for a in &st.compare.loaded.as_ref().unwrap().grade.aspects {
        assert!(!a.message.trim_end().ends_with(':'), "{}", a.message);
    }
}

/// Two stations (replay cameras, headless) on one shared store: the baseline one captures is
/// the baseline the other's follow-up is scored against and stored under.
#[test]
fn two_stations_on_a_shared_store_follow_each_others_baselines() {
    let Some(servers) =
        util::Servers::required("two_stations_on_a_shared_store_follow_each_others_baselines")
    else {
        return;
    };
    // Station A: a new shared store; it captures the frontal baseline.
    let a = {
        let t = util::TestStore::on(util::Backend::new_shared(servers));
        t.ok(&["init"]);
        station_of(t, &[3])
    };
    let mut h = harness(options(&a, &a.frames));
    create_patient(&mut h, "P-0077");
    record_consent(&mut h, "P-0077 (patient)");
    start_visit_and_protocol(&mut h);
    capture_now(&mut h);
    drop(h);
    let baseline = store(&a).list_captures(Some("P-0077")).unwrap();
    assert_eq!(baseline.len(), 1);
    assert_eq!(baseline[0].role, Role::Baseline);

    // Station B joins the same store from its own folder, with its own copy of the key.
    let b = station_of(a.t.join(), &[5]);
    let mut h = harness(options(&b, &b.frames));
    until(&mut h, "the patient list", |h| shows(h, "P-0077"));
    click(&mut h, "P-0077");
    until(&mut h, "the patient", |h| {
        h.state().state().patient.is_some()
    });
    start_visit_and_protocol(&mut h);
    assert_eq!(
        h.state()
            .state()
            .step_status()
            .unwrap()
            .baseline_id
            .as_deref(),
        Some(baseline[0].id.as_str()),
        "station B does not see station A's baseline"
    );
    until(&mut h, "the ghost and the pose", |h| {
        let st = h.state().state();
        st.baseline.is_some() && st.live.as_ref().is_some_and(|r| r.pose.is_some())
    });
    capture_now(&mut h);
    let caps = store(&b).list_captures(Some("P-0077")).unwrap();
    let f = caps
        .iter()
        .find(|c| c.role == Role::FollowUp)
        .expect("a follow-up");
    assert_eq!(f.baseline_id.as_deref(), Some(baseline[0].id.as_str()));
    assert_eq!(
        f.analysis.as_ref().unwrap().baseline_id.as_deref(),
        Some(baseline[0].id.as_str())
    );
}

/// A station on a patient with a consent and today's face visit, at the frontal step.
fn at_frontal_step(s: &Station, reference: &str, size: [f32; 2]) -> Harness<'static, StationApp> {
    let mut h = Harness::builder().with_size(size).build_eframe({
        let opts = options(s, &s.frames);
        move |cc| StationApp::new(cc, opts).expect("the station starts")
    });
    create_patient(&mut h, reference);
    record_consent(&mut h, reference);
    start_visit_and_protocol(&mut h);
    h
}

/// A capture that stores nothing new (the same pixels again) does not advance the protocol;
/// the view shows as failed, the series is not "complete", and what is missing is named.
#[test]
fn a_failed_capture_does_not_advance_and_the_series_names_what_is_missing() {
    // One still frame: every capture has the same pixels.
    let s = station(&[3]);
    let mut h = at_frontal_step(&s, "P-0101", [1366.0, 900.0]);
    capture_now(&mut h);
    let first = h
        .state()
        .state()
        .last_capture
        .as_ref()
        .unwrap()
        .capture
        .id
        .clone();
    until(&mut h, "the next view", |h| h.state().state().step == 1);
    // The series strip shows what was stored for the frontal view.
    until(&mut h, "the strip's preview", |h| {
        h.state().state().thumbs.contains_key(&first)
    });
    // The oblique view from the very same pixels: a frontal face does not pass as oblique (the
    // override is needed), and nothing new is stored.
    until(&mut h, "the view check", |h| {
        h.state()
            .state()
            .gate
            .reasons
            .iter()
            .any(|r| r.contains("Oblique left 45° view needs about 45°"))
    });
    // Not ready once the shown readiness has followed the live one (it holds "ready" for
    // a moment after the frontal view, so that one odd frame does not flicker it).
    until(&mut h, "not ready for the oblique view", |h| {
        !h.state().state().gate.ready
    });
    until(&mut h, "a capture decision", |h| {
        h.state().state().gate.refusal.is_none()
    });
    click(&mut h, "Capture with override…");
    type_into(&mut h, "Override reason", "test: same frame again");
    click(&mut h, "Capture anyway");
    until(&mut h, "the failure", |h| {
        h.state().state().step_failures.contains_key(&1)
    });
    let st = h.state().state();
    assert_eq!(
        st.step, 1,
        "the protocol advanced past a view that was not stored"
    );
    assert_eq!(st.last_capture.as_ref().unwrap().capture.id, first);
    assert!(!st.series_complete());
    assert!(shows(&h, "FAILED"));
    assert!(shows(&h, "Still to take: Oblique left 45°"));
    assert!(shows(&h, "nothing new was stored"));
}

/// Single-key shortcuts do nothing while a text field has the keyboard; Enter never captures.
#[test]
fn shortcuts_are_ignored_while_typing_and_enter_never_captures() {
    let s = station(&[3]);
    let mut h = at_frontal_step(&s, "P-0102", [1366.0, 900.0]);
    until(&mut h, "ready", |h| {
        let g = &h.state().state().gate;
        g.refusal.is_none()
    });
    let node = h.get_by_label("Find patient");
    node.focus();
    h.step();
    for key in [
        egui::Key::N,
        egui::Key::Space,
        egui::Key::Enter,
        egui::Key::P,
    ] {
        h.key_press(key);
        h.step();
        h.step();
    }
    let st = h.state().state();
    assert_eq!(st.step, 0, "a shortcut moved the protocol while typing");
    assert!(
        !st.capture_pending && st.last_capture.is_none(),
        "captured while typing"
    );
    // Enter with nothing focused does not capture either (Space does).
    h.key_press(egui::Key::Escape);
    h.step();
    h.key_press(egui::Key::Enter);
    h.step();
    h.step();
    assert!(h.state().state().last_capture.is_none());
}

/// The override dialog lists what was out of tolerance when it opened, and those reasons are
/// what the capture records.
#[test]
fn the_override_dialog_keeps_the_reasons_it_opened_with() {
    // The drifted demo pose: the lighting or pose is out of tolerance.
    let s = station(&[5]);
    let mut h = at_frontal_step(&s, "P-0103", [1366.0, 900.0]);
    until(&mut h, "a capture decision", |h| {
        h.state().state().gate.refusal.is_none()
    });
    click(&mut h, "Capture with override…");
    let reasons = h.state().state().forms.override_reasons.clone();
    for r in &reasons {
        assert!(shows(&h, r), "the dialog does not list {r}");
    }
    if reasons.is_empty() {
        assert!(shows(&h, "within tolerance when this opened"));
    }
    type_into(&mut h, "Override reason", "patient cannot hold still");
    click(&mut h, "Capture anyway");
    until(&mut h, "the capture", |h| {
        h.state().state().last_capture.is_some()
    });
    let c = &h.state().state().last_capture.as_ref().unwrap().capture;
    let o = c.analysis.as_ref().unwrap().override_.as_ref().unwrap();
    assert_eq!(o.reason, "patient cannot hold still");
    // What the dialog showed first, then anything else out of tolerance for the stored frame.
    assert_eq!(o.out_of_tolerance[..reasons.len()], reasons[..]);
    assert!(
        o.out_of_tolerance[reasons.len()..]
            .iter()
            .all(|r| r.starts_with("at capture: ") || r.starts_with("as stored: ")),
        "{:?}",
        o.out_of_tolerance
    );
}

/// Confounders saved with a visit show ticked when the visit is opened again; unsaved ticks
/// are not dropped without asking.
#[test]
fn saved_confounders_show_after_reopening_and_unsaved_ones_ask_first() {
    let s = station(&[3]);
    let mut h = at_frontal_step(&s, "P-0104", [1366.0, 900.0]);
    click(&mut h, "Make-up, tinted products or hair fibres present");
    capture_now(&mut h);
    // Another patient, then back: the checklist of the visit is what was saved.
    assert!(
        !h.state().state().draft.dirty,
        "the capture saved the checklist"
    );
    create_patient(&mut h, "P-0105");
    click(&mut h, "P-0104");
    until(&mut h, "P-0104 again", |h| {
        h.state()
            .state()
            .patient
            .as_ref()
            .is_some_and(|p| p.patient.reference == "P-0104")
    });
    let today = sameframe::timefmt::fmt_date(sameframe::timefmt::today());
    let visit = format!("{today} · Face · Profhilo lot L2311");
    click(&mut h, &visit);
    until(&mut h, "the saved checklist", |h| {
        h.state()
            .state()
            .draft
            .items
            .get("makeup_present")
            .is_some_and(|v| v.0)
    });
    // Untick without saving, then switch patient: the station asks first.
    click(&mut h, "Make-up, tinted products or hair fibres present");
    assert!(h.state().state().draft.dirty);
    type_into(&mut h, "Find patient", "P-0105");
    until(&mut h, "the search", |h| {
        h.state().state().patients.len() == 1
    });
    click(&mut h, "P-0105");
    until(&mut h, "the question", |h| shows(h, "Unsaved changes"));
    click(&mut h, "Keep editing");
    assert_eq!(
        h.state()
            .state()
            .patient
            .as_ref()
            .unwrap()
            .patient
            .reference,
        "P-0104"
    );
    assert!(
        h.state().state().draft.dirty,
        "the unsaved ticks were dropped"
    );
}

/// At 1366 × 768 the essentials are on screen without scrolling: the patient, the view, and
/// Capture; hiding the side panels keeps the patient and Capture.
#[test]
fn a_clinic_laptop_shows_the_patient_the_view_and_capture() {
    let s = station(&[3]);
    let mut h = at_frontal_step(&s, "P-0106", [1366.0, 768.0]);
    let screen = egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(1366.0, 768.0));
    for label in ["P-0106", "Capture"] {
        let r = h.get_all_by_label(label).next().unwrap().rect();
        assert!(screen.contains_rect(r), "{label} is off screen at {r:?}");
    }
    assert!(shows(&h, "1/5 Frontal"));
    click(&mut h, "Session panel");
    click(&mut h, "Meters panel");
    let capture = h.get_by_label("Capture").rect();
    assert!(screen.contains_rect(capture), "{capture:?}");
    assert!(shows(&h, "P-0106"), "the patient is hidden with the panels");
}

/// A protocol for another area than the visit's is refused, not only warned.
#[test]
fn a_protocol_for_another_area_is_refused() {
    let s = station(&[3]);
    let mut h = at_frontal_step(&s, "P-0107", [1366.0, 900.0]);
    click(&mut h, "Choose protocol");
    click(&mut h, "Scalp: vertex, frontal hairline, crown");
    until(&mut h, "the refusal", |h| {
        h.state()
            .state()
            .gate
            .refusal
            .as_deref()
            .is_some_and(|r| r.contains("this visit treats the face"))
    });
    assert!(!enabled(&h, "Capture with override…"));
}

/// After a restart the station offers today's open visit, and one click takes it up at the
/// next view to take.
#[test]
fn a_restart_offers_to_resume_todays_visit() {
    let s = station(&[3]);
    {
        let mut h = at_frontal_step(&s, "P-0108", [1366.0, 900.0]);
        capture_now(&mut h);
    }
    let mut h = harness(options(&s, &s.frames));
    until(&mut h, "the offer", |h| shows(h, "Today's open visit"));
    assert!(shows(&h, "P-0108"));
    click(&mut h, "Resume");
    until(&mut h, "the session", |h| {
        let st = h.state().state();
        st.patient
            .as_ref()
            .is_some_and(|p| p.patient.reference == "P-0108")
            && st.visit_id.is_some()
            && st.protocol.as_deref() == Some("face")
            && st.step == 1
    });
}

/// Creating a store protected by a key file says where the key is and asks to back it up;
/// a disabled Create button says why.
#[test]
fn a_new_key_file_store_asks_for_a_backup() {
    let t = util::TestStore::uninitialised();
    let s = station_of(t, &[3]);
    let mut o = options(&s, &s.frames);
    o.store.key_file = None;
    let mut h = harness(o);
    until(&mut h, "the first-run dialog", |h| {
        shows(h, "Create a sameframe store")
    });
    click(&mut h, "Key file (keep it on separate media)");
    assert!(!enabled(&h, "Create store"));
    let key = s.data.parent().unwrap().join("station.key");
    type_into(&mut h, "Key file", key.to_str().unwrap());
    click(&mut h, "Create store");
    until(&mut h, "the backup request", |h| {
        shows(h, "Back up the key file now")
    });
    assert!(shows(&h, key.to_str().unwrap()));
    click(&mut h, "I have backed it up");
    assert!(h.state().state().key_backup.is_none());
}

/// A form's error is shown at the form, in the station's words (no command-line flags), and
/// goes once the field is edited; buttons that cannot act say why; views have plain names.
#[test]
fn errors_are_shown_at_the_form_in_plain_words_and_go_when_fixed() {
    let s = station(&[3]);
    let mut h = harness(options(&s, &s.frames));
    create_patient(&mut h, "P-0109");
    assert!(!enabled(&h, "Record consent"));
    type_into(&mut h, "Signed by", "P-0109");
    type_into(&mut h, "Expires on (optional)", "2020-01-01");
    click(&mut h, "Record consent");
    until(&mut h, "the error at the form", |h| {
        h.state().state().forms.errors.consent.is_some()
    });
    let e = h.state().state().forms.errors.consent.clone().unwrap();
    assert!(!e.contains("--"), "a flag name leaked: {e}");
    assert!(shows(&h, &e), "the error is not shown: {e}");
    // Fixing the field clears it.
    h.get_by_label("Expires on (optional)").focus();
    h.step();
    h.key_press(egui::Key::Backspace);
    h.step();
    h.step();
    assert!(h.state().state().forms.errors.consent.is_none());
    assert!(!shows(&h, &e));
    // A half-typed date: the button says why it cannot record.
    assert!(!enabled(&h, "Record consent"));
    for _ in 0..12 {
        h.key_press(egui::Key::Backspace);
        h.step();
    }
    click(&mut h, "Record consent");
    until(&mut h, "the consent", |h| {
        h.state().state().capture_consent().is_some()
    });
    // Plain view names and a Capture button that stays put as the hints change.
    let refused = h.get_by_label("Capture").rect();
    start_visit_and_protocol(&mut h);
    until(&mut h, "a decision", |h| {
        h.state().state().gate.refusal.is_none()
    });
    assert_eq!(
        h.get_by_label("Capture").rect(),
        refused,
        "the Capture button moved"
    );
    assert!(shows(&h, "Oblique left 45°") && !shows(&h, "oblique_left_45"));
}

/// A follow-up whose pose, re-checked as it is stored, is out of tolerance is refused without
/// an override (whatever the live meter said), and stored with one, the re-check recorded.
#[test]
fn a_follow_up_out_of_tolerance_as_stored_needs_the_override() {
    use sameframe::app::commands::{CaptureJob, CoreCommand, CoreEvent, Focus};
    use sameframe::app::core::CoreWorker;
    use sameframe::records::measurements::{Override, StationMeasurements};
    let s = station(&[]);
    let all = s.frames.parent().unwrap().join("all");
    let aligned = std::fs::read(all.join("demo-03.png")).unwrap();
    // A keyframe the pair measure scores about 52/100 against demo-03.
    let drifted = image::open(all.join("demo-06.png")).unwrap().to_rgb8();
    let (consent, visit, baseline) =
        patient_with_frontal_baseline(&s, "P-0110", &[Scope::Clinical], &aligned);
    let (tx, rx) = std::sync::mpsc::channel();
    let worker =
        CoreWorker::spawn(options(&s, &s.frames).store, tx, std::sync::Arc::new(|| {})).unwrap();
    worker.send(CoreCommand::Open);
    let job = |override_: Option<Override>| CaptureJob {
        frame: std::sync::Arc::new(sameframe::camera::CameraFrame {
            seq: 1,
            image: std::sync::Arc::new(drifted.clone()),
            encoded: None,
            captured_at: chrono::Local::now(),
            received: Instant::now(),
        }),
        focus: Focus {
            patient_ref: "P-0110".into(),
            protocol: Some("face".into()),
            visit_id: Some(visit.clone()),
        },
        consent_id: consent.clone(),
        visit_id: visit.clone(),
        area: Area::Face,
        view: View::Frontal,
        baseline_id: Some(baseline.clone()),
        confounders: Vec::new(),
        note: None,
        // As if the live meter had said "ready".
        analysis: StationMeasurements {
            override_,
            ..Default::default()
        },
    };
    let next = |want: &dyn Fn(&CoreEvent) -> bool| loop {
        let e = rx.recv_timeout(Duration::from_secs(60)).expect("an answer");
        if want(&e) {
            return e;
        }
    };
    worker.send(CoreCommand::Capture(Box::new(job(None))));
    match next(&|e| {
        matches!(
            e,
            CoreEvent::CaptureFailed { .. } | CoreEvent::Captured { .. }
        )
    }) {
        CoreEvent::CaptureFailed { message, .. } => {
            assert!(message.contains("re-checked as stored"), "{message}");
            assert!(message.contains("override"), "{message}");
        }
        _ => panic!("a follow-up out of tolerance as stored was stored without an override"),
    }
    assert_eq!(store(&s).list_captures(Some("P-0110")).unwrap().len(), 1);
    worker.send(CoreCommand::Capture(Box::new(job(Some(Override {
        reason: "patient cannot turn further".into(),
        out_of_tolerance: Vec::new(),
    })))));
    let CoreEvent::Captured { capture, .. } = next(&|e| {
        matches!(
            e,
            CoreEvent::CaptureFailed { .. } | CoreEvent::Captured { .. }
        )
    }) else {
        panic!("refused even with the override");
    };
    let a = capture.analysis.as_ref().unwrap();
    let kept = a.pose_at_commit.as_ref().unwrap();
    assert!(!kept.within(), "{kept:?}");
    let o = a.override_.as_ref().unwrap();
    assert!(
        o.out_of_tolerance
            .iter()
            .any(|r| r.starts_with("as stored: ")),
        "{o:?}"
    );
    // And `pair` says the same of the stored pair.
    let pair = store(&s).grade_pair(&baseline, &capture.id).unwrap();
    assert_eq!(pair.pose_score, kept.score);
}

/// The compare window's "Prepare for publication": refused without a signing identity and,
/// for a patient who may not be recognised, without de-identification, each reason shown at
/// the form; then a masked copy, signed and recorded.
#[test]
fn a_compared_pair_is_prepared_for_publication_from_the_compare_window() {
    let s = station(&[5]);
    let all = s.frames.parent().unwrap().join("all");
    let baseline_png = std::fs::read(all.join("demo-03.png")).unwrap();
    let (_, _, baseline_id) = patient_with_frontal_baseline(
        &s,
        "P-0011",
        &[Scope::Clinical, Scope::Publication],
        &baseline_png,
    );
    let mut h = harness(options(&s, &s.frames));
    until(&mut h, "the patient list", |h| shows(h, "P-0011"));
    click(&mut h, "P-0011");
    until(&mut h, "the patient", |h| {
        h.state().state().patient.is_some()
    });
    start_visit_and_protocol(&mut h);
    until(&mut h, "the ghost and the pose", |h| {
        let st = h.state().state();
        st.baseline.is_some() && st.live.as_ref().is_some_and(|r| r.pose.is_some())
    });
    capture_now(&mut h);
    let followup = h
        .state()
        .state()
        .last_capture
        .as_ref()
        .unwrap()
        .capture
        .id
        .clone();
    click(&mut h, "Compare…");
    until(&mut h, "the pair in Compare", |h| {
        h.state().state().compare.loaded.is_some()
    });
    assert_eq!(
        h.state().state().compare.followup_id.as_deref(),
        Some(followup.as_str())
    );
    click(&mut h, "Prepare for publication");
    // The copy goes beside the data folder by default, never inside it.
    let out = s
        .data
        .parent()
        .unwrap()
        .join("publications")
        .join(format!("{followup}-website.jpg"));
    assert_eq!(
        h.state().state().compare.publish.out,
        out.display().to_string()
    );
    let error_shows = |h: &Harness<'static, StationApp>, needle: &str| {
        h.state()
            .state()
            .compare
            .publish
            .error
            .as_deref()
            .is_some_and(|e| e.contains(needle))
    };
    click(&mut h, "Prepare copy");
    until(&mut h, "the missing identity at the form", |h| {
        error_shows(h, "publish keys init")
    });
    s.t.ok(&["publish", "keys", "init", "--clinic", "Example Clinic"]);
    type_into(&mut h, "Grade override reason", "station test pair");
    click(&mut h, "Prepare copy");
    until(&mut h, "the consent's refusal at the form", |h| {
        error_shows(h, "recognisable")
    });
    assert!(shows(&h, "does not allow the patient to be recognisable"));
    assert!(!out.exists());
    click(&mut h, "Mask outside the treated zone");
    type_into(&mut h, "Treated zone", "cheeks");
    click(&mut h, "Prepare copy");
    until(&mut h, "the prepared copy", |h| {
        let p = &h.state().state().compare.publish;
        p.done.is_some()
            || p.error
                .as_deref()
                .is_some_and(|e| !e.contains("recognisable"))
    });
    let p = &h.state().state().compare.publish;
    assert!(p.error.is_none(), "{:?}", p.error);
    assert!(shows(&h, "signed, recorded for the take-down list"));
    assert!(out.exists() && out.with_extension("txt").exists());
    let list = s.t.ok(&["publish", "list"]);
    let rec = &list.as_array().unwrap()[0];
    assert_eq!(rec["channel"], "website");
    assert_eq!(
        rec["capture_ids"],
        serde_json::json!([baseline_id, followup])
    );
    assert!(
        rec["prepared"]["deidentified"]
            .as_str()
            .unwrap()
            .contains("cheeks"),
        "{rec}"
    );
}

#[test]
fn the_treatment_record_is_drawn_and_recorded_from_the_treatment_window() {
    let s = station(&[5]);
    let all = s.frames.parent().unwrap().join("all");
    let baseline_png = std::fs::read(all.join("demo-03.png")).unwrap();
    patient_with_frontal_baseline(&s, "P-0017", &[Scope::Clinical], &baseline_png);
    let mut h = harness(options(&s, &s.frames));
    until(&mut h, "the patient list", |h| shows(h, "P-0017"));
    click(&mut h, "P-0017");
    until(&mut h, "the patient", |h| {
        h.state().state().patient.is_some()
    });
    start_visit_and_protocol(&mut h);
    let visit = h.state().state().visit_id.clone().unwrap();
    click(&mut h, "Treatment record…");
    until(&mut h, "the treatment record", |h| {
        let t = &h.state().state().treatment;
        t.loaded.as_ref().is_some_and(|l| l.picture.is_some())
    });
    // The visit's product (started with a lot, no expiry) is already offered for points; a
    // second one is added with its expiry, an expired one is refused at the form.
    type_into(&mut h, "Product used", "Skinvive");
    type_into(&mut h, "Lot number", "SV-88");
    type_into(&mut h, "Expiry", "2020-01-31");
    click(&mut h, "Add product");
    until(&mut h, "the expired lot refused", |h| {
        h.state()
            .state()
            .treatment
            .error
            .as_deref()
            .is_some_and(|e| e.contains("expired"))
    });
    // The form keeps what was typed; only the expiry is corrected.
    h.get_by_label("Expiry")
        .set_text_value_accesskit("2027-01-31");
    h.step();
    h.step();
    click(&mut h, "Add product");
    until(&mut h, "the product", |h| {
        h.state()
            .state()
            .treatment
            .loaded
            .as_ref()
            .is_some_and(|l| l.view.record.products.len() == 1)
    });
    // Zones from the template on the baseline's face, then two points clicked on the picture.
    click(&mut h, "Place template zones");
    until(&mut h, "the template zones", |h| {
        !h.state().state().treatment.draft.zones.is_empty()
    });
    click(&mut h, "Area map picture");
    let picture = h.get_by_label("Area map picture").rect();
    h.hover_at(picture.center() + egui::vec2(30.0, 10.0));
    h.step();
    h.get_by_label("Area map picture").click();
    h.step();
    h.step();
    assert_eq!(h.state().state().treatment.draft.points.len(), 2);
    assert!(shows(&h, "2 injection point(s) — not saved"));
    click(&mut h, "Save map");
    until(&mut h, "the saved map", |h| {
        h.state()
            .state()
            .treatment
            .loaded
            .as_ref()
            .is_some_and(|l| !l.view.record.maps.is_empty())
    });
    // End of session: blanching is flagged at once; the response and pain are recorded.
    click(&mut h, "Blanching");
    click(&mut h, "mild");
    assert!(shows(&h, "vascular occlusion"));
    click(&mut h, "Record response");
    until(&mut h, "the response", |h| {
        h.state()
            .state()
            .treatment
            .loaded
            .as_ref()
            .is_some_and(|l| !l.view.record.responses.is_empty())
    });
    h.get_all_by_label("Pain (0–10)")
        .find(|n| n.accesskit_node().role() == egui::accesskit::Role::Slider)
        .expect("the pain slider")
        .set_value_accesskit(4.0);
    h.step();
    h.step();
    click(&mut h, "At the end of the session");
    click(&mut h, "Record pain");
    until(&mut h, "the pain", |h| {
        h.state()
            .state()
            .treatment
            .loaded
            .as_ref()
            .is_some_and(|l| !l.view.record.pain.is_empty())
    });
    click(&mut h, "Outcome at follow-up");
    assert!(
        shows(&h, "Success:"),
        "the clinic's definition of success is beside the form"
    );
    click(&mut h, "Clinician GAIS");
    click(&mut h, "2 much improved");
    click(&mut h, "Record outcome");
    until(&mut h, "the outcome", |h| {
        h.state()
            .state()
            .treatment
            .loaded
            .as_ref()
            .is_some_and(|l| !l.view.record.outcomes.is_empty())
    });
    // What the core recorded, as the CLI reads it.
    let shown = s.t.ok(&["visit", "show", &visit]);
    let t = &shown["treatment"];
    assert_eq!(t["products"].as_array().unwrap().len(), 1, "{shown}");
    let map = &t["maps"][0][1];
    assert_eq!(map["points"].as_array().unwrap().len(), 2, "{map}");
    assert_eq!(map["points"][0]["lot"], "L2311");
    assert!(!map["zones"].as_array().unwrap().is_empty());
    assert_eq!(
        t["responses"][0][1]["findings"].as_array().unwrap().len(),
        7
    );
    assert_eq!(t["pain"][0][1]["score"], 4);
    assert_eq!(t["pain"][0][1]["when"], "end");
    assert_eq!(t["outcomes"][0][1]["clinician_gais"], 2);
    // A follow-up taken now shows the map, moved onto it, in Compare.
    capture_now(&mut h);
    click(&mut h, "Compare…");
    until(&mut h, "the pair in Compare", |h| {
        h.state().state().compare.loaded.is_some()
    });
    let pair = h.state().state().compare.loaded.as_ref().unwrap();
    assert!(pair.maps[0].is_some(), "the map on the baseline");
    assert_eq!(
        pair.maps[1].as_ref().map(|m| m.points.len()),
        Some(2),
        "the map on the follow-up"
    );
    assert!(shows(&h, "Area map of visit"));
}

#[test]
fn a_follow_up_that_is_the_baselines_pixels_is_flagged_at_the_station() {
    // The demo sequence is one photo moved about: a baseline from another day and a frame of
    // the same sequence are the same pixels, which the station must not take for a new photo.
    let s = station(&[5]);
    let all = s.frames.parent().unwrap().join("all");
    let png = std::fs::read(all.join("demo-03.png")).unwrap();
    let (_, _, baseline) = patient_with_frontal_baseline_at(
        &s,
        "P-0020",
        &[Scope::Clinical],
        &png,
        Some("2026-01-05T10:00:00"),
    );
    let mut h = harness(options(&s, &s.frames));
    until(&mut h, "the patient list", |h| shows(h, "P-0020"));
    click(&mut h, "P-0020");
    until(&mut h, "the patient", |h| {
        h.state().state().patient.is_some()
    });
    start_visit_and_protocol(&mut h);
    until(&mut h, "the ghost and the pose", |h| {
        let st = h.state().state();
        st.baseline.is_some() && st.live.as_ref().is_some_and(|r| r.pose.is_some())
    });
    capture_now(&mut h);
    let saved = h
        .state()
        .state()
        .last_capture
        .as_ref()
        .unwrap()
        .capture
        .clone();
    let copy = saved.copy_of.expect("the capture is flagged as a copy");
    assert_eq!(copy.capture_id, baseline);
    assert!(
        h.state()
            .state()
            .notices
            .iter()
            .any(|n| n.error && n.text.contains("not a new photo")),
        "the station says so"
    );
    assert!(
        shows(&h, "NOT A NEW PHOTO"),
        "and shows it with the last capture"
    );
    click(&mut h, "Compare…");
    until(&mut h, "the pair in Compare", |h| {
        h.state().state().compare.loaded.is_some()
    });
    assert!(shows(&h, "not a new photo"), "Compare gives the reason");
}

//! The command line: argument parsing and output. Each verb group lives in its own file and
//! calls the library; with `--json` every command prints exactly one JSON document on stdout.

mod analyze;
mod audit;
mod capture;
mod consent;
mod export;
mod patient;
mod publish;
mod review;
mod station;
mod store_cmds;
mod treatment;
mod visit;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use serde::Serialize;
use zeroize::Zeroizing;

use sameframe::store::{KeySource, OpenOptions, Store};

/// sameframe: comparable, consent-linked clinical photographs.
#[derive(Debug, Parser)]
#[command(name = "sameframe", version, about, long_about = None)]
pub struct Cli {
    /// Data directory (default: the platform data folder).
    #[arg(long, global = true, env = "SAMEFRAME_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Who is acting, for the audit log (default: the OS user).
    #[arg(long, global = true, env = "SAMEFRAME_ACTOR", value_name = "NAME")]
    pub actor: Option<String>,
    /// Print exactly one JSON document on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Key file of an encrypted store (default: the one recorded at `init`).
    #[arg(long, global = true, env = "SAMEFRAME_KEY_FILE", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Read the store passphrase from this file (or set SAMEFRAME_PASSPHRASE; else a prompt).
    #[arg(long, global = true, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Use a key file that other users can read (refused otherwise, as ssh refuses an open
    /// private key).
    #[arg(long, global = true)]
    pub allow_open_key_file: bool,
    /// A calibration folder searched before `<data dir>/calibration` and the built-in files.
    #[arg(
        long,
        global = true,
        env = "SAMEFRAME_CALIBRATION_DIR",
        value_name = "DIR"
    )]
    pub calibration_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the capture station (also what `sameframe` with no command does).
    App(station::AppArgs),
    /// View protocols and a patient's progress through one.
    #[command(subcommand)]
    Protocol(station::ProtocolCmd),
    /// Cameras on this machine; the replay camera's demo frames.
    #[command(subcommand)]
    Camera(station::CameraCmd),
    /// Create a store (choose how its photos are encrypted at rest).
    Init(store_cmds::InitArgs),
    /// Show the store's location, schema, encryption and counts.
    Status,
    /// Register and look up patients.
    #[command(subcommand)]
    Patient(patient::PatientCmd),
    /// Record, show and list consents.
    #[command(subcommand)]
    Consent(consent::ConsentCmd),
    /// Record treatment visits: products and lots, skin response, pain, outcome; the summary.
    #[command(subcommand)]
    Visit(visit::VisitCmd),
    /// The area map: zones and injection points drawn over a capture.
    #[command(subcommand)]
    Map(treatment::MapCmd),
    /// Product lots: the recall query.
    #[command(subcommand)]
    Lot(treatment::LotCmd),
    /// Adverse events after treatment.
    #[command(subcommand)]
    Adverse(treatment::AdverseCmd),
    /// Import, show, list and export captures.
    #[command(subcommand)]
    Capture(capture::CaptureCmd),
    /// Re-hash every blob and open every record; report corrupt, missing and orphan objects.
    Verify(store_cmds::VerifyArgs),
    /// Remove orphan blob files left by interrupted imports.
    Gc(store_cmds::GcArgs),
    /// Copy the store into another backend or folder (embedded <-> shared; backups).
    Migrate(store_cmds::MigrateArgs),
    /// Read and verify the tamper-evident audit log.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// Read and change store settings (retention).
    #[command(subcommand)]
    Config(store_cmds::ConfigCmd),
    /// Encrypt an unencrypted store (or finish an interrupted migration).
    Encrypt(store_cmds::EncryptArgs),
    /// Analyse a photo: lighting against a card, pose against a baseline.
    #[command(subcommand)]
    Analyze(analyze::AnalyzeCmd),
    /// Save a room's lighting profile from a calibration photo of the card.
    Calibrate(analyze::CalibrateArgs),
    /// Review published images: sources, consent, pairing, comparability, disclosures, edits,
    /// captions.
    Review(review::ReviewArgs),
    /// Grade the comparability of a baseline/follow-up pair (A–F, with reasons).
    Pair {
        #[arg(value_name = "BASELINE_ID")]
        baseline: String,
        #[arg(value_name = "FOLLOWUP_ID")]
        followup: String,
    },
    /// Record and list publications of clinic images (for take-down requests).
    #[command(subcommand)]
    Publish(review::PublishCmd),
    /// Export records in standard formats (DICOM).
    #[command(subcommand)]
    Export(export::ExportCmd),
    /// Take-downs of published images that withdrawals asked for: list them, close them with
    /// evidence.
    #[command(subcommand)]
    Takedown(review::TakedownCmd),
    /// Maintain the captures' perceptual fingerprints.
    #[command(subcommand)]
    Fingerprint(review::FingerprintCmd),
}

/// Shared context of a command.
pub struct Ctx {
    pub data_dir: PathBuf,
    pub actor: String,
    pub json: bool,
    pub key_file: Option<PathBuf>,
    pub passphrase_file: Option<PathBuf>,
    pub calibration_dir: Option<PathBuf>,
    pub allow_open_key_file: bool,
}

impl Ctx {
    fn from_cli(cli: &Cli) -> Result<Self> {
        let data_dir = match &cli.data_dir {
            Some(d) => d.clone(),
            None => sameframe::store::default_data_dir()
                .context("no platform data folder: pass --data-dir or set SAMEFRAME_DATA_DIR")?,
        };
        // The face models, parsed once, are kept with the data for the next process.
        sameframe::analysis::pose::face::use_cache_dir(data_dir.join("cache").join("models"));
        Ok(Ctx {
            data_dir,
            actor: cli
                .actor
                .clone()
                .filter(|a| !a.trim().is_empty())
                .unwrap_or_else(sameframe::store::os_user),
            json: cli.json,
            key_file: cli.key_file.clone(),
            passphrase_file: cli.passphrase_file.clone(),
            calibration_dir: cli.calibration_dir.clone(),
            allow_open_key_file: cli.allow_open_key_file,
        })
    }

    /// A passphrase given without a prompt: `--passphrase-file` or `SAMEFRAME_PASSPHRASE`.
    pub fn given_passphrase(&self) -> Result<Option<Zeroizing<String>>> {
        if let Some(f) = &self.passphrase_file {
            let text = Zeroizing::new(
                sameframe::fsutil::read_text_capped(f, 4096)
                    .with_context(|| format!("could not read passphrase file {}", f.display()))?,
            );
            return Ok(Some(Zeroizing::new(
                text.trim_end_matches(['\r', '\n']).to_string(),
            )));
        }
        Ok(std::env::var("SAMEFRAME_PASSPHRASE")
            .ok()
            .filter(|p| !p.is_empty())
            .map(Zeroizing::new))
    }

    fn key_source(&self) -> Result<KeySource> {
        if let Some(k) = &self.key_file {
            return Ok(KeySource::KeyFile(k.clone()));
        }
        if let Some(p) = self.given_passphrase()? {
            return Ok(KeySource::Passphrase(p));
        }
        if std::io::stdin().is_terminal() {
            return Ok(KeySource::Ask(Box::new(|| {
                rpassword::prompt_password("sameframe store passphrase: ")
                    .map(Zeroizing::new)
                    .map_err(|e| e.to_string())
            })));
        }
        Ok(KeySource::None)
    }

    /// Open options for this invocation.
    pub fn open_options(&self) -> Result<OpenOptions> {
        Ok(OpenOptions {
            actor: self.actor.clone(),
            keys: self.key_source()?,
            calibration_dir: self.calibration_dir.clone(),
            allow_open_key_file: self.allow_open_key_file,
        })
    }

    /// Open the store.
    pub fn open(&self) -> Result<Store> {
        Ok(sameframe::backends::open(
            &self.data_dir,
            self.open_options()?,
        )?)
    }

    /// Print `value` as JSON, or the human text.
    pub fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) -> Result<()> {
        let mut out = std::io::stdout().lock();
        if self.json {
            serde_json::to_writer_pretty(&mut out, value)?;
            writeln!(out)?;
        } else {
            // Names, references and file names are shown, never obeyed.
            let text = sameframe::text::terminal_safe(&human(), true);
            if !text.is_empty() {
                writeln!(out, "{}", text.trim_end())?;
            }
        }
        Ok(())
    }

    /// A note for humans on stderr (never pollutes JSON output).
    pub fn note(&self, msg: &str) {
        eprintln!("{}", sameframe::text::terminal_safe(msg, false));
    }
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let ctx = Ctx::from_cli(&cli)?;
    let command = cli
        .command
        .unwrap_or_else(|| Command::App(station::AppArgs::default()));
    match command {
        Command::App(a) => station::app(&ctx, a),
        Command::Protocol(c) => station::protocol(&ctx, c),
        Command::Camera(c) => station::camera(&ctx, c),
        Command::Init(a) => store_cmds::init(&ctx, a),
        Command::Status => store_cmds::status(&ctx),
        Command::Patient(c) => patient::run(&ctx, c),
        Command::Consent(c) => consent::run(&ctx, c),
        Command::Visit(c) => visit::run(&ctx, c),
        Command::Map(c) => treatment::map(&ctx, c),
        Command::Lot(c) => treatment::lot(&ctx, c),
        Command::Adverse(c) => treatment::adverse(&ctx, c),
        Command::Capture(c) => capture::run(&ctx, c),
        Command::Verify(a) => store_cmds::verify(&ctx, a),
        Command::Migrate(a) => store_cmds::migrate(&ctx, a),
        Command::Gc(a) => store_cmds::gc(&ctx, a),
        Command::Audit(c) => audit::run(&ctx, c),
        Command::Config(c) => store_cmds::config(&ctx, c),
        Command::Encrypt(a) => store_cmds::encrypt(&ctx, a),
        Command::Analyze(c) => analyze::run(&ctx, c),
        Command::Calibrate(a) => analyze::calibrate(&ctx, a),
        Command::Review(a) => review::review(&ctx, a),
        Command::Pair { baseline, followup } => review::pair(&ctx, baseline, followup),
        Command::Publish(c) => review::publish(&ctx, c),
        Command::Takedown(c) => review::takedown(&ctx, c),
        Command::Export(c) => export::run(&ctx, c),
        Command::Fingerprint(c) => review::fingerprint(&ctx, c),
    }
}

/// Parse `YYYY-MM-DD` for clap.
pub fn parse_date(s: &str) -> Result<chrono::NaiveDate, String> {
    sameframe::timefmt::parse_date(s)
        .ok_or_else(|| format!("{s:?} is not a date (expected YYYY-MM-DD)"))
}

/// A value from a person or a file, shown on one line of human output (a line break in a
/// file name or a note cannot start a line of its own).
pub fn one_line(s: &str) -> String {
    sameframe::text::terminal_safe(s, false)
}

/// Read a file the user named, within the limits of `calibration`: a regular file only, its
/// size checked before it is read (the error names the file).
pub fn read_input(
    path: &std::path::Path,
    calibration: &sameframe::calibration::Calibration,
) -> Result<Vec<u8>> {
    let limits = calibration.limits()?;
    Ok(sameframe::ingest::read_file(path, &limits)?)
}

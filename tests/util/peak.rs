//! The peak resident memory of a command, as the kernel accounts it (GNU time's maximum
//! resident set size), or by polling `/proc/PID/status` where GNU time is missing.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Run `cmd` to the end; its output and its peak resident memory in MiB.
pub fn run(cmd: &mut Command) -> (Output, f64) {
    if Path::new("/usr/bin/time").exists() {
        let report = tempfile::NamedTempFile::new().unwrap();
        let mut timed = Command::new("/usr/bin/time");
        timed.arg("-f").arg("%M").arg("-o").arg(report.path());
        timed.arg(cmd.get_program()).args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => timed.env(k, v),
                None => timed.env_remove(k),
            };
        }
        if let Some(d) = cmd.get_current_dir() {
            timed.current_dir(d);
        }
        let out = timed.output().unwrap();
        let text = std::fs::read_to_string(report.path()).unwrap_or_default();
        // The last line holds the figure (a line before it may say the command failed).
        let kib: f64 = text
            .lines()
            .rev()
            .find_map(|l| l.trim().parse().ok())
            .unwrap_or(0.0);
        return (out, kib / 1024.0);
    }
    // Output to files, so a child with a lot to say never waits on a full pipe.
    let (so, se) = (tempfile::tempfile().unwrap(), tempfile::tempfile().unwrap());
    let mut child = cmd
        .stdout(Stdio::from(so.try_clone().unwrap()))
        .stderr(Stdio::from(se.try_clone().unwrap()))
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0.0f64;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status)
            && let Some(v) = s
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        {
            peak_kib = peak_kib.max(v);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let status = child.wait().unwrap();
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut v = Vec::new();
        f.rewind().unwrap();
        f.read_to_end(&mut v).unwrap();
        v
    };
    let out = Output {
        status,
        stdout: read(so),
        stderr: read(se),
    };
    (out, peak_kib / 1024.0)
}

//! `sameframe`: with no command, opens the capture station; every station action is also a
//! CLI verb with `--json` output.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc keeps freed memory for the next allocation: the analyses allocate and free
/// images of megabytes, which the system allocator hands back to the kernel and faults in
/// again (a third of `analyze pose`'s time went to page faults).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg.push_str(": ");
                    msg.push_str(&c);
                }
            }
            // One line, whatever a file name in it holds.
            eprintln!("error: {}", sameframe::text::terminal_safe(&msg, false));
            ExitCode::from(1)
        }
    }
}

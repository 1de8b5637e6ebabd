//! Command-line parsing, logging set-up and exit codes.
//!
//! One module per subcommand; shared option groups live in [`common`] and
//! are flattened into each. [`exit`] maps what went wrong to the exit code:
//! 0 success, 1 usage, configuration or check failure, 2 runtime failure,
//! 130 a second signal.

mod check;
mod common;
mod create;
mod exit;
mod export;
mod keys;
mod list;
mod maskers;
mod prune;
mod report;
mod restore;
mod verify;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
pub use exit::{ExitStatus, Failure};

/// The version and the commit the binary was built from (see build.rs).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("SCRUBSNAP_COMMIT"), ")");

/// Sanitized, consistent PostgreSQL snapshots: dump, mask, scan for leaks, compress, publish, restore.
///
/// `create` reads a database in one read-only transaction and sends every table through one
/// pipeline: COPY out, mask by the reviewed rules, probe for original values (the leak scan),
/// gzip, store (a folder or S3); the manifest, written last, makes the snapshot visible.
/// `restore`, `export` and `verify` read it back. Exit codes: 0 success, 1 usage,
/// configuration or check failure, 2 runtime failure, 130 a second signal.
#[derive(Debug, Parser)]
#[command(name = "scrubsnap", version = VERSION, about, propagate_version = true)]
struct Cli {
    /// Log format: human-readable text, or one JSON object per line for CI consoles.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "SCRUBSNAP_LOG_FORMAT")]
    log_format: LogFormat,

    /// Log level (error, warn, info, debug, trace) or a tracing filter.
    #[arg(long, global = true, default_value = "info", env = "SCRUBSNAP_LOG_LEVEL")]
    log_level: String,

    /// No progress display, even on a terminal.
    #[arg(long, global = true, env = "SCRUBSNAP_NO_PROGRESS")]
    no_progress: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Dump a database into a new snapshot in a store.
    Create(Box<create::Args>),
    /// Load a snapshot into a database (`pull` for short).
    #[command(alias = "pull")]
    Restore(restore::Args),
    /// Write a snapshot as one plain SQL stream for psql.
    Export(export::Args),
    /// List the snapshots of a store, newest first.
    List(list::Args),
    /// Delete old snapshots (never the newest) and incomplete leftovers.
    Prune(prune::Args),
    /// Check a snapshot's files and checksums; optionally restore it into a scratch database.
    Verify(verify::Args),
    /// Check rules against a database: a coverage report of every column, with personal-data suspicion.
    Check(check::CheckArgs),
    /// List the maskers, with their options and an example each.
    Maskers(maskers::Args),
    /// Rules file tools.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Key pairs for signed snapshots.
    #[command(subcommand)]
    Keys(keys::Command),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `scrubsnap man | man -l -`.
    Man,
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Print the JSON Schema of rules files (for editors and CI validation).
    Schema,
    /// Write a starting rules file for a database to standard output.
    Init(check::InitArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Shared context of every command.
pub struct Context {
    pub progress: scrubsnap::progress::Progress,
    /// Cancelled by a second SIGINT or SIGTERM: the process quits at once.
    pub quit: tokio_util::sync::CancellationToken,
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            if !e.use_stderr() {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // clap quotes the argument it could not use, which may be a
            // connection string: hide anything that looks like a password.
            eprint!("{}", redact(&e.render().to_string()));
            return ExitStatus::Failure.into();
        }
    };
    if let Err(msg) = init_logging(cli.log_format, &cli.log_level) {
        eprintln!("error: {msg}");
        return ExitStatus::Failure.into();
    }
    let interactive = std::io::stderr().is_terminal() && cli.log_format == LogFormat::Text && !cli.no_progress;
    let ctx = Context {
        progress: scrubsnap::progress::Progress::new(interactive),
        quit: tokio_util::sync::CancellationToken::new(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitStatus::Error.into();
        }
    };
    let quit = ctx.quit.clone();
    let result = runtime.block_on(async {
        tokio::select! {
            r = run(cli.command, &ctx) => r,
            () = quit.cancelled() => Err(Failure::aborted()),
        }
    });
    let status = match &result {
        Ok(()) => ExitStatus::Success,
        Err(f) => f.status(),
    };
    if status == ExitStatus::Aborted {
        // Quit at once: no waiting for what still runs.
        runtime.shutdown_background();
    } else {
        // Do not wait for stray blocking tasks (a cancelled decompressor).
        runtime.shutdown_timeout(std::time::Duration::from_secs(1));
        if let Err(f) = &result {
            tracing::error!("{}", f.message());
        }
    }
    status.into()
}

/// Runs one command.
async fn run(command: Command, ctx: &Context) -> Result<(), Failure> {
    match command {
        Command::Create(a) => create::run(*a, ctx).await,
        Command::Restore(a) => restore::run(a, ctx).await,
        Command::Export(a) => export::run(a, ctx).await,
        Command::List(a) => list::run(a, ctx).await,
        Command::Verify(a) => verify::run(a, ctx).await,
        Command::Prune(a) => prune::run(a, ctx).await,
        Command::Maskers(a) => maskers::run(a, ctx).await,
        Command::Check(a) => check::check(a, ctx).await,
        Command::Rules(RulesCommand::Init(a)) => check::init(a, ctx).await,
        Command::Keys(c) => keys::run(c, ctx).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "scrubsnap", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => {
            use clap::CommandFactory;
            match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                // A reader that stopped early (`| head`) is not a failure.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(Failure::runtime(anyhow::anyhow!("writing the manual page: {e}")))
                }
                _ => Ok(()),
            }
        }
        Command::Rules(RulesCommand::Schema) => match serde_json::to_string_pretty(&maskers::schema()) {
            Ok(text) => {
                println!("{text}");
                Ok(())
            }
            Err(e) => Err(Failure::runtime(e)),
        },
    }
}

/// Hides passwords in `scheme://user:password@` and `password=...` forms.
fn redact(text: &str) -> String {
    let url =
        regex::Regex::new(r"(://[^:/@\s]*):[^@\s]*@").map(|re| re.replace_all(text, "$1:<redacted>@").into_owned());
    let text = url.unwrap_or_else(|_| text.to_string());
    regex::Regex::new(r"(?i)(password\s*=\s*)('[^']*'|\S+)")
        .map(|re| re.replace_all(&text, "$1<redacted>").into_owned())
        .unwrap_or(text)
}

fn init_logging(format: LogFormat, level: &str) -> Result<(), String> {
    // The AWS SDK logs its credential and region probing at warn, with
    // Debug dumps; our own messages say what failed. A plain level keeps the
    // SDK to errors; `debug`, `trace` or a filter with targets shows it.
    let quiet_sdk = ",aws_config=error,aws_smithy_runtime=error,aws_smithy_http_client=error,aws_sdk_s3=error";
    let directives = if level.contains('=') || matches!(level.trim(), "debug" | "trace") {
        level.to_string()
    } else {
        format!("{level}{quiet_sdk}")
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .map_err(|e| format!("invalid --log-level '{level}': {e}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder.json().with_current_span(false).try_init(),
        LogFormat::Text => builder.with_target(false).with_ansi(std::io::stderr().is_terminal()).try_init(),
    };
    result.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn usage_errors_hide_passwords() {
        let r =
            super::redact("unexpected argument 'postgresql://app:s3cret@db/app' and 'host=x password=hunter2 user=y'");
        assert!(!r.contains("s3cret") && !r.contains("hunter2"), "{r}");
        assert!(r.contains("postgresql://app:<redacted>@db/app"));
    }
}

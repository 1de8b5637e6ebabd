//! The exit status: the one place where what went wrong becomes the code a
//! scheduled job sees. Library errors say what kind of failure they are
//! ([`scrubsnap::error::Fault`]); this maps the kind to the code.

use std::process::ExitCode;

use scrubsnap::error::{Classify, Fault};

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: it did what was asked.
    Success,
    /// 1: a usage, configuration or check failure: the invocation, the
    /// rules or the data must change first.
    Failure,
    /// 2: a runtime failure (the database, the store, the network), or a
    /// stop by SIGINT or SIGTERM after which the run cleaned up.
    Error,
    /// 130: a second SIGINT or SIGTERM while a stopped run cleaned up: it
    /// quit at once.
    Aborted,
}

impl From<Fault> for ExitStatus {
    fn from(fault: Fault) -> Self {
        match fault {
            Fault::Config => ExitStatus::Failure,
            Fault::Runtime | Fault::Interrupted => ExitStatus::Error,
        }
    }
}

impl ExitStatus {
    /// The process's exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Error => 2,
            ExitStatus::Aborted => 130,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status.code())
    }
}

/// A failed command: the error, and the status it ends the process with.
pub struct Failure {
    status: ExitStatus,
    error: anyhow::Error,
}

impl Failure {
    /// A failure of this kind.
    pub fn of(fault: Fault, error: impl Into<anyhow::Error>) -> Self {
        Failure { status: fault.into(), error: error.into() }
    }
    /// A library error, of the kind it says it is, with `context` in front.
    pub fn classified<E>(error: E, context: impl std::fmt::Display + Send + Sync + 'static) -> Self
    where
        E: Classify + std::error::Error + Send + Sync + 'static,
    {
        let fault = error.fault();
        Failure::of(fault, anyhow::Error::new(error).context(context))
    }
    /// A usage, configuration or check failure.
    pub fn config(error: impl Into<anyhow::Error>) -> Self {
        Failure::of(Fault::Config, error)
    }
    /// A runtime failure.
    pub fn runtime(error: impl Into<anyhow::Error>) -> Self {
        Failure::of(Fault::Runtime, error)
    }
    /// The process quit at once on a second signal.
    pub fn aborted() -> Self {
        Failure { status: ExitStatus::Aborted, error: anyhow::anyhow!("quit at once on a second signal") }
    }
    /// The status this failure ends the process with.
    pub fn status(&self) -> ExitStatus {
        self.status
    }
    /// The message, with its causes.
    pub fn message(&self) -> String {
        format!("{:#}", self.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_codes() {
        assert_eq!(ExitStatus::from(Fault::Config), ExitStatus::Failure);
        assert_eq!(ExitStatus::from(Fault::Runtime), ExitStatus::Error);
        assert_eq!(ExitStatus::from(Fault::Interrupted), ExitStatus::Error);
        assert_eq!(Failure::aborted().status(), ExitStatus::Aborted);
    }
}

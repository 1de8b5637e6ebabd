//! What kind of failure an error is, for the exit status: the command layer
//! maps each kind to one code (0 success, 1 usage, configuration or check
//! failure, 2 runtime failure).

/// The kind of a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The invocation, the configuration or the data must change before a
    /// retry can succeed: a bad flag, rules that do not apply, a value no
    /// masker can take, a leak found, a check that failed (exit 1).
    Config,
    /// Something failed that a retry may get past: the database or store,
    /// the network, the disk (exit 2).
    Runtime,
    /// The run was stopped from outside (SIGINT, SIGTERM) and cleaned up
    /// after itself (exit 2).
    Interrupted,
}

/// An error that knows its kind.
pub trait Classify {
    fn fault(&self) -> Fault;
}

/// Declares an error type that carries one message for the user (an option
/// or a rule that cannot be used, named but never quoted with a value),
/// with conversions from `String` and `&str` so that `?` and `.into()`
/// build it.
macro_rules! message_error {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        #[error("{0}")]
        pub struct $name(pub String);

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_string())
            }
        }
    };
}
pub(crate) use message_error;

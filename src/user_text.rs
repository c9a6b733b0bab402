//! The text of user code the middleware and the panic hook write: a panic's payload, and an
//! error's `Display` run with its panic caught.

use std::any::Any;
#[cfg(feature = "http")]
use std::fmt;
#[cfg(feature = "http")]
use std::panic::{catch_unwind, AssertUnwindSafe};

#[cfg(feature = "http")]
use crate::layer::PANICKED;

/// The message a panic was given (`panic!("…")`), as std's hook prints it.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "Box<dyn Any>"
    }
}

/// An error's `Display`, for the access line's `error`. It is the user's code, run on the
/// server's poll: one that panics gives the layer's marker, as a field's would, and the
/// request goes on to fail as it would have.
#[cfg(feature = "http")]
pub(crate) fn error_text(err: &(impl fmt::Display + ?Sized)) -> String {
    catch_unwind(AssertUnwindSafe(|| err.to_string())).unwrap_or_else(|_| PANICKED.to_owned())
}

#[cfg(test)]
mod tests {
    use std::panic::catch_unwind;

    use super::*;

    #[cfg(feature = "http")]
    struct Treacherous;

    #[cfg(feature = "http")]
    impl fmt::Display for Treacherous {
        fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
            panic!("Display blew up")
        }
    }

    #[cfg(feature = "http")]
    #[test]
    fn a_panicking_display_gives_the_marker() {
        assert_eq!(error_text(&Treacherous), "<panicked while formatting>");
        assert_eq!(error_text(&"plain"), "plain");
    }

    #[test]
    fn a_panic_message_is_its_text_whatever_its_type() {
        let literal = catch_unwind(|| panic!("literal")).unwrap_err();
        let formatted = catch_unwind(|| panic!("formatted {}", 1)).unwrap_err();
        let other = catch_unwind(|| std::panic::panic_any(7_u8)).unwrap_err();
        assert_eq!(panic_message(&*literal), "literal");
        assert_eq!(panic_message(&*formatted), "formatted 1");
        assert_eq!(panic_message(&*other), "Box<dyn Any>");
    }
}

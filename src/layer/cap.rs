//! [`Cap`]: how much of an event a line over the size cap keeps, pass after pass.

/// How much of an event a line over the size cap keeps, pass after pass.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cap {
    /// String values (the message, event fields, errors) are cut to this many bytes.
    pub(super) max_str: usize,
    /// Past this line length no further event field is written.
    pub(super) field_budget: usize,
    /// Context values are cut to `max_str` too: the last pass, for a line still over the cap
    /// once everything of the event's own has been cut.
    pub(super) context: bool,
}

impl Cap {
    /// The first pass: everything whole.
    pub(crate) const NONE: Cap = Cap {
        max_str: usize::MAX,
        field_budget: usize::MAX,
        context: false,
    };

    /// The next, tighter pass for a line that came out longer than `max_line` bytes; `None`
    /// after the last. String values get a quarter of the line, then a thirty-second, then
    /// 64 bytes with no fields past the budget; last, the context's values are cut to 64
    /// bytes too. The context is what ties a line to its request, so it is cut only when
    /// cutting everything else was not enough.
    pub(crate) fn tighter(self, max_line: usize) -> Option<Cap> {
        let last = Cap {
            max_str: 64,
            field_budget: max_line.saturating_sub(512),
            context: false,
        };
        let next = match self.max_str {
            usize::MAX => max_line / 4,
            n if n == max_line / 4 => max_line / 32,
            _ if self.field_budget == usize::MAX => return Some(last),
            _ if !self.context => {
                return Some(Cap {
                    context: true,
                    ..self
                })
            }
            _ => return None,
        };
        Some(if next <= last.max_str {
            last
        } else {
            Cap {
                max_str: next,
                ..self
            }
        })
    }
}

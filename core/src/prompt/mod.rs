//! Prompt directives: the `{style}` prefix, remix ids and share links, generation ids, and the
//! storyboard grammar (sora-backend.md 6.4 and 6.5, decisions 7, 8 and 9).
//!
//! Parsers here never panic and never allocate more than a small multiple of their input.

mod ids;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod invariants;
mod storyboard;
mod style;

pub use ids::{GenerationId, RemixId};
pub use storyboard::{Shot, ShotDuration, Storyboard, StoryboardError};
pub use style::extract_style;

//! The storyboard grammar (placeholder: the prompt module is being written).

/// A parsed storyboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storyboard {
    /// Text before the first shot marker.
    pub preamble: Option<String>,
    /// The shots, in order.
    pub shots: Vec<Shot>,
}

/// One shot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shot {
    /// Its duration, verbatim.
    pub duration: ShotDuration,
    /// Its scene text.
    pub scene: String,
}

/// A shot duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShotDuration(String);

/// A broken storyboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoryboardError;

//! Remix ids and generation ids (placeholder: the prompt module is being written).

/// A Sora share id, `s_` + 32 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemixId(String);

/// An upstream generation id, `gen_` + ASCII letters and digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GenerationId(String);

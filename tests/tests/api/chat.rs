//! `/v1/chat/completions`: the same operations as the dedicated endpoints, selected by the
//! model, the media parts and the prompt's directives.

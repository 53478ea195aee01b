//! Client request -> GenerationRequest (placeholder: being written).

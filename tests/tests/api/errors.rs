//! Every error row of client-api.md over HTTP, in the OpenAI envelope.

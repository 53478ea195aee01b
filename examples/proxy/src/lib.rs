//! The library half of the `sora2api` proxy: what the binary uses and the tests reach.
//!
//! - [`config`]: the TOML configuration, environment overrides and what the server needs
//!   from them ([`Config`]);
//! - [`cli`]: the command line ([`cli::parse_args`]);
//! - [`data_dir`]: the data directory and its one redb database ([`DataDir`]), from which
//!   both durable stores are made;
//! - [`redb_store`]: the durable [`TaskStore`](sora2api_tower::TaskStore), [`RedbTaskStore`];
//! - [`token_store`]: the durable [`TokenStore`](sora2api_tower::TokenStore) of tokens and
//!   admin settings, [`RedbTokenStore`];
//! - [`gateway`]: `--config`, the gateway with durable tasks and tokens;
//! - [`demo`]: `--demo`, the gateway against the in-process simulated backend;
//! - [`server`]: serving the layer over HTTP/1.1 with graceful shutdown.
#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod data_dir;
pub mod demo;
pub mod gateway;
pub mod redb_store;
pub mod server;
pub mod token_store;

pub use config::{Config, ConfigError};
pub use data_dir::DataDir;
pub use redb_store::RedbTaskStore;
pub use token_store::RedbTokenStore;

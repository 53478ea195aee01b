//! [`DataDir`]: the gateway's data directory and its one redb database, shared by the task
//! store and the token store.
//!
//! redb allows one open `Database` per file and process (and locks the file against other
//! processes), so both stores live in one file, [`DataDir::DB_FILE`], and share one
//! `Arc<Database>`:
//!
//! | table | key | value | store |
//! |---|---|---|---|
//! | `tasks` | task id | [`TaskRecord::to_bytes`](sora2api_tower::core::record::TaskRecord::to_bytes) | [`RedbTaskStore`] |
//! | `unfinished` | task id | `()` | [`RedbTaskStore`] |
//! | `tokens` | token id (`u64`) | [`TokenRecord::to_bytes`](sora2api_tower::core::pool::TokenRecord::to_bytes) | [`RedbTokenStore`] |
//! | `settings` | name | opaque bytes | [`RedbTokenStore`] |
//!
//! ```
//! use sora2api_proxy::DataDir;
//! use sora2api_tower::core::pool::TokenRecord;
//! use sora2api_tower::core::secret::Secret;
//! use sora2api_tower::TokenStore;
//!
//! # let dir = std::env::temp_dir().join(format!("sora2api-doc-{}", std::process::id()));
//! let data = DataDir::open(&dir)?; // created if missing; locked while open
//! let (tasks, tokens) = (data.task_store(), data.token_store());
//! let runtime = tokio::runtime::Runtime::new().unwrap();
//! runtime.block_on(async {
//!     tokens.put_token(TokenRecord::new(Secret::new("eyJ.at.sig"))).await?;
//!     assert_eq!(tokens.tokens().await?.len(), 1);
//!     Ok::<_, sora2api_tower::StoreError>(())
//! })?;
//! # drop((data, tasks, tokens)); std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<_, sora2api_tower::StoreError>(())
//! ```
//!
//! The file holds access, session and refresh tokens in clear. On Unix a directory that
//! [`DataDir::open`] creates is made `0700` and a database file it creates `0600`; existing
//! ones keep the permissions they have.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::Database;
use sora2api_tower::StoreError;

use crate::redb_store::{open_database, RedbTaskStore};
use crate::token_store::RedbTokenStore;

/// The open data directory: its database, from which the stores are made. Cheap to clone.
///
/// Contract: open it once per process (a second [`DataDir::open`] of the same directory,
/// in this process or another, fails as locked while this one or a store made from it is
/// alive). The stores it hands out share its database; the file closes when the last of
/// them and of the `DataDir` clones is dropped.
#[derive(Clone)]
pub struct DataDir {
    dir: Arc<PathBuf>,
    file: Arc<PathBuf>,
    db: Arc<Database>,
    tasks: RedbTaskStore,
}

impl fmt::Debug for DataDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataDir").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl DataDir {
    /// The database file's name inside the data directory.
    pub const DB_FILE: &'static str = "sora2api.redb";

    /// Opens the data directory `dir`, creating it (and its parents) if missing, and opens or
    /// creates its database with every table.
    ///
    /// Blocking (file IO, and a repair after an unclean shutdown, which walks the whole file):
    /// call it at start, before serving, or inside `spawn_blocking`.
    ///
    /// Errors ([`StoreError::Unavailable`], each naming the path): the directory cannot be
    /// created, `dir` is not a directory, the directory or database file is not writable,
    /// the database is locked (another `sora2api` on this data directory, or this process
    /// opened it already), the file is not a redb database or is one redb cannot repair.
    pub fn open(dir: impl AsRef<Path>) -> Result<DataDir, StoreError> {
        let dir = dir.as_ref();
        let shown = dir.display();
        if dir.exists() {
            if !dir.is_dir() {
                return Err(StoreError::Unavailable(format!(
                    "data directory {shown} is not a directory"
                )));
            }
        } else {
            create_dir(dir).map_err(|err| {
                StoreError::Unavailable(match err.kind() {
                    io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                        format!("data directory {shown} cannot be created, not writable: {err}")
                    }
                    _ => format!("data directory {shown} cannot be created: {err}"),
                })
            })?;
        }
        let file = dir.join(Self::DB_FILE);
        let existed = file.exists();
        let db = Arc::new(open_database(&file, "database")?);
        if !existed {
            restrict_file(&file).map_err(|err| {
                StoreError::Unavailable(format!(
                    "database {}: cannot restrict its permissions: {err}",
                    file.display()
                ))
            })?;
        }
        let tasks = RedbTaskStore::with_database(db.clone(), &file)?;
        RedbTokenStore::create_tables(&db)?;
        Ok(DataDir { dir: Arc::new(dir.to_path_buf()), file: Arc::new(file), db, tasks })
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The database file ([`DataDir::DB_FILE`] in the directory).
    pub fn db_path(&self) -> &Path {
        &self.file
    }

    /// The task store in this directory's database (every call shares the same database).
    pub fn task_store(&self) -> RedbTaskStore {
        self.tasks.clone()
    }

    /// The token and settings store in this directory's database.
    pub fn token_store(&self) -> RedbTokenStore {
        RedbTokenStore::new(self.db.clone(), self.file.clone())
    }
}

#[cfg(unix)]
fn create_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn restrict_file(file: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict_file(_file: &Path) -> io::Result<()> {
    Ok(())
}

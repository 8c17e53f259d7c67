//! Where the `ferry` binary takes secrets from, and how it keeps its files private.
//!
//! Tokens come from a file (`--token-file`, or `FERRY_TOKEN_FILE`) or from the environment
//! (`FERRY_TOKEN`), never from a flag's value: a process's arguments are readable by every
//! local user (`ps`, `/proc/<pid>/cmdline`) and end up in shell histories, while its
//! environment and a 0600 file are its user's only. No flag takes a token or a secret itself;
//! clap refuses one (`ferry agent --token x` is an unknown argument).
//!
//! Directories `ferry` creates for its servers (`--data-dir`, `ferry dev`'s) are made with
//! [`DIR_MODE`] (0700) when they are created.

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use anyhow::Context;

/// The environment variable holding a token (an API token, or an agent's).
pub const TOKEN_ENV: &str = "FERRY_TOKEN";
/// The mode of the directories `ferry` creates: the owner only (the same as the stores').
pub const DIR_MODE: u32 = ferry_data_plane::owner_only::DIR_MODE;

/// The token from `file` if given, else from [`TOKEN_ENV`]; `None` if neither has one.
/// Surrounding whitespace (a trailing newline) is dropped.
pub fn token(file: Option<&Path>) -> anyhow::Result<Option<String>> {
    let token = match file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the token file {}", path.display()))?,
        None => match std::env::var(TOKEN_ENV) {
            Ok(token) => token,
            Err(_) => return Ok(None),
        },
    };
    let token = token.trim();
    Ok((!token.is_empty()).then(|| token.to_string()))
}

/// Creates `path` and any missing parents with [`DIR_MODE`]; an existing directory is left as
/// it is.
pub fn create_dir_all(path: &Path) -> anyhow::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
        .with_context(|| format!("creating {}", path.display()))
}

//! An index folder holds generations: `gen-000001-<ms>/` (`text/`: tantivy, `vectors/` and `vectors-multilingual/`: embeddings and graphs) and
//! `CURRENT`, which names the one in service. A rebuild fills a new generation beside the old one and then
//! replaces `CURRENT` atomically; readers notice and switch, so they serve the old generation until the new
//! one is complete.

use std::path::{Path, PathBuf};

use tantivy::directory::MmapDirectory;
use tantivy::{Index, IndexReader, ReloadPolicy};

use crate::schema::{self, Fields};
use crate::spaces::SpaceStores;
use crate::vectors::{write_atomically, HnswParams};
use crate::{tokenizer, SearchError};

const CURRENT: &str = "CURRENT";
const PREFIX: &str = "gen-";

pub(crate) fn text_dir(generation: &Path) -> PathBuf {
    generation.join("text")
}

/// The generation `CURRENT` names, if any.
pub(crate) fn current(root: &Path) -> Result<Option<PathBuf>, SearchError> {
    let path = root.join(CURRENT);
    match std::fs::read_to_string(&path) {
        Ok(name) => {
            let name = name.trim();
            if !name.starts_with(PREFIX) || name.contains(['/', '\\']) {
                return Err(SearchError::Corrupt(format!("{} names {name:?}, not a generation", path.display())));
            }
            Ok(Some(root.join(name)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if root.join("meta.json").exists() {
                return Err(SearchError::OldLayout(root.display().to_string()));
            }
            Ok(None)
        }
        Err(e) => Err(SearchError::io(&path, e)),
    }
}

/// A new, empty generation folder, numbered after every existing one and stamped with its creation time (so
/// a reader tells a rebuilt generation from the one it serves even when the folder was emptied in between).
pub(crate) fn create(root: &Path) -> Result<PathBuf, SearchError> {
    std::fs::create_dir_all(root).map_err(|e| SearchError::io(root, e))?;
    let last = generations(root)?.into_iter().map(|(n, _)| n).max().unwrap_or(0);
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let path = root.join(format!("{PREFIX}{:06}-{stamp}", last + 1));
    std::fs::create_dir(&path).map_err(|e| SearchError::io(&path, e))?;
    Ok(path)
}

/// Puts `generation` in service.
pub(crate) fn publish(root: &Path, generation: &Path) -> Result<(), SearchError> {
    let name = generation.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    write_atomically(&root.join(CURRENT), format!("{name}\n").as_bytes())
}

/// Removes generations other than `keep` (readers that still map their files keep them until they switch).
pub(crate) fn remove_others(root: &Path, keep: &[&Path]) -> Result<(), SearchError> {
    for (_, path) in generations(root)? {
        if !keep.iter().any(|k| *k == path) {
            tracing::info!(path = %path.display(), "removing an old index generation");
            std::fs::remove_dir_all(&path).map_err(|e| SearchError::io(&path, e))?;
        }
    }
    Ok(())
}

fn generations(root: &Path) -> Result<Vec<(u32, PathBuf)>, SearchError> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SearchError::io(root, e)),
    };
    Ok(entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name();
            let (n, _stamp) = name.to_str()?.strip_prefix(PREFIX)?.split_once('-')?;
            let n = n.parse().ok()?;
            Some((n, e.path()))
        })
        .collect())
}

/// An opened generation: the tantivy index and its reader, and (in processes that search) the vectors.
pub(crate) struct Generation {
    pub path: PathBuf,
    pub index: Index,
    pub reader: IndexReader,
    pub fields: Fields,
    pub vectors: Option<SpaceStores>,
}

impl Generation {
    pub fn open(path: &Path, with_vectors: Option<HnswParams>) -> Result<Self, SearchError> {
        let text = text_dir(path);
        std::fs::create_dir_all(&text).map_err(|e| SearchError::io(&text, e))?;
        let (schema, fields) = schema::build();
        let directory = MmapDirectory::open(&text)?;
        let index = if Index::exists(&directory).map_err(|e| SearchError::Index(e.into()))? {
            let index = Index::open(directory)?;
            if index.schema() != schema {
                return Err(SearchError::SchemaMismatch(text.display().to_string()));
            }
            index
        } else {
            Index::create(directory, schema, tantivy::IndexSettings::default())?
        };
        index.tokenizers().register(tokenizer::SOCIAL, tokenizer::analyzer());
        let reader = index.reader_builder().reload_policy(ReloadPolicy::OnCommitWithDelay).try_into()?;
        let vectors = match with_vectors {
            Some(params) => Some(SpaceStores::open(path, params)?),
            None => None,
        };
        Ok(Self { path: path.to_owned(), index, reader, fields, vectors })
    }
}

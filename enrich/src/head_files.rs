//! How a head is stored: `head.json` (its config) and `head.safetensors` (its weights) in one folder, beside
//! the model card `murmur train` writes.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tch::nn::VarStore;

use crate::EnrichError;

pub(crate) fn save(dir: &Path, config: &impl Serialize, weights: &VarStore) -> Result<(), EnrichError> {
    std::fs::create_dir_all(dir).map_err(|source| EnrichError::ModelFile { path: dir.to_owned(), source })?;
    let bytes = serde_json::to_vec_pretty(config).map_err(|e| EnrichError::Data(e.to_string()))?;
    let path = dir.join("head.json");
    std::fs::write(&path, bytes).map_err(|source| EnrichError::ModelFile { path, source })?;
    weights.save(dir.join("head.safetensors"))?;
    Ok(())
}

pub(crate) fn read_config<C: DeserializeOwned>(dir: &Path) -> Result<C, EnrichError> {
    let path = dir.join("head.json");
    let bytes = std::fs::read(&path).map_err(|source| EnrichError::ModelFile { path: path.clone(), source })?;
    serde_json::from_slice(&bytes).map_err(|source| EnrichError::ModelConfig { path, source })
}

/// Fills `weights` (built from the config) from the folder's safetensors.
pub(crate) fn load_weights(dir: &Path, weights: &mut VarStore) -> Result<(), EnrichError> {
    let path = dir.join("head.safetensors");
    weights.load(&path).map_err(|source| EnrichError::Weights { path, source })
}

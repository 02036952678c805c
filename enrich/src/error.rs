use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    #[error("model file {path} could not be read: {source}")]
    ModelFile { path: PathBuf, source: std::io::Error },
    #[error("model config {path} is invalid: {source}")]
    ModelConfig { path: PathBuf, source: serde_json::Error },
    #[error("model weights {path} could not be loaded: {source}")]
    Weights { path: PathBuf, source: tch::TchError },
    #[error("model weights lack tensor {0}")]
    MissingTensor(String),
    #[error("tensor {name} has shape {actual:?}, expected {expected:?}")]
    TensorShape { name: String, actual: Vec<i64>, expected: Vec<i64> },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("unsupported model: {0}")]
    Unsupported(String),
    #[error("device: {0}")]
    Device(String),
    #[error("data: {0}")]
    Data(String),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

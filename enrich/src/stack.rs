//! [`ModelStack`]: the runtime the worker and the API call, the shared sentence encoder and the task model that
//! reads its pass.

use murmur_core::{BoxError, DetectedLanguage, Enricher, Enrichment, MultilingualEmbedding, QueryVectors, Skipped};
use tch::Device;

use crate::encoder::SentenceEncoder;
use crate::language::LanguageDetector;
use crate::multilingual::{MultilingualEncoder, MULTILINGUAL_MODEL_ID};
use crate::tasks::{english_only, Heads, TaskInput, TaskModel, TaskPrediction};
use crate::EnrichError;

/// The shared encoder and the task model that reads its output: one encoder pass per batch yields the
/// embedding and every head's prediction. A head that is off leaves its field absent. Each text's language is
/// detected first; the heads' fields stay absent (`skipped: language`) for a text confidently in a language
/// they never learned. With a multilingual encoder, such a text also gets its vector, which semantic search
/// reads instead of the English encoder's.
pub struct ModelStack {
    encoder: SentenceEncoder,
    tasks: Option<(TaskModel, Heads)>,
    languages: LanguageDetector,
    /// The languages the heads learned; without heads, the English encoder's.
    learned: Vec<String>,
    multilingual: Option<MultilingualEncoder>,
}

impl ModelStack {
    /// `tasks`: the task model and which of its heads to run (none: embeddings only).
    pub fn new(encoder: SentenceEncoder, tasks: Option<(TaskModel, Heads)>) -> Result<Self, EnrichError> {
        if let Some((model, _)) = &tasks {
            let config = model.config();
            if config.encoder != encoder.model_id()
                || config.dim() != encoder.dim() as i64
                || config.encoder_layers() != encoder.config().num_hidden_layers as usize
            {
                return Err(EnrichError::Unsupported(format!(
                    "the task model was trained on {} ({}-d, {} blocks) and cannot read {} ({}-d, {} blocks)",
                    config.encoder,
                    config.dim(),
                    config.encoder_layers(),
                    encoder.model_id(),
                    encoder.dim(),
                    encoder.config().num_hidden_layers
                )));
            }
        }
        let tasks = tasks.map(|(mut model, heads)| {
            model.set_branch_kind(encoder.kind());
            let loaded = model.heads();
            let heads = Heads {
                sentiment: heads.sentiment && loaded.sentiment,
                emotion: heads.emotion && loaded.emotion,
                ner: heads.ner && loaded.ner,
                aspects: heads.aspects && loaded.aspects,
            };
            (model, heads)
        });
        let learned = tasks.as_ref().map_or_else(english_only, |(m, _)| m.config().languages.clone());
        Ok(Self { encoder, tasks, languages: LanguageDetector::new(), learned, multilingual: None })
    }

    /// The stack with `multilingual` making the vectors semantic search reads (see
    /// [`murmur_core::Enrichment::search_vector`]).
    pub fn with_multilingual(self, multilingual: MultilingualEncoder) -> Self {
        Self { multilingual: Some(multilingual), ..self }
    }

    pub fn encoder(&self) -> &SentenceEncoder {
        &self.encoder
    }

    /// Encoder passes per batch: one shared pass, plus the fraction of one the task branch runs again.
    pub fn encoder_passes(&self) -> f64 {
        let branch = self.tasks.as_ref().map_or(0, |(m, _)| m.config().branch_layers);
        1.0 + branch as f64 / self.encoder.config().num_hidden_layers as f64
    }

    /// What each enrichment holds: `embedding` (and `multilingual` with a multilingual encoder), then
    /// `sentiment`, `emotion` and `ner` where they run.
    pub fn tasks(&self) -> Vec<&'static str> {
        let mut tasks = vec!["embedding"];
        if self.multilingual.is_some() {
            tasks.push("multilingual");
        }
        if let Some((_, heads)) = &self.tasks {
            let all = [
                (heads.sentiment, "sentiment"),
                (heads.emotion, "emotion"),
                (heads.ner, "ner"),
                (heads.aspects, "aspects"),
            ];
            for (on, name) in all {
                if on {
                    tasks.push(name);
                }
            }
        }
        tasks
    }
}

impl Enricher for ModelStack {
    fn model_id(&self) -> &str {
        self.encoder.model_id()
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, BoxError> {
        Ok(self.encoder.embed(texts)?)
    }

    fn multilingual_model(&self) -> Option<&str> {
        self.multilingual.as_ref().map(|_| MULTILINGUAL_MODEL_ID)
    }

    fn embed_queries(&self, texts: &[&str], multilingual: bool) -> Result<Vec<QueryVectors>, BoxError> {
        let encoder = self.encoder.embed(texts)?;
        let multilingual = match self.multilingual.as_ref().filter(|_| multilingual) {
            Some(multilingual) => multilingual.embed(texts)?.into_iter().map(Some).collect(),
            None => vec![None; texts.len()],
        };
        Ok(encoder
            .into_iter()
            .zip(multilingual)
            .map(|(encoder, multilingual)| QueryVectors { encoder, multilingual })
            .collect())
    }

    fn enrich(&self, texts: &[&str]) -> Result<Vec<Enrichment>, BoxError> {
        let languages: Vec<(Option<DetectedLanguage>, bool)> = texts.iter().map(|text| self.detect(text)).collect();
        // Only the texts confidently in a language the models never learned get the multilingual vector: the
        // English encoder's serves the rest, and the multilingual encoder costs ~40× the English one a text on
        // CPUs with bf16 (murmur-bench multilingual).
        let unread: Vec<usize> = (0..texts.len()).filter(|&i| !languages[i].1).collect();
        let mut out = self.read(texts, languages, |heads| heads)?;
        if let Some(multilingual) = &self.multilingual {
            let vectors = multilingual.embed(&unread.iter().map(|&i| texts[i]).collect::<Vec<_>>())?;
            for (i, vector) in unread.into_iter().zip(vectors) {
                out[i].multilingual = Some(MultilingualEmbedding { model: MULTILINGUAL_MODEL_ID.to_owned(), vector });
            }
        }
        Ok(out)
    }

    fn classify(&self, texts: &[&str]) -> Result<Vec<Enrichment>, BoxError> {
        let Some(first) = texts.first() else { return Ok(Vec::new()) };
        let language = self.detect(first);
        Ok(self.read(texts, vec![language; texts.len()], |heads| Heads { ner: false, aspects: false, ..heads })?)
    }
}

impl ModelStack {
    /// `text`'s language and whether the models learned it (not when it is confidently in another language).
    fn detect(&self, text: &str) -> (Option<DetectedLanguage>, bool) {
        self.languages.detect(text, &self.learned)
    }

    /// One encoder pass over `texts` and the heads `which` keeps of those this stack runs, on the texts
    /// `languages` (one per text: detected, read) says the heads read.
    fn read(
        &self,
        texts: &[&str],
        languages: Vec<(Option<DetectedLanguage>, bool)>,
        which: impl Fn(Heads) -> Heads,
    ) -> Result<Vec<Enrichment>, EnrichError> {
        let model = self.encoder.model_id();
        let mut out: Vec<Enrichment> = languages
            .into_iter()
            .map(|(language, read)| Enrichment {
                language,
                // A stack without heads has nothing to skip.
                skipped: (!read && self.tasks.is_some()).then_some(Skipped::Language),
                ..Enrichment::embedding_only(model, Vec::new())
            })
            .collect();
        self.encoder.encode(texts, |batch| {
            let pooled = batch.pooled().to_device(Device::Cpu);
            let embeddings = Vec::<Vec<f32>>::try_from(&pooled)?;
            let batch_texts: Vec<&str> = batch.rows.iter().map(|&i| texts[i]).collect();
            let predictions = match &self.tasks {
                Some((model, heads)) => {
                    let input = TaskInput::new(batch.hidden_states, batch.mask, &batch.words, &batch_texts);
                    model.predict(&input, &batch.words, &batch_texts, which(*heads))?
                }
                None => vec![TaskPrediction::default(); batch.rows.len()],
            };
            for ((&row, embedding), prediction) in batch.rows.iter().zip(embeddings).zip(predictions) {
                let enrichment = &mut out[row];
                enrichment.embedding = embedding;
                if enrichment.skipped.is_some() {
                    continue;
                }
                enrichment.sentiment = prediction.sentiment;
                enrichment.emotion = prediction.emotion;
                enrichment.entities = prediction.entities;
                enrichment.aspects = prediction.aspects;
            }
            Ok(())
        })?;
        Ok(out)
    }
}

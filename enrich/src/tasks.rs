//! The task model: everything an enrichment holds besides the embedding, read from the shared encoder's one
//! pass. It may carry a **task branch**: its own fine-tuned copy of the encoder's top `branch_layers`
//! blocks, run on the shared pass's hidden state below them. The embedding keeps the sentence encoder's
//! weights untouched (semantic search keeps its parity with sentence-transformers), while sentiment,
//! emotion and entities read the fine-tuned layers, for `branch_layers / num_hidden_layers` of a pass more.
//! With no branch, the heads read the shared encoder as is.
//!
//! Heads: sentiment and emotion ([`crate::sentiment`]) over the mean of the top layer and the text's social
//! features; NER ([`crate::ner`]) over each word's first sub-token. Mentions (`@handle`, `#hashtag`) come
//! from [`crate::social`]. Stored as `model.json` + `model.safetensors` beside a model card.

use std::path::Path;

use murmur_core::{Aspect, Emotion, Entity, Sentiment};
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use crate::aspects::{without_names, AspectHead, AspectHeadConfig, TermTokens};
use crate::bert::{BertConfig, BertLayers};
use crate::encoder::{mean_pool, Word};
use crate::ner::{word_shape, NerHead, NerHeadConfig, NER_TAGS, SHAPE_FEATURES};
use crate::sentiment::{SentenceHead, SentenceHeadConfig, SENTIMENT_CLASSES};
use crate::social::{self, SOCIAL_FEATURES};
use crate::EnrichError;

/// Emotion classes, in the order of the head's outputs (murmur_core's `EmotionLabel::ALL`).
pub const EMOTION_CLASSES: [&str; 7] = ["anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral"];

/// What `model.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskModelConfig {
    /// The sentence encoder whose pass the model reads; it fits no other.
    pub encoder: String,
    /// The encoder's shape (its hidden size, its blocks, and the branch's blocks when there is one).
    pub encoder_config: BertConfig,
    /// Top blocks of the encoder the model carries fine-tuned (0: the heads read the shared encoder).
    pub branch_layers: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<SentenceHeadConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emotion: Option<SentenceHeadConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ner: Option<NerHeadConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aspects: Option<AspectHeadConfig>,
    /// The languages the heads learned (ISO 639-1 codes): a text confidently detected in another is not read
    /// by them (see [`crate::language`]).
    #[serde(default = "english_only")]
    pub languages: Vec<String>,
}

/// What a model trained before languages were recorded learned: English.
pub(crate) fn english_only() -> Vec<String> {
    vec!["en".to_owned()]
}

impl TaskModelConfig {
    pub fn dim(&self) -> i64 {
        self.encoder_config.hidden_size
    }

    /// The encoder's blocks.
    pub fn encoder_layers(&self) -> usize {
        self.encoder_config.num_hidden_layers as usize
    }

    /// Blocks of the shared pass the model reads from below (the branch runs above them).
    pub fn shared_layers(&self) -> usize {
        self.encoder_layers() - self.branch_layers
    }

    fn check(&self) -> Result<(), EnrichError> {
        let bad = |what: String| Err(EnrichError::Unsupported(what));
        if self.branch_layers > self.encoder_layers() {
            return bad(format!(
                "a branch of {} blocks on a {}-block encoder",
                self.branch_layers,
                self.encoder_layers()
            ));
        }
        if let Some(s) = &self.sentiment {
            if s.classes != SENTIMENT_CLASSES || s.temperature.is_nan() || s.temperature <= 0.0 {
                return bad(format!("sentiment classes {:?}, temperature {}", s.classes, s.temperature));
            }
        }
        if let Some(e) = &self.emotion {
            if e.classes != EMOTION_CLASSES || e.thresholds.len() != EMOTION_CLASSES.len() {
                return bad(format!("emotion classes {:?} with {} thresholds", e.classes, e.thresholds.len()));
            }
        }
        if let Some(n) = &self.ner {
            if n.tags != NER_TAGS || n.layers == 0 || n.layers > self.encoder_layers() {
                return bad(format!("NER tags {:?} reading {} layers", n.tags, n.layers));
            }
        }
        if let Some(a) = &self.aspects {
            a.check(self.encoder_layers()).map_err(EnrichError::Unsupported)?;
        }
        Ok(())
    }
}

/// Which heads to run: a head that is off leaves its field absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heads {
    pub sentiment: bool,
    pub emotion: bool,
    pub ner: bool,
    pub aspects: bool,
}

impl Heads {
    pub const ALL: Heads = Heads { sentiment: true, emotion: true, ner: true, aspects: true };
    pub const NONE: Heads = Heads { sentiment: false, emotion: false, ner: false, aspects: false };
}

pub struct TaskModel {
    vs: nn::VarStore,
    config: TaskModelConfig,
    /// What the branch's weights hold (the precision it runs at).
    branch_kind: Kind,
    branch: Option<BertLayers>,
    sentiment: Option<SentenceHead>,
    emotion: Option<SentenceHead>,
    ner: Option<NerHead>,
    aspects: Option<AspectHead>,
}

/// What the task model reads of one encoder pass over a batch of texts.
pub struct TaskInput {
    /// The shared encoder's states: the embedding layer's output and at least the first
    /// [`TaskModelConfig::shared_layers`] blocks' (`[batch, seq, dim]`).
    pub states: Vec<Tensor>,
    /// `[batch, seq]`, 1 for real tokens.
    pub mask: Tensor,
    /// Each word's first sub-token `[batch, words]` (0 on padding).
    pub positions: Tensor,
    /// `[batch, words, SHAPE_FEATURES]`.
    pub shapes: Tensor,
    /// `[batch, SOCIAL_FEATURES]`.
    pub social: Tensor,
    /// Words per text.
    pub word_counts: Vec<i64>,
}

impl TaskInput {
    /// From an encoder pass over `texts` (one per batch row) and each text's words.
    pub fn new(states: Vec<Tensor>, mask: Tensor, words: &[Vec<Word>], texts: &[&str]) -> Self {
        let rows = words.len();
        let width = words.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let mut positions = vec![0i64; rows * width];
        let mut shapes = vec![0f32; rows * width * SHAPE_FEATURES];
        let mut social = Vec::with_capacity(rows * SOCIAL_FEATURES);
        for (r, (words, text)) in words.iter().zip(texts).enumerate() {
            for (w, word) in words.iter().enumerate() {
                positions[r * width + w] = word.first_token as i64;
                let shape = word_shape(text.get(word.start..word.end).unwrap_or(""), w == 0);
                shapes[(r * width + w) * SHAPE_FEATURES..][..SHAPE_FEATURES].copy_from_slice(&shape);
            }
            social.extend_from_slice(&social::features(text));
        }
        let device = mask.device();
        let (rows, width) = (rows as i64, width as i64);
        Self {
            positions: Tensor::from_slice(&positions).view([rows, width]).to_device(device),
            shapes: Tensor::from_slice(&shapes).view([rows, width, SHAPE_FEATURES as i64]).to_device(device),
            social: Tensor::from_slice(&social).view([rows, SOCIAL_FEATURES as i64]).to_device(device),
            word_counts: words.iter().map(|w| w.len() as i64).collect(),
            states,
            mask,
        }
    }
}

/// Logits of each head that ran.
pub struct TaskLogits {
    /// `[batch, 3]`
    pub sentiment: Option<Tensor>,
    /// `[batch, 7]`
    pub emotion: Option<Tensor>,
    /// `[batch, words, 9]`
    pub ner: Option<Tensor>,
    /// Aspect term tags `[batch, words, 3]`.
    pub aspect_terms: Option<Tensor>,
}

/// One text's predictions.
#[derive(Debug, Clone, Default)]
pub struct TaskPrediction {
    pub sentiment: Option<Sentiment>,
    pub emotion: Option<Emotion>,
    pub entities: Option<Vec<Entity>>,
    pub aspects: Option<Vec<Aspect>>,
}

impl TaskModel {
    /// A freshly initialised model on `device` (initialisation follows libtorch's seed, see
    /// `tch::manual_seed`); its branch, if any, is zero until filled (see [`TaskModel::branch_mut`]).
    /// Heads are variables of group 0, the branch of group 1 (they train at different rates).
    pub fn new(config: TaskModelConfig, device: Device) -> Result<Self, EnrichError> {
        config.check()?;
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let branch = (config.branch_layers > 0).then(|| {
            BertLayers::trainable(&(&root / "branch").set_group(1), &config.encoder_config, config.branch_layers)
        });
        let sentence_inputs = config.dim() + SOCIAL_FEATURES as i64;
        let sentiment =
            config.sentiment.as_ref().map(|c| SentenceHead::new(&(&root / "sentiment"), sentence_inputs, c));
        let emotion = config.emotion.as_ref().map(|c| SentenceHead::new(&(&root / "emotion"), sentence_inputs, c));
        let ner = config.ner.as_ref().map(|c| NerHead::new(&(&root / "ner"), config.dim(), c));
        let aspects = config.aspects.as_ref().map(|c| AspectHead::new(&(&root / "aspects"), &config.encoder_config, c));
        Ok(Self { vs, config, branch_kind: Kind::Float, branch, sentiment, emotion, ner, aspects })
    }

    pub fn config(&self) -> &TaskModelConfig {
        &self.config
    }

    /// Calibration and thresholds are chosen after training, on held-out data.
    pub fn config_mut(&mut self) -> &mut TaskModelConfig {
        &mut self.config
    }

    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    pub fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    /// The fine-tuned copy of the encoder's top blocks, when the model has one.
    pub fn branch_mut(&mut self) -> Option<&mut BertLayers> {
        self.branch.as_mut()
    }

    pub fn heads(&self) -> Heads {
        Heads {
            sentiment: self.sentiment.is_some(),
            emotion: self.emotion.is_some(),
            ner: self.ner.is_some(),
            aspects: self.aspects.is_some(),
        }
    }

    /// Fills the aspect head's reader from the task branch's top blocks (the starting point of its training).
    pub fn init_aspect_reader(&mut self) -> Result<(), EnrichError> {
        match (&mut self.aspects, &self.branch) {
            (Some(head), Some(branch)) => head.reader_mut().copy_top_of(branch),
            (Some(_), None) => Err(EnrichError::Unsupported("an aspect reader needs a task branch to copy".into())),
            (None, _) => Ok(()),
        }
    }

    /// The aspect head, when the model has one.
    pub fn aspect_head(&self) -> Option<&AspectHead> {
        self.aspects.as_ref()
    }

    /// The task model's hidden states after each block, first to last (the shared pass's, then the
    /// branch's).
    pub fn stack(&self, input: &TaskInput) -> Vec<Tensor> {
        let shared = self.config.shared_layers();
        let mut stack: Vec<Tensor> = input.states[1..=shared].iter().map(Tensor::shallow_clone).collect();
        if let Some(branch) = &self.branch {
            let below = input.states[shared].to_kind(self.branch_kind);
            stack.extend(branch.forward(&below, &input.mask));
        }
        stack
    }

    /// What a word tagger reads: each word's first sub-token in the last `layers` states of `stack`, and the
    /// word's shape (`[batch, words, layers × dim + SHAPE_FEATURES]`).
    pub fn word_features(&self, stack: &[Tensor], layers: usize, input: &TaskInput) -> Tensor {
        let index = input.positions.unsqueeze(-1).expand([-1, -1, self.config.dim()], false);
        let mut parts: Vec<Tensor> =
            stack[stack.len() - layers..].iter().map(|s| s.gather(1, &index, false).to_kind(Kind::Float)).collect();
        parts.push(input.shapes.shallow_clone());
        Tensor::cat(&parts, 2)
    }

    /// Logits of the heads asked for; `train` enables dropout (gradients flow unless the caller is in
    /// `no_grad`).
    pub fn logits(&self, input: &TaskInput, heads: Heads, train: bool) -> TaskLogits {
        let stack = self.stack(input);
        self.logits_of(&stack, input, heads, train)
    }

    fn logits_of(&self, stack: &[Tensor], input: &TaskInput, heads: Heads, train: bool) -> TaskLogits {
        let top = stack.last().expect("an encoder has at least one block");
        let sentence = (heads.sentiment || heads.emotion).then(|| {
            let pooled = mean_pool(top, &input.mask).to_kind(Kind::Float);
            Tensor::cat(&[pooled, input.social.shallow_clone()], 1)
        });
        let sentence_head = |head: &Option<SentenceHead>, on: bool| match (head, &sentence) {
            (Some(head), Some(x)) if on => Some(head.logits(x, train)),
            _ => None,
        };
        let sentiment = sentence_head(&self.sentiment, heads.sentiment);
        let emotion = sentence_head(&self.emotion, heads.emotion);
        let ner = match (&self.ner, &self.config.ner) {
            (Some(head), Some(config)) if heads.ner => {
                Some(head.logits(&self.word_features(stack, config.layers, input), &input.word_counts, train))
            }
            _ => None,
        };
        let aspect_terms = match &self.aspects {
            Some(head) if heads.aspects => {
                let features = self.word_features(stack, head.config().terms.layers, input);
                Some(head.term_logits(&features, &input.word_counts, train))
            }
            _ => None,
        };
        TaskLogits { sentiment, emotion, ner, aspect_terms }
    }

    /// The state entering the aspect reader's blocks (the task model's top `polarity_layers` blocks).
    pub fn aspect_reader_input<'a>(&self, stack: &'a [Tensor]) -> Option<&'a Tensor> {
        let head = self.aspects.as_ref()?;
        stack.len().checked_sub(head.config().polarity_layers + 1).map(|i| &stack[i])
    }

    /// Predictions for an encoder pass over `texts` (one per batch row) with their `words`.
    pub fn predict(
        &self,
        input: &TaskInput,
        words: &[Vec<Word>],
        texts: &[&str],
        heads: Heads,
    ) -> Result<Vec<TaskPrediction>, EnrichError> {
        let stack = tch::no_grad(|| self.stack(input));
        let logits = tch::no_grad(|| self.logits_of(&stack, input, heads, false));
        let mut out = vec![TaskPrediction::default(); texts.len()];
        if let (Some(logits), Some(config)) = (&logits.sentiment, &self.config.sentiment) {
            for (o, s) in out.iter_mut().zip(crate::sentiment::sentiments(logits, config)?) {
                o.sentiment = Some(s);
            }
        }
        if let (Some(logits), Some(config)) = (&logits.emotion, &self.config.emotion) {
            for (o, e) in out.iter_mut().zip(crate::sentiment::emotions(logits, config)?) {
                o.emotion = Some(e);
            }
        }
        if let (Some(logits), Some(head)) = (&logits.ner, &self.ner) {
            let tags = head.decode(logits, &input.word_counts)?;
            for (((o, tags), words), text) in out.iter_mut().zip(tags).zip(words).zip(texts) {
                o.entities = Some(social::with_mentions(text, head.spans(text, words, &tags)));
            }
        }
        if let (Some(logits), Some(head), Some(below)) =
            (&logits.aspect_terms, &self.aspects, self.aspect_reader_input(&stack))
        {
            let found = head.decode_terms(logits, &input.word_counts, texts, words)?;
            let tokens =
                Vec::<i64>::try_from(&input.mask.sum_dim_intlist(1, false, Kind::Int64).to_device(Device::Cpu))?;
            let terms: Vec<TermTokens> = found
                .iter()
                .enumerate()
                .flat_map(|(row, terms)| {
                    let (words, tokens) = (&words[row], tokens[row] as usize);
                    terms.iter().map(move |t| TermTokens::of_words(row, words, t.start, t.end, tokens))
                })
                .collect();
            let polarity =
                (!terms.is_empty()).then(|| tch::no_grad(|| head.polarity_logits(below, &input.mask, &terms, false)));
            let mut first = 0i64;
            for (row, terms) in found.iter().enumerate() {
                let n = terms.len() as i64;
                let aspects = match &polarity {
                    Some(p) if n > 0 => head.aspects(texts[row], &words[row], terms, &p.narrow(0, first, n))?,
                    _ => Vec::new(),
                };
                let entities = out[row].entities.as_deref().unwrap_or_default();
                out[row].aspects = Some(without_names(aspects, entities));
                first += n;
            }
        }
        Ok(out)
    }

    /// Runs the branch (and the aspect reader) at `kind` (bf16 where the CPU or GPU multiplies it fast); the heads stay f32, they
    /// are small and their outputs are probabilities.
    pub fn set_branch_kind(&mut self, kind: Kind) {
        if self.branch.is_some() {
            (self.vs.root() / "branch").set_kind(kind);
        }
        if let Some(head) = &mut self.aspects {
            (self.vs.root() / "aspects" / "reader").set_kind(kind);
            head.set_reader_kind(kind);
        }
        self.branch_kind = kind;
    }

    pub fn save(&self, dir: &Path) -> Result<(), EnrichError> {
        std::fs::create_dir_all(dir).map_err(|source| EnrichError::ModelFile { path: dir.to_owned(), source })?;
        let bytes = serde_json::to_vec_pretty(&self.config).map_err(|e| EnrichError::Data(e.to_string()))?;
        let path = dir.join("model.json");
        std::fs::write(&path, bytes).map_err(|source| EnrichError::ModelFile { path, source })?;
        // Written from CPU copies: a model trained on a GPU is saved the same as one trained on the CPU.
        let tensors: Vec<(String, Tensor)> =
            self.vs.variables().into_iter().map(|(name, t)| (name, t.to_device(Device::Cpu))).collect();
        Tensor::write_safetensors(&tensors, dir.join("model.safetensors"))?;
        Ok(())
    }

    /// Loads `model.json` and `model.safetensors` from `dir` onto `device`.
    pub fn load(dir: &Path, device: Device) -> Result<Self, EnrichError> {
        let path = dir.join("model.json");
        let bytes = std::fs::read(&path).map_err(|source| EnrichError::ModelFile { path: path.clone(), source })?;
        let config: TaskModelConfig =
            serde_json::from_slice(&bytes).map_err(|source| EnrichError::ModelConfig { path, source })?;
        let mut model = Self::new(config, device)?;
        let path = dir.join("model.safetensors");
        model.vs.load(&path).map_err(|source| EnrichError::Weights { path, source })?;
        Ok(model)
    }
}

"""The Python peer for `murmur bench enrich`: the same tasks built the way a Hugging Face user would, one
model per task on the same base encoder weights, with heads of the same shape as murmur's.

    python enrich/bench/peer_enrich.py MODEL_DIR TEXTS_JSON THREADS TASKS
TASKS: comma-separated from `embedding,sentiment,emotion,ner`. Prints one JSON line: {"seconds": ..., "comments": ...}.
"""
import json
import sys
import time

import torch
from sentence_transformers import SentenceTransformer
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer, pipeline


def main() -> None:
    texts_path, model_dir, threads, tasks = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split(",")
    torch.set_num_threads(threads)
    texts = json.load(open(texts_path, encoding="utf-8"))
    embedder = SentenceTransformer(model_dir, device="cpu") if "embedding" in tasks else None
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # Three-class classifier on the same encoder weights; its head is a dense layer as wide as murmur's.
    classifier = None
    if "sentiment" in tasks:
        classifier = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=3).eval()
    # Emotions: a second sequence classifier, multi-label (Ekman's six and neutral, a sigmoid each).
    emotions = None
    if "emotion" in tasks:
        emotions = AutoModelForSequenceClassification.from_pretrained(
            model_dir, num_labels=7, problem_type="multi_label_classification"
        ).eval()
    # NER as a user builds it: a token classifier on the same weights (9 IOB2 tags) behind the
    # token-classification pipeline, which merges word pieces into entity spans with character offsets.
    tagger = None
    if "ner" in tasks:
        labels = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
        model = AutoModelForTokenClassification.from_pretrained(
            model_dir, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)}
        ).eval()
        tagger = pipeline("token-classification", model=model, tokenizer=tokenizer, aggregation_strategy="simple", device="cpu")

    def run(batch):
        if embedder is not None:
            embedder.encode(batch, batch_size=len(batch), normalize_embeddings=True)
        if classifier is not None or emotions is not None:
            with torch.inference_mode():
                inputs = tokenizer(batch, padding=True, truncation=True, max_length=256, return_tensors="pt")
                if classifier is not None:
                    classifier(**inputs).logits.softmax(-1)
                if emotions is not None:
                    emotions(**inputs).logits.sigmoid()
        if tagger is not None:
            tagger(batch, batch_size=len(batch))

    run(texts[:32])  # warm-up, as murmur's side does
    started = time.perf_counter()
    for start in range(0, len(texts), 256):
        run(texts[start : start + 256])
    print(json.dumps({"seconds": time.perf_counter() - started, "comments": len(texts)}))


if __name__ == "__main__":
    main()

"""The Python peer for `murmur bench enrich`: the same tasks built the way a Hugging Face user would, one
model per task on the same base encoder weights, with heads of the same shape as murmur's.

    python enrich/bench/peer_enrich.py MODEL_DIR TEXTS_JSON THREADS TASKS
TASKS: comma-separated from `embedding,sentiment`. Prints one JSON line: {"seconds": ..., "comments": ...}.
"""
import json
import sys
import time

import torch
from sentence_transformers import SentenceTransformer
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def main() -> None:
    model_dir, texts_path, threads, tasks = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split(",")
    torch.set_num_threads(threads)
    texts = json.load(open(texts_path, encoding="utf-8"))
    embedder = SentenceTransformer(model_dir, device="cpu") if "embedding" in tasks else None
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # Three-class classifier on the same encoder weights; its head is a dense layer as wide as murmur's.
    classifier = None
    if "sentiment" in tasks:
        classifier = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=3).eval()

    def run(batch):
        if embedder is not None:
            embedder.encode(batch, batch_size=len(batch), normalize_embeddings=True)
        if classifier is not None:
            with torch.inference_mode():
                inputs = tokenizer(batch, padding=True, truncation=True, max_length=256, return_tensors="pt")
                classifier(**inputs).logits.softmax(-1)

    run(texts[:32])  # warm-up, as murmur's side does
    started = time.perf_counter()
    for start in range(0, len(texts), 256):
        run(texts[start : start + 256])
    print(json.dumps({"seconds": time.perf_counter() - started, "comments": len(texts)}))


if __name__ == "__main__":
    main()

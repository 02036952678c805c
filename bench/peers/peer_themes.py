"""The batch peer of `murmur-bench themes`: BERTopic's clustering (UMAP to 5 dimensions, then HDBSCAN) on the
same embeddings murmur clusters, with BERTopic's defaults. Reads little-endian float32 rows; prints one JSON
line: each row's cluster (-1 for an outlier) and the seconds the clustering took."""
import json
import sys
import time

import numpy as np


def main():
    path, dim, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    x = np.fromfile(path, dtype="<f4").reshape(-1, dim)
    import hdbscan
    import umap

    start = time.perf_counter()
    reduced = umap.UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=seed).fit_transform(x)
    labels = hdbscan.HDBSCAN(min_cluster_size=10, metric="euclidean", cluster_selection_method="eom").fit_predict(reduced)
    seconds = time.perf_counter() - start
    print(json.dumps({"labels": [int(v) for v in labels], "seconds": seconds}))


if __name__ == "__main__":
    main()

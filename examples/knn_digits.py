"""K-nearest-neighbour classification of handwritten digits with ``argKmin``.

scikit-learn's bundled ``digits`` data (1,797 images of 8 x 8 pixels, real data shipped
with the package: nothing is downloaded) are split into a training and a test set. For
each test image, the K nearest training images in the Euclidean distance come from one
lazykernels reduction over the symbolic distance matrix,

    D_ij = |x_i - y_j|^2,     ind = D.argKmin(K, axis=1)     # (n_test, K) indices,

without ever storing the n_test x n_train matrix; the predicted label is the majority vote
of the K neighbours' labels, ties going to the smallest label (scikit-learn's rule).

The script compares the accuracy and the time with scikit-learn's brute-force
``KNeighborsClassifier(algorithm="brute")`` and with dense NumPy (full distance matrix +
``argpartition``); the accuracies must be equal. ``--n`` sets the training-set size:
past the ~1,300 original training images, copies shifted by one pixel (up, down, left,
right) are added, the classic augmentation of digit data. Writes ``knn_digits.png``
(test digits with their predicted labels, and accuracy against K).

Run: ``python examples/knn_digits.py [--n 1297] [--k 5] [--out-dir .]``
(KeOps tutorials ``knn/plot_knn_numpy.py``, ``knn/plot_knn_mnist.py``.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from _common import dense_fits, make_parser, new_figure, parse, print_timings, save_figure, timed
from sklearn.datasets import load_digits
from sklearn.neighbors import KNeighborsClassifier

from lazykernels.numpy import Vi, Vj

N_TEST = 500


def shifted(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """8 x 8 images (flattened) moved by (dy, dx) pixels, zero-filled."""
    im = images.reshape(-1, 8, 8)
    out = np.zeros_like(im)
    ys, yd = (slice(0, 8 - dy), slice(dy, 8)) if dy >= 0 else (slice(-dy, 8), slice(0, 8 + dy))
    xs, xd = (slice(0, 8 - dx), slice(dx, 8)) if dx >= 0 else (slice(-dx, 8), slice(0, 8 + dx))
    out[:, yd, xd] = im[:, ys, xs]
    return out.reshape(len(images), 64)


def load(n_train: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training set of ``n_train`` images (augmented if needed) and the test set."""
    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.target))
    x = digits.data[order].astype(np.float32)
    y = digits.target[order]
    x_test, y_test = x[-N_TEST:], y[-N_TEST:]
    x_pool, y_pool = [x[:-N_TEST]], [y[:-N_TEST]]
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        x_pool.append(shifted(x[:-N_TEST], dy, dx))
        y_pool.append(y[:-N_TEST])
    x_train, y_train = np.concatenate(x_pool), np.concatenate(y_pool)
    if n_train > len(x_train):
        raise SystemExit(f"--n: at most {len(x_train)} training images (with the shifts)")
    return x_train[:n_train], y_train[:n_train], x_test, y_test


def vote(neighbour_labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Majority vote per row; a tie goes to the smallest label (argmax takes the first)."""
    counts = np.zeros((len(neighbour_labels), n_classes), dtype=np.int64)
    rows = np.repeat(np.arange(len(neighbour_labels)), neighbour_labels.shape[1])
    np.add.at(counts, (rows, neighbour_labels.ravel()), 1)
    return np.argmax(counts, axis=1)


def knn_lazy(x_train: np.ndarray, x_test: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k nearest training images of each test image: (n_test, k)."""
    d2 = Vi(x_test).sqdist(Vj(x_train))  # symbolic (n_test, n_train) matrix
    return d2.argKmin(k, axis=1)


def knn_dense(x_train: np.ndarray, x_test: np.ndarray, k: int) -> np.ndarray:
    """The same with the stored distance matrix (NumPy), sorted by distance.

    ``|x|^2 - 2 <x, y> + |y|^2`` by a matrix product, in float64: exact on integer pixels.
    """
    a, b = x_test.astype(np.float64), x_train.astype(np.float64)
    d2 = np.sum(a**2, axis=1)[:, None] - 2 * a @ b.T + np.sum(b**2, axis=1)[None, :]
    part = np.argpartition(d2, k - 1, axis=1)[:, :k]
    order = np.argsort(np.take_along_axis(d2, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def plot(x_test: np.ndarray, pred: np.ndarray, y_test: np.ndarray, curve: Any, out_dir: Any):
    """A few test digits with their predicted labels, and the accuracy against K."""
    fig, axes = new_figure(ncols=2, size=5)
    tiles = np.zeros((4 * 9, 8 * 9))  # white separators
    for n in range(32):
        r, c = divmod(n, 8)
        tiles[r * 9 : r * 9 + 8, c * 9 : c * 9 + 8] = x_test[n].reshape(8, 8)
    axes[0].imshow(tiles, cmap="gray_r")
    for n in range(32):
        r, c = divmod(n, 8)
        color = "tab:green" if pred[n] == y_test[n] else "tab:red"
        axes[0].text(c * 9 + 7.5, r * 9 + 7.5, str(pred[n]), color=color, fontsize=9)
    axes[0].set_title("test digits and predicted labels")
    axes[0].axis("off")
    ks, acc = zip(*curve)
    axes[1].plot(ks, acc, "o-")
    axes[1].set_xlabel("K (neighbours)")
    axes[1].set_ylabel("test accuracy")
    axes[1].set_title("accuracy vs K (lazykernels argKmin)")
    return save_figure(fig, out_dir, "knn_digits.png")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the tutorial; return the accuracies of lazykernels, scikit-learn and NumPy."""
    parser = make_parser(__doc__.splitlines()[0], n_default=1297)
    parser.add_argument("--k", type=int, default=5, help="number of neighbours")
    args = parse(parser, argv)
    x_train, y_train, x_test, y_test = load(args.n, args.seed)
    n_classes = 10

    knn_lazy(x_train, x_test, args.k)  # warm-up: compiles (or loads) the kernel
    ind, t_lazy = timed(knn_lazy, x_train, x_test, args.k)
    pred = vote(y_train[ind], n_classes)
    accuracy = float(np.mean(pred == y_test))

    clf = KNeighborsClassifier(n_neighbors=args.k, algorithm="brute")
    clf.fit(x_train.astype(np.float64), y_train)
    pred_sk, t_sk = timed(clf.predict, x_test.astype(np.float64))
    sk_accuracy = float(np.mean(pred_sk == y_test))

    result: dict[str, Any] = {
        "accuracy": accuracy,
        "sklearn_accuracy": sk_accuracy,
        "n_disagree_sklearn": int(np.sum(pred != pred_sk)),
        "dense_accuracy": None,
    }
    t_dense = None
    if dense_fits(len(x_test), len(x_train)):
        ind_dense, t_dense = timed(knn_dense, x_train, x_test, args.k)
        pred_dense = vote(y_train[ind_dense], n_classes)
        result["dense_accuracy"] = float(np.mean(pred_dense == y_test))
        # Equal distances (integer pixels) may be listed in another order: compare the
        # neighbours' distances, which do not depend on how ties are broken.
        d_lazy = np.sum((x_test[:, None, :] - x_train[ind]) ** 2, axis=-1)
        d_dense = np.sum((x_test[:, None, :] - x_train[ind_dense]) ** 2, axis=-1)
        result["same_neighbour_distances"] = bool(np.array_equal(d_lazy, d_dense))

    print(f"train {len(x_train)} images, test {len(x_test)} images, K = {args.k}")
    print(f"accuracy: lazykernels {accuracy:.4f}, scikit-learn brute {sk_accuracy:.4f}")
    print(f"predictions that differ from scikit-learn's: {result['n_disagree_sklearn']}")
    print_timings(
        "K-NN search + vote times (lazykernels float32 warm; scikit-learn float64):",
        ["lazykernels argKmin", "sklearn brute", "NumPy dense"],
        [(f"K = {args.k}", [t_lazy, t_sk, t_dense])],
    )

    # argKmin lists the neighbours nearest first: one search with K = 15 gives every K <= 15.
    ind15 = knn_lazy(x_train, x_test, 15)
    curve = [
        (k, float(np.mean(vote(y_train[ind15[:, :k]], n_classes) == y_test)))
        for k in (1, 3, 5, 7, 9, 11, 15)
    ]
    result["accuracy_vs_k"] = curve
    plot(x_test, pred, y_test, curve, args.out_dir)
    return result


if __name__ == "__main__":
    main()

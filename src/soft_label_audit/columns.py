"""Column names and id ranges shared by the table contracts (docs/architecture.md).

One place defines them so that conditions, slots and probability columns are never spelled
as magic strings in several modules.
"""

N_CLASSES = 10
#: every image is 28x28 uint8 pixels, stored row-major as 784 bytes
IMAGE_SHAPE = (28, 28)
IMAGE_BYTES = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
DIGITS = tuple(range(N_CLASSES))

SOURCES = ("mnist", "synthetic")
SPLITS = ("train", "val", "test")
#: the item sets a run predicts: the annotated test items and the unannotated pool items
PREDICTION_SCOPES = ("test", "pool")
#: the per-run columns of ``curves`` (the same on every epoch's row of a seed): the best epoch,
#: the convergence check of metrics/convergence.py and the post-hoc temperatures fitted on the
#: validation items at the best and at the final epoch (metrics/temperature.py)
RUN_CURVE_COLUMNS = (
    "best_epoch",
    "val_loss_gain_last_fifth",
    "val_loss_converged",
    "temperature_best",
    "temperature_final",
)

#: human soft label: 10 digits plus the "none / can't tell" slot, summing to one
H_DIGIT_COLS = tuple(f"h_{k}" for k in DIGITS)
H_NONE_COL = "h_none"
H_COLS = H_DIGIT_COLS + (H_NONE_COL,)

#: model predicted distribution over the 10 digits
P_COLS = tuple(f"p_{k}" for k in DIGITS)

#: training target over the 10 digits
T_COLS = tuple(f"t_{k}" for k in DIGITS)

#: a vote's choice is a string: "0".."9" or NONE_CHOICE
NONE_CHOICE = "none"
CHOICES = tuple(str(k) for k in DIGITS) + (NONE_CHOICE,)

#: MNIST item ids in the 70k ordering (training images first, then test images); the one place
#: that states them. ``range`` objects: ``item_id in MNIST_TEST_IDS``, ``MNIST_TEST_IDS.start``.
MNIST_TRAIN_IDS = range(0, 60_000)
MNIST_TEST_IDS = range(60_000, 70_000)
N_MNIST = MNIST_TEST_IDS.stop

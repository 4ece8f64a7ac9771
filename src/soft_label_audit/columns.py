"""Column names shared by the table contracts (DESIGN.md, "Table contracts").

One place defines them so that conditions, slots and probability columns are never spelled
as magic strings in several modules.
"""

N_CLASSES = 10
DIGITS = tuple(range(N_CLASSES))

SOURCES = ("mnist", "synthetic")
SPLITS = ("train", "val", "test")

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

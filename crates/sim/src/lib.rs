//! ebill-sim: under construction (see issue 3).

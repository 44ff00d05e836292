//! ebill-consensus: under construction (see issue 3).

//! weft-sdk: what a weft plugin author depends on.

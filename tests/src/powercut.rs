//! Random operation sequences with several power cuts, checked against a
//! `HashMap` model (being written).

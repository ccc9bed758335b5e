//! Nothing here: the checks are in `tests/`. See `boards/README.md`.

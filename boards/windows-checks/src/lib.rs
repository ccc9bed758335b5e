//! Nothing here: the checks are in `tests/`. See `boards/x86_64-windows/README.md`.

//! Shared helpers for the example clients and end-to-end tests.

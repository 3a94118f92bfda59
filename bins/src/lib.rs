//! Shared command-line plumbing for the thywill binaries.

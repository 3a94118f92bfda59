//! v1 reader (in progress)
use std::path::Path;
/// v1 tree.
#[derive(Debug, Default)]
pub struct V1Archive;
/// Scans.
pub fn scan_v1_tree(_root: &Path) -> crate::Result<V1Archive> {
    Ok(V1Archive)
}

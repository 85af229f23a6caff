//! Test support shared by the swap-race tests of `mcp-files` and `mcp-server` (included by
//! path): putting a swapped-away directory back.

use std::path::Path;

/// Removes the symlink at `work` and renames `real` back to `work`. A write that ran while
/// neither was in place may have recreated `work` as a directory: its files are moved into
/// `real` first, so a swapper never gets stuck with both directories present.
pub fn put_back_the_real_directory(work: &Path, real: &Path) {
    for _ in 0..100 {
        if !real.exists() {
            return;
        }
        let _ = std::fs::remove_file(work);
        if std::fs::rename(real, work).is_ok() {
            return;
        }
        if let Ok(entries) = std::fs::read_dir(work) {
            for entry in entries.flatten() {
                let _ = std::fs::rename(entry.path(), real.join(entry.file_name()));
            }
        }
        let _ = std::fs::remove_dir(work);
    }
}

//! The sandbox: every path a caller gives is resolved inside one configured root through a
//! capability handle, so no path can reach anything outside it.
//!
//! Each root is opened once as a [`cap_std::fs::Dir`]. Every file operation goes through that
//! handle (or a handle of a directory opened through it), and cap-std resolves paths with
//! `openat2(RESOLVE_BENEATH)` where the kernel has it, or component by component with
//! `O_NOFOLLOW` otherwise. `..` that would climb above the root, absolute symlinks, and
//! symlink chains that lead outside fail inside cap-std: escapes are impossible by
//! construction, not prevented by string checks. The only string handling here is
//! splitting an absolute caller path into "which root" and "the rest" (by path components, so
//! `/data_evil` is not inside `/data`) and rejecting NUL bytes, which no path may contain.
//!
//! Errors never echo where a symlink points: they name the caller's path only.
//!
//! A resolved path carries its *canonical* relative path (symlinks inside the root followed,
//! `.` and `..` applied) so that aliases of one file share one version history, one lock and
//! one cache entry. It is computed by [`canonical`], which walks the components through the
//! root's handle (`symlink_metadata`, `read_link_contents`) and never reads a name back from
//! an open descriptor: cap-std's own `canonicalize` does (`/proc/self/fd`), and a file
//! replaced by a concurrent rename then comes back as `name (deleted)`, which would give one
//! file two lock keys. The walk also refuses `..` above the root and absolute symlinks, like
//! cap-std does, but the sandbox does not rely on it: every I/O still goes through cap-std. The canonical absolute path
//! (`root/relative`) is the key under which versions and locks are stored, so history
//! survives a restart as long as the root stays where it is.

use std::io;
use std::path::{Component, Path, PathBuf};

use cap_std::fs::Dir;
use mcp_core::{Error, Result};

/// One configured root, opened.
pub(crate) struct Root {
    /// The canonical absolute path of the root.
    pub(crate) path: PathBuf,
    /// The path as configured (may differ from `path` through symlinks such as `/tmp`).
    configured: PathBuf,
    /// The capability handle every operation goes through.
    pub(crate) dir: Dir,
}

/// A caller path resolved inside a root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// Index of the root in the configuration.
    pub(crate) root: usize,
    /// Canonical path relative to the root (only normal components; empty for the root).
    pub(crate) rel: PathBuf,
    /// Canonical absolute path: the key of versions and locks.
    pub(crate) key: String,
}

impl Resolved {
    /// The parent directory and the final name; `InvalidArgument` for the root itself.
    pub(crate) fn split(&self, shown: &str) -> Result<(PathBuf, String)> {
        let name = self
            .rel
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| Error::InvalidArgument(format!("{shown}: names a root, not a file")))?;
        let parent = self.rel.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok((parent, name.to_owned()))
    }
}

/// The opened roots.
pub(crate) struct Roots {
    roots: Vec<Root>,
}

impl Roots {
    /// Opens every configured root (each must be an existing directory).
    pub(crate) fn open(paths: &[PathBuf]) -> Result<Self> {
        if paths.is_empty() {
            return Err(Error::InvalidArgument(
                "the files service needs at least one root".into(),
            ));
        }
        let mut roots = Vec::with_capacity(paths.len());
        for configured in paths {
            let path = std::fs::canonicalize(configured).map_err(|err| {
                Error::InvalidArgument(format!("root {}: {err}", configured.display()))
            })?;
            let dir =
                Dir::open_ambient_dir(&path, cap_std::ambient_authority()).map_err(|err| {
                    Error::InvalidArgument(format!("root {}: {err}", configured.display()))
                })?;
            roots.push(Root {
                path,
                configured: configured.clone(),
                dir,
            });
        }
        Ok(Roots { roots })
    }

    /// Every root.
    pub(crate) fn all(&self) -> &[Root] {
        &self.roots
    }

    /// The root at `index`.
    pub(crate) fn get(&self, index: usize) -> &Root {
        &self.roots[index]
    }

    /// Splits a caller path into its root and the path relative to it, without touching the
    /// filesystem. Relative paths belong to the first root; absolute ones to the root that is
    /// a component-wise prefix of them.
    pub(crate) fn locate<'p>(&self, raw: &'p str) -> Result<(usize, &'p Path)> {
        if raw.is_empty() {
            return Err(Error::InvalidArgument("path is empty".into()));
        }
        if raw.contains('\0') {
            return Err(Error::InvalidArgument("path contains a NUL byte".into()));
        }
        let path = Path::new(raw);
        if !path.has_root() {
            return Ok((0, path));
        }
        for (index, root) in self.roots.iter().enumerate() {
            for base in [&root.path, &root.configured] {
                if let Ok(rest) = path.strip_prefix(base) {
                    return Ok((index, rest));
                }
            }
        }
        Err(Error::PermissionDenied(format!(
            "{raw}: outside every configured root"
        )))
    }

    /// The relative path with only `.` removed, when it contains nothing but plain names:
    /// the L1 cache's lookup key for paths that need no resolution. `None` when `..` appears.
    pub(crate) fn plain(rel: &Path) -> Option<String> {
        let mut out = String::with_capacity(rel.as_os_str().len());
        for component in rel.components() {
            match component {
                Component::Normal(name) => {
                    if !out.is_empty() {
                        out.push('/');
                    }
                    out.push_str(name.to_str()?);
                }
                Component::CurDir => {}
                _ => return None,
            }
        }
        Some(out)
    }

    /// Resolves an existing path (symlinks inside the root followed).
    pub(crate) fn existing(&self, raw: &str) -> Result<Resolved> {
        let (root, rest) = self.locate(raw)?;
        let dir = &self.roots[root].dir;
        match canonical(dir, rest).map_err(|err| io_error(raw, err))? {
            (canonical, true) => Ok(self.resolved(root, &canonical)),
            (_, false) => Err(Error::NotFound(format!("{raw}: no such file or directory"))),
        }
    }

    /// Resolves a path that is about to be written: symlinks are followed as far as they go,
    /// so a dangling symlink inside the root names its (inside) target, and one leading
    /// outside is refused. With `missing_parents`, parents that do not exist yet are allowed
    /// (the whole path still resolves, or is refused, through the existing ones) but nothing is
    /// created here: the caller creates them with [`create_missing`] only once the call can no
    /// longer be refused, so a refused call leaves the tree as it was.
    pub(crate) fn for_write(&self, raw: &str, missing_parents: bool) -> Result<Resolved> {
        let (root, rest) = self.locate(raw)?;
        let dir = &self.roots[root].dir;
        if !matches!(rest.components().next_back(), Some(Component::Normal(_))) {
            return Err(Error::InvalidArgument(format!(
                "{raw}: does not name a file"
            )));
        }
        let resolved = match canonical(dir, rest) {
            Err(err) if err.kind() == io::ErrorKind::NotFound && missing_parents => {
                planned(dir, rest)
            }
            other => other,
        };
        let (target, _) = resolved.map_err(|err| io_error(raw, err))?;
        if target.as_os_str().is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{raw}: names a root, not a file"
            )));
        }
        Ok(self.resolved(root, &target))
    }

    /// Creates the directory `raw` and its missing parents, once the whole path has resolved
    /// inside its root (a refused path creates nothing). Returns it and whether it was
    /// created.
    pub(crate) fn create_dir(&self, raw: &str) -> Result<(Resolved, bool)> {
        let (root, rest) = self.locate(raw)?;
        let dir = &self.roots[root].dir;
        let (planned, _) = planned(dir, rest).map_err(|err| io_error(raw, err))?;
        let existed = planned.as_os_str().is_empty()
            || dir.metadata(&planned).is_ok_and(|meta| meta.is_dir());
        if !existed {
            dir.create_dir_all(&planned)
                .map_err(|err| io_error(raw, err))?;
        }
        match canonical(dir, &planned).map_err(|err| io_error(raw, err))? {
            (canonical, true) => Ok((self.resolved(root, &canonical), !existed)),
            (_, false) => Err(Error::NotFound(format!("{raw}: no such file or directory"))),
        }
    }

    fn resolved(&self, root: usize, canonical: &Path) -> Resolved {
        let rel: PathBuf = canonical
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        let key = self.roots[root]
            .path
            .join(&rel)
            .to_string_lossy()
            .into_owned();
        Resolved { root, rel, key }
    }

    /// Opens the directory `rel` of `root` as its own capability handle.
    pub(crate) fn open_dir(&self, root: usize, rel: &Path, shown: &str) -> Result<Dir> {
        let dir = &self.roots[root].dir;
        let opened = if rel.as_os_str().is_empty() {
            dir.try_clone()
        } else {
            dir.open_dir(rel)
        };
        opened.map_err(|err| io_error(shown, err))
    }

    /// Opens the deepest directory of `root` on the way to `rel` that exists, and returns it
    /// with the rest of `rel` below it: the directories still missing (empty when `rel`
    /// exists). Only a missing directory makes it climb; any other error is returned.
    pub(crate) fn open_deepest(
        &self,
        root: usize,
        rel: &Path,
        shown: &str,
    ) -> Result<(Dir, PathBuf)> {
        let dir = &self.roots[root].dir;
        let mut existing = rel.to_path_buf();
        let mut missing = Vec::new();
        loop {
            let opened = if existing.as_os_str().is_empty() {
                dir.try_clone()
            } else {
                dir.open_dir(&existing)
            };
            match opened {
                Ok(opened) => return Ok((opened, missing.iter().rev().collect())),
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    match existing.file_name() {
                        Some(name) => missing.push(name.to_owned()),
                        None => return Err(io_error(shown, err)),
                    }
                    existing.pop();
                }
                Err(err) => return Err(io_error(shown, err)),
            }
        }
    }

    /// How a resolved path is shown to callers: relative for the first root, absolute for
    /// the others (so that it can be passed back as is).
    pub(crate) fn display(&self, root: usize, rel: &Path) -> String {
        if root == 0 {
            let shown = rel.to_string_lossy().into_owned();
            if shown.is_empty() {
                ".".into()
            } else {
                shown
            }
        } else {
            self.roots[root]
                .path
                .join(rel)
                .to_string_lossy()
                .into_owned()
        }
    }

    /// The root and relative path of an absolute path reported by the filesystem watcher.
    pub(crate) fn locate_absolute(&self, path: &Path) -> Option<(usize, String)> {
        self.roots.iter().enumerate().find_map(|(index, root)| {
            let rest = path.strip_prefix(&root.path).ok()?;
            Some((index, Self::plain(rest)?))
        })
    }
}

/// Maps an I/O error on the caller's path `shown` to a typed error that never reveals more
/// than that path (not where a symlink points, not the root's location).
pub(crate) fn io_error(shown: &str, err: io::Error) -> Error {
    match err.kind() {
        io::ErrorKind::NotFound => Error::NotFound(format!("{shown}: no such file or directory")),
        io::ErrorKind::PermissionDenied => {
            Error::PermissionDenied(format!("{shown}: outside the root or not accessible"))
        }
        io::ErrorKind::AlreadyExists => Error::Conflict(format!("{shown}: already exists")),
        io::ErrorKind::NotADirectory => {
            Error::InvalidArgument(format!("{shown}: a component is not a directory"))
        }
        io::ErrorKind::IsADirectory => Error::InvalidArgument(format!("{shown}: is a directory")),
        io::ErrorKind::DirectoryNotEmpty => {
            Error::Conflict(format!("{shown}: directory is not empty"))
        }
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidFilename => {
            Error::InvalidArgument(format!("{shown}: not a valid path here"))
        }
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            Error::Unavailable(format!("{shown}: no space left"))
        }
        _ => match err.raw_os_error() {
            // ELOOP: too many symlinks, or O_NOFOLLOW met one.
            Some(40) => {
                Error::PermissionDenied(format!("{shown}: too many or disallowed symbolic links"))
            }
            // EXDEV: a move across filesystems.
            Some(18) => Error::InvalidArgument(format!("{shown}: cannot move across filesystems")),
            _ => Error::Internal(format!("{shown}: I/O error ({:?})", err.kind())),
        },
    }
}

impl Roots {
    /// Resolves a path without following its final component: the parent is resolved,
    /// the name kept. For actions on the entry itself (delete, move, lstat-like checks), so
    /// deleting a symlink removes the link, never its target.
    pub(crate) fn entry(&self, raw: &str) -> Result<Resolved> {
        let (root, rest) = self.locate(raw)?;
        let name = match rest.components().next_back() {
            Some(Component::Normal(name)) => name,
            _ => return self.existing(raw),
        };
        let parent = rest.parent().unwrap_or(Path::new(""));
        let (parent_canonical, exists) =
            canonical(&self.roots[root].dir, parent).map_err(|err| io_error(raw, err))?;
        if !exists {
            return Err(Error::NotFound(format!("{raw}: no such file or directory")));
        }
        Ok(self.resolved(root, &parent_canonical.join(name)))
    }
}

/// Creates the directories `missing` below `base` (see [`Roots::open_deepest`]) and opens
/// the innermost; `base` itself when nothing is missing.
pub(crate) fn create_missing(base: &Dir, missing: &Path) -> io::Result<Dir> {
    if missing.as_os_str().is_empty() {
        return base.try_clone();
    }
    base.create_dir_all(missing)?;
    base.open_dir(missing)
}

/// Most symlinks one resolution follows (as Linux's `MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// The canonical form of `path` inside `dir`: symlinks followed, `.` and `..` applied, and
/// whether it exists. A missing final component is kept as given (`false`); a missing
/// directory on the way is `NotFound`. `..` above the root and absolute symlinks are
/// `PermissionDenied`, too many links `ELOOP`. Link targets never appear in errors.
pub(crate) fn canonical(dir: &Dir, path: &Path) -> io::Result<(PathBuf, bool)> {
    resolve(dir, path, false)
}

/// Like [`canonical`], for a path whose missing parents are about to be created: a missing
/// directory on the way counts as one that will exist (nothing below it can be a symlink, and
/// `..` leaves it again), so the whole path resolves, or is refused, before anything is
/// created. The result has only plain names; `false` when its final component is missing.
fn planned(dir: &Dir, path: &Path) -> io::Result<(PathBuf, bool)> {
    resolve(dir, path, true)
}

/// The walk behind [`canonical`] and [`planned`]: `through_missing` keeps going past a
/// missing directory instead of failing with `NotFound`.
fn resolve(dir: &Dir, path: &Path, through_missing: bool) -> io::Result<(PathBuf, bool)> {
    let escape = || {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            "path leads outside the root",
        )
    };
    let mut pending: Vec<std::ffi::OsString> = Vec::new();
    push_components(&mut pending, path)?;
    let mut resolved = PathBuf::new();
    let mut followed = 0;
    while let Some(component) = pending.pop() {
        if component == ".." {
            if !resolved.pop() {
                return Err(escape());
            }
            continue;
        }
        let candidate = resolved.join(&component);
        match dir.symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                followed += 1;
                if followed > MAX_SYMLINKS {
                    return Err(io::Error::from_raw_os_error(40));
                }
                let target = dir.read_link_contents(&candidate)?;
                if target.has_root() {
                    return Err(escape());
                }
                push_components(&mut pending, &target)?;
            }
            Ok(_) => resolved = candidate,
            Err(err) if err.kind() == io::ErrorKind::NotFound && pending.is_empty() => {
                return Ok((candidate, false));
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound && through_missing => {
                resolved = candidate;
            }
            Err(err) => return Err(err),
        }
    }
    Ok((resolved, true))
}

/// Pushes the components of `path` so that the first one is popped first; `.` is dropped.
fn push_components(pending: &mut Vec<std::ffi::OsString>, path: &Path) -> io::Result<()> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => parts.push(name.to_owned()),
            Component::ParentDir => parts.push("..".into()),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "path leads outside the root",
                ))
            }
        }
    }
    pending.extend(parts.into_iter().rev());
    Ok(())
}

//! Chart archives (`.tgz`) unpacked into memory, never onto the disk, with every hostile shape
//! refused: paths that climb out (`../`) or are absolute, links and device files, more files or
//! more bytes than the limits (a gzip bomb stops at the limit, it is not inflated first), and
//! archives that are not one chart directory.

use std::io::Read as _;

use driftless_files::{Entry, FileTree};

use crate::{ChartError, ChartLimits};

fn refused(chart: &str, message: impl Into<String>) -> ChartError {
    ChartError::Archive {
        chart: chart.to_owned(),
        message: message.into(),
    }
}

/// The archive's path without its top directory, or why it is refused.
fn inner_path(chart: &str, raw: &str, top: &mut Option<String>) -> Result<Option<String>, ChartError> {
    if raw.starts_with('/') || raw.contains('\\') {
        return Err(refused(chart, format!("{raw:?}: absolute paths are not allowed")));
    }
    let mut parts = raw.split('/').filter(|part| !part.is_empty() && *part != ".");
    let Some(first) = parts.next() else {
        return Ok(None);
    };
    let rest: Vec<&str> = parts.collect();
    if first == ".." || rest.contains(&"..") {
        return Err(refused(chart, format!("{raw:?} leaves the chart's directory")));
    }
    match top {
        Some(top) if top != first => {
            return Err(refused(
                chart,
                format!("{raw:?}: a chart archive holds one directory, {top:?}"),
            ));
        }
        Some(_) => {}
        None => *top = Some(first.to_owned()),
    }
    Ok((!rest.is_empty()).then(|| rest.join("/")))
}

/// Unpacks a chart archive: `<name>/Chart.yaml`, `<name>/templates/…` become `Chart.yaml`,
/// `templates/…`.
pub fn unpack(chart: &str, archive: &[u8], limits: &ChartLimits) -> Result<FileTree, ChartError> {
    let decoder = flate2::read::GzDecoder::new(archive);
    // Reading through `take` bounds what is inflated, however small the archive.
    let mut tar = tar::Archive::new(decoder.take(limits.max_unpacked_bytes.saturating_add(1)));
    let mut tree = FileTree::default();
    let mut top = None;
    let mut total: u64 = 0;
    let entries = tar
        .entries()
        .map_err(|err| refused(chart, format!("not a gzipped tar archive: {err}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|err| refused(chart, format!("corrupt archive: {err}")))?;
        let raw = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| refused(chart, "a path in the archive is not UTF-8"))?;
        let kind = entry.header().entry_type();
        let path = inner_path(chart, &raw, &mut top)?;
        if kind.is_dir() || kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        if kind.is_symlink() || kind.is_hard_link() {
            return Err(refused(
                chart,
                format!("{raw:?}: links are not allowed in a chart archive"),
            ));
        }
        if !kind.is_file() {
            return Err(refused(
                chart,
                format!("{raw:?}: only regular files are allowed in a chart archive"),
            ));
        }
        let Some(path) = path else { continue };
        if tree.entries.len() >= limits.max_files {
            return Err(refused(chart, format!("more than {} files", limits.max_files)));
        }
        let size = entry.header().size().unwrap_or(u64::MAX);
        total = total.saturating_add(size);
        if total > limits.max_unpacked_bytes {
            return Err(refused(
                chart,
                format!("unpacks to more than {} bytes", limits.max_unpacked_bytes),
            ));
        }
        let mut contents = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(1 << 20));
        entry
            .read_to_end(&mut contents)
            .map_err(|err| refused(chart, format!("{raw:?}: {err}")))?;
        tree.entries.insert(
            path,
            Entry::File {
                contents,
                executable: false,
            },
        );
    }
    if !matches!(tree.entries.get("Chart.yaml"), Some(Entry::File { .. })) {
        return Err(refused(chart, "no Chart.yaml in the archive's directory"));
    }
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ChartLimits {
        ChartLimits {
            max_unpacked_bytes: 64 * 1024,
            max_files: 8,
            ..ChartLimits::default()
        }
    }

    /// A gzipped tar of `(path, type, contents)`, paths written raw (as a hostile packer would).
    fn archive(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::default(),
        ));
        for (path, kind, contents) in entries {
            let mut header = tar::Header::new_gnu();
            let name = &mut header.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_entry_type(*kind);
            header.set_size(contents.len() as u64);
            header.set_mode(0o644);
            if kind.is_symlink() {
                header.set_link_name("/etc/passwd").expect("link name");
            }
            header.set_cksum();
            builder.append(&header, *contents).expect("append");
        }
        builder.into_inner().expect("tar").finish().expect("gzip")
    }

    const FILE: tar::EntryType = tar::EntryType::Regular;

    #[test]
    fn a_chart_unpacks_without_its_top_directory() {
        let tgz = archive(&[
            ("web/Chart.yaml", FILE, b"name: web\nversion: 1.0.0\n"),
            ("web/templates/cm.yaml", FILE, b"kind: ConfigMap\n"),
        ]);
        let tree = unpack("web", &tgz, &limits()).expect("unpacks");
        let paths: Vec<&str> = tree.entries.keys().map(String::as_str).collect();
        assert_eq!(paths, ["Chart.yaml", "templates/cm.yaml"]);
    }

    #[test]
    fn hostile_archives_are_refused_with_the_path_named() {
        let big = vec![b'a'; 65 * 1024];
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                archive(&[("web/../../etc/cron.d/x", FILE, b"x")]),
                "leaves the chart",
            ),
            (archive(&[("/etc/passwd", FILE, b"x")]), "absolute"),
            (
                archive(&[
                    ("web/Chart.yaml", FILE, b"name: web"),
                    ("web/link", tar::EntryType::Symlink, b""),
                ]),
                "links are not allowed",
            ),
            (
                archive(&[("web/Chart.yaml", FILE, b"name: web"), ("web/big", FILE, &big)]),
                "more than 65536 bytes",
            ),
            (
                archive(&[("web/Chart.yaml", FILE, b"name: web"), ("other/x", FILE, b"x")]),
                "one directory",
            ),
            (archive(&[("web/values.yaml", FILE, b"a: 1")]), "no Chart.yaml"),
            (
                archive(&[
                    ("web/Chart.yaml", FILE, b"name: web"),
                    ("web/dev", tar::EntryType::Char, b""),
                ]),
                "only regular files",
            ),
            (b"not gzip at all".to_vec(), "archive"),
        ];
        for (tgz, expected) in cases {
            let err = unpack("web", &tgz, &limits()).expect_err(expected).to_string();
            assert!(err.contains(expected), "{err:?} should mention {expected:?}");
            assert!(err.starts_with("chart web:"), "{err}");
        }
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        // 64 MiB of zeros compresses to ~64 KiB; it must be refused, not inflated.
        let zeros = vec![0_u8; 64 * 1024 * 1024];
        let tgz = archive(&[
            ("web/Chart.yaml", FILE, b"name: web"),
            ("web/zeros", FILE, &zeros),
        ]);
        assert!(tgz.len() < 1024 * 1024, "the bomb is small: {}", tgz.len());
        let err = unpack("web", &tgz, &limits()).expect_err("bomb").to_string();
        assert!(err.contains("more than"), "{err}");
    }

    #[test]
    fn too_many_files_are_refused() {
        let names: Vec<String> = (0..9).map(|i| format!("web/templates/{i}.yaml")).collect();
        let mut entries: Vec<(&str, tar::EntryType, &[u8])> = vec![("web/Chart.yaml", FILE, b"name: web")];
        entries.extend(names.iter().map(|name| (name.as_str(), FILE, b"a: 1".as_slice())));
        let err = unpack("web", &archive(&entries), &limits())
            .expect_err("too many")
            .to_string();
        assert!(err.contains("more than 8 files"), "{err}");
    }
}

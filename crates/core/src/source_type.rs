//! Which renderer a source without an explicit type gets, and how to say what a path held when
//! it rendered nothing. Pure functions of the file names at the application's path.
//!
//! Detection follows Argo CD (`reposerver` discovery): only the files directly at the path count;
//! a kustomization file means Kustomize, a `Chart.yaml` Helm, anything else a directory, whose
//! `.jsonnet` files are evaluated next to its YAML and JSON manifests. Argo CD walks the names in
//! lexical order and the last match wins, so when a path holds both a `Chart.yaml` and a
//! kustomization file, Kustomize wins; so it does here.

use std::collections::BTreeMap;

/// The file names Kustomize reads as a kustomization (`kustomize build`'s own list).
pub const KUSTOMIZATION_FILES: &[&str] = &["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// The renderer detection chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceType {
    Kustomize,
    Helm,
    /// A directory holding at least one `.jsonnet` program (rendered as a directory: its manifests
    /// are read too, as Argo CD does).
    Jsonnet,
    Directory,
}

/// The type of the source whose path directly holds the files `names` (base names, not paths).
#[must_use]
pub fn detect<'a>(names: impl IntoIterator<Item = &'a str>) -> SourceType {
    let mut chart = false;
    let mut jsonnet = false;
    for name in names {
        if KUSTOMIZATION_FILES.contains(&name) {
            return SourceType::Kustomize;
        }
        chart |= name == "Chart.yaml";
        jsonnet |= name.ends_with(".jsonnet");
    }
    if chart {
        SourceType::Helm
    } else if jsonnet {
        SourceType::Jsonnet
    } else {
        SourceType::Directory
    }
}

/// How many files of each kind a path that rendered nothing held, for the error that says so:
/// "3 .jsonnet files and no manifests", "no manifest files (found: Makefile, README.md)".
/// `paths` are relative to the application's path.
#[must_use]
pub fn describe_found<'a>(paths: impl IntoIterator<Item = &'a str>) -> String {
    /// Beyond this many names, the list is cut and says how many more there were.
    const LISTED: usize = 8;
    let mut by_extension: BTreeMap<&str, usize> = BTreeMap::new();
    let mut others = Vec::new();
    let mut manifests = 0;
    for path in paths {
        let name = path.rsplit('/').next().unwrap_or(path);
        match name.rsplit_once('.') {
            Some((_, "yaml" | "yml" | "json")) => manifests += 1,
            Some((stem, extension)) if !stem.is_empty() && matches!(extension, "jsonnet" | "libsonnet") => {
                *by_extension.entry(extension).or_default() += 1;
            }
            _ => others.push(path),
        }
    }
    let counted: Vec<String> = by_extension
        .iter()
        .map(|(extension, count)| plural(*count, &format!(".{extension} file")))
        .collect();
    let mut text = if counted.is_empty() && others.is_empty() && manifests == 0 {
        return "no files".to_owned();
    } else if manifests > 0 {
        // Manifests that yielded nothing: empty documents or comments only.
        format!("{} holding no object", plural(manifests, "manifest file"))
    } else if counted.is_empty() {
        "no manifest files".to_owned()
    } else {
        format!("{} and no manifests", counted.join(", "))
    };
    if !others.is_empty() {
        let shown: Vec<&str> = others.iter().take(LISTED).copied().collect();
        let more = others.len().saturating_sub(LISTED);
        text.push_str(&format!(" (found: {}", shown.join(", ")));
        if more > 0 {
            text.push_str(&format!(" and {more} more"));
        }
        text.push(')');
    }
    text
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::{SourceType, describe_found, detect};

    #[test]
    fn a_kustomization_a_chart_jsonnet_or_a_directory() {
        assert_eq!(detect(["kustomization.yaml", "a.yaml"]), SourceType::Kustomize);
        assert_eq!(detect(["kustomization.yml"]), SourceType::Kustomize);
        assert_eq!(detect(["Kustomization"]), SourceType::Kustomize);
        assert_eq!(detect(["Chart.yaml", "values.yaml"]), SourceType::Helm);
        assert_eq!(
            detect(["guestbook-ui.jsonnet", "params.libsonnet"]),
            SourceType::Jsonnet
        );
        assert_eq!(detect(["a.yaml", "b.json"]), SourceType::Directory);
        assert_eq!(detect([]), SourceType::Directory);
    }

    #[test]
    fn kustomize_wins_over_helm_as_in_argo_cd() {
        assert_eq!(
            detect(["Chart.yaml", "kustomization.yaml"]),
            SourceType::Kustomize
        );
        assert_eq!(
            detect(["kustomization.yaml", "Chart.yaml"]),
            SourceType::Kustomize
        );
        assert_eq!(detect(["Chart.yaml", "main.jsonnet"]), SourceType::Helm);
    }

    #[test]
    fn names_are_matched_exactly() {
        // Argo CD's suffix match would take `MyChart.yaml` for a chart; a chart's file is
        // `Chart.yaml` and nothing else.
        assert_eq!(detect(["MyChart.yaml", "chart.yaml"]), SourceType::Directory);
        assert_eq!(
            detect(["Kustomization.yaml", "kustomization.json"]),
            SourceType::Directory
        );
        assert_eq!(detect(["libsonnet"]), SourceType::Directory);
        assert_eq!(detect(["params.libsonnet"]), SourceType::Directory);
    }

    #[test]
    fn what_a_path_that_rendered_nothing_held() {
        assert_eq!(
            describe_found(["a.jsonnet", "b.jsonnet", "c.jsonnet"]),
            "3 .jsonnet files and no manifests"
        );
        assert_eq!(
            describe_found(["main.jsonnet", "lib/params.libsonnet", "README.md"]),
            "1 .jsonnet file, 1 .libsonnet file and no manifests (found: README.md)"
        );
        assert_eq!(
            describe_found(["README.md", "Makefile"]),
            "no manifest files (found: README.md, Makefile)"
        );
        assert_eq!(
            describe_found(["empty.yaml"]),
            "1 manifest file holding no object"
        );
        assert_eq!(describe_found([]), "no files");
        let many: Vec<String> = (0..10).map(|n| format!("f{n}.txt")).collect();
        assert_eq!(
            describe_found(many.iter().map(String::as_str)),
            "no manifest files (found: f0.txt, f1.txt, f2.txt, f3.txt, f4.txt, f5.txt, f6.txt, f7.txt and 2 more)"
        );
    }
}

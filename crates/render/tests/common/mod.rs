//! What the render tests share: rendering a test repository as the engine does, through a mirror
//! of its committed tree.

use driftless_core::application::{Renderer, Source};
use driftless_git::Mirrors;
use driftless_render::{Keys, RenderError, RenderLimits, RenderTarget, Rendered, render};
use driftless_testenv::git::TestRepo;

/// Commits what was written to `repo`, then renders `path` of it with only the part of the tree
/// the renderer may read.
pub async fn render_committed(
    repo: &TestRepo,
    path: &str,
    renderer: Renderer,
    target: RenderTarget<'_>,
    limits: &RenderLimits,
    keys: &Keys,
) -> Result<Rendered, RenderError> {
    repo.commit("render test");
    let dir = tempfile::tempdir().expect("tempdir");
    let mirrors = Mirrors::new(dir.path().to_owned(), Vec::new());
    let url = repo.file_url();
    let commit = mirrors.fetch_and_resolve(&url, "main").await.expect("fetch");
    let source = Source {
        repo_url: url.clone(),
        revision: "main".into(),
        path: path.into(),
        renderer,
    };
    let scope = if driftless_render::needs_whole_repository(&source) {
        ""
    } else {
        path
    };
    let tree = mirrors.read_tree(&url, &commit, scope).await.expect("read tree");
    render(&tree, &source, target, limits, keys).await
}

/// Each rendered object as `Kind/name`, in the order rendered.
#[allow(dead_code, reason = "not every test binary looks at the objects' names")]
pub fn kind_names(rendered: &Rendered) -> Vec<String> {
    rendered
        .manifests
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m.manifest["kind"].as_str().unwrap_or("?"),
                m.manifest["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

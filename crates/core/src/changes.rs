//! What a change in Git touches: whether a commit that changed some paths can alter what an
//! application renders. A commit that touches nothing an application read costs it no render
//! (incremental monorepos), and a plan leaves it out.

use std::collections::BTreeSet;

use crate::application::{Application, Renderer};

/// Whether a change to `changed` may alter what `app` renders, given the repository paths its
/// last render read (`inputs`; `None`: possibly anything): any path it read, or any path under
/// its own directory (a new file there is read next time) — except for a chart from a chart
/// repository, which reads nothing from Git but its values files.
#[must_use]
pub fn touches(app: &Application, inputs: Option<&BTreeSet<String>>, changed: &[String]) -> bool {
    let Some(inputs) = inputs else {
        return true;
    };
    if matches!(&app.source.renderer, Renderer::Helm(options) if options.chart.is_some()) {
        return changed.iter().any(|path| inputs.contains(path));
    }
    let own = app.source.path.trim_matches('/');
    changed.iter().any(|path| {
        inputs.contains(path)
            || own.is_empty()
            || path
                .strip_prefix(own)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::{HelmOptions, RepositoryChart};

    fn app(path: &str, renderer: Renderer) -> Application {
        let mut app = crate::applied::tests_support::application();
        app.source.path = path.to_owned();
        app.source.renderer = renderer;
        app
    }

    fn paths(paths: &[&str]) -> Vec<String> {
        paths.iter().map(|path| (*path).to_owned()).collect()
    }

    #[test]
    fn a_change_touches_what_the_render_read_and_anything_under_the_application() {
        let web = app("apps/web", Renderer::Detect);
        let read: BTreeSet<String> =
            ["apps/web/deploy.yaml".to_owned(), "base/common.yaml".to_owned()].into();
        assert!(touches(&web, Some(&read), &paths(&["base/common.yaml"])));
        assert!(touches(&web, Some(&read), &paths(&["apps/web/new.yaml"])));
        assert!(!touches(
            &web,
            Some(&read),
            &paths(&["apps/website/x.yaml", "apps/api/y.yaml"])
        ));
        assert!(touches(&web, None, &paths(&["anything"])));
        // An application at the root sees every change.
        assert!(touches(
            &app("", Renderer::Detect),
            Some(&BTreeSet::new()),
            &paths(&["x"])
        ));
    }

    #[test]
    fn a_chart_from_a_chart_repository_is_touched_only_by_its_values_files() {
        let chart = Renderer::Helm(HelmOptions {
            chart: Some(RepositoryChart {
                repository: "https://charts.example".into(),
                name: "web".into(),
                version: "1.0.0".into(),
                plain_http: false,
            }),
            ..HelmOptions::default()
        });
        let release = app("apps/web", chart);
        let read: BTreeSet<String> = ["apps/web/values.yaml".to_owned()].into();
        assert!(touches(&release, Some(&read), &paths(&["apps/web/values.yaml"])));
        assert!(!touches(&release, Some(&read), &paths(&["apps/web/other.yaml"])));
    }
}

//! Jsonnet programs in a directory source, evaluated in-process by jrsonnet as Argo CD evaluates
//! them (each `.jsonnet` file on its own; `.libsonnet` files only through imports).
//!
//! Every file a program reads comes from the repository's [`FileTree`], never the host: an
//! import is looked up next to the importing file, then in each of `libs` (the last first, as
//! `jsonnet -J` does), then at the application's path; an absolute path or one that climbs out of
//! the repository is refused, and symlinks are followed only inside it.
//!
//! Bounds. jrsonnet cannot be interrupted, so a program runs on a thread of its own while the
//! calling thread serves its file reads and waits until the render's deadline; past it the render
//! fails and the thread is left to finish alone (at most [`MAX_ABANDONED`] at once: beyond that
//! new evaluations are refused until one ends). Recursion is bounded by jrsonnet's stack depth
//! ([`MAX_STACK_DEPTH`] frames), and the output by the render's output limit, counted while the
//! value is turned into JSON, so a lazily huge array (`std.range(0, 1e9)`) fails as soon as it
//! outgrows it.

use std::any::Any;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use driftless_core::application::{JsonnetOptions, JsonnetVariable};
use driftless_files::{FileTree, TreeError, join_inside};
use jrsonnet_evaluator::function::TlaArg;
use jrsonnet_evaluator::gc::GcHashMap;
use jrsonnet_evaluator::trace::{CompactFormat, PathResolver, TraceFormat as _};
use jrsonnet_evaluator::{IStr, ImportResolver, State, Val};
use jrsonnet_gcmodule::Trace;
use jrsonnet_parser::{ParserSettings, Source, SourceFile, SourcePath};
use serde_json::Value;

/// Frames of Jsonnet calls before evaluation fails as a stack overflow (go-jsonnet's and the
/// C++ implementation's default `--max-stack`).
pub(crate) const MAX_STACK_DEPTH: usize = 500;

/// Evaluations that outlived their deadline and still run; beyond this many, new ones are refused
/// rather than letting a repository pile up threads that each take a core.
pub(crate) const MAX_ABANDONED: usize = 2;

/// The native stack of an evaluation thread. jrsonnet grows its own stack on demand (stacker);
/// this only has to hold the frames between those checks.
const THREAD_STACK_BYTES: usize = 16 * 1024 * 1024;

static ABANDONED: AtomicUsize = AtomicUsize::new(0);

/// Returned by [`evaluate`]; every variant names the program.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonnetError {
    #[error("{file}: {message}")]
    Evaluation { file: String, message: String },
    #[error("{file}: did not finish within {after:?} (the render's time limit)")]
    TimedOut { file: String, after: Duration },
    #[error("{file}: the output is larger than the limit of {limit} bytes")]
    OutputTooLarge { file: String, limit: usize },
    #[error(
        "{file}: not evaluated: {running} earlier Jsonnet evaluations that exceeded their time limit are still running"
    )]
    Busy { file: String, running: usize },
    #[error("{file}: {field}: {message}")]
    Variable {
        file: String,
        field: String,
        message: String,
    },
}

/// What evaluating one application's programs needs besides the tree.
#[derive(Debug, Clone)]
pub(crate) struct Evaluation<'a> {
    pub options: &'a JsonnetOptions,
    /// The application's path in the repository.
    pub app_path: &'a str,
    /// Values of the `$ARGOCD_APP_*` variables Argo CD substitutes in extVars and tlas.
    pub environment: &'a [(&'a str, &'a str)],
    pub timeout: Duration,
    pub max_output_bytes: usize,
}

/// What a program may name in its variables' values and how: Argo CD's build environment.
fn substitute(value: &str, environment: &[(&str, &str)]) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let braced = rest.starts_with('{');
        let (name, after) = if let Some(braced) = rest.strip_prefix('{') {
            let end = braced
                .find('}')
                .ok_or_else(|| format!("{value:?}: unclosed ${{"))?;
            (&braced[..end], &braced[end + 1..])
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        if name.is_empty() && !braced {
            // A `$` before no name (`a $ b`, a trailing `$`) is not a reference.
            out.push('$');
            continue;
        }
        let Some((_, replacement)) = environment.iter().find(|(known, _)| *known == name) else {
            let known: Vec<&str> = environment.iter().map(|(known, _)| *known).collect();
            return Err(format!(
                "${name} is not a variable driftless knows (known: {}; write $$ for a literal $)",
                known.join(", ")
            ));
        };
        out.push_str(replacement);
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

/// One variable after substitution: its name, its value, and whether the value is code.
fn argument(
    variable: &JsonnetVariable,
    environment: &[(&str, &str)],
    file: &str,
    field: &str,
) -> Result<(String, String, bool), JsonnetError> {
    let value = substitute(&variable.value, environment).map_err(|message| JsonnetError::Variable {
        file: file.to_owned(),
        field: format!("spec.source.directory.jsonnet.{field}[{}]", variable.name),
        message,
    })?;
    Ok((variable.name.clone(), value, variable.code))
}

/// A request from the evaluation thread, answered by the thread that holds the tree.
enum Request {
    /// Where a repository path finally points, if it is a file.
    Resolve(String, mpsc::Sender<Result<Option<String>, String>>),
    Read(String, mpsc::Sender<Result<Vec<u8>, String>>),
    Done(Vec<Result<Value, JsonnetError>>),
}

/// Evaluates each of `files` (repository paths of `.jsonnet` programs) to a JSON value, in
/// order.
pub(crate) fn evaluate(
    tree: &FileTree,
    files: &[String],
    evaluation: &Evaluation<'_>,
) -> Result<Vec<Value>, JsonnetError> {
    let Some(first) = files.first() else {
        return Ok(Vec::new());
    };
    let running = ABANDONED.load(Ordering::SeqCst);
    if running >= MAX_ABANDONED {
        return Err(JsonnetError::Busy {
            file: first.clone(),
            running,
        });
    }
    let mut jobs = Vec::with_capacity(files.len());
    for file in files {
        let mut ext_vars = Vec::new();
        for variable in &evaluation.options.ext_vars {
            ext_vars.push(argument(variable, evaluation.environment, file, "extVars")?);
        }
        let mut tlas = Vec::new();
        for variable in &evaluation.options.tlas {
            tlas.push(argument(variable, evaluation.environment, file, "tlas")?);
        }
        jobs.push(Job {
            file: file.clone(),
            ext_vars,
            tlas,
        });
    }
    let mut search = evaluation.options.libs.clone();
    search.reverse();
    search.push(evaluation.app_path.to_owned());
    let (requests, incoming) = mpsc::channel();
    let max_output_bytes = evaluation.max_output_bytes;
    let worker = std::thread::Builder::new()
        .name("jsonnet".to_owned())
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || {
            let outcomes = jobs
                .into_iter()
                .map(|job| run(&job, &search, &requests, max_output_bytes))
                .collect();
            let _ = requests.send(Request::Done(outcomes));
        })
        .map_err(|err| JsonnetError::Evaluation {
            file: first.clone(),
            message: format!("failed to start an evaluation thread: {err}"),
        })?;
    let deadline = Instant::now() + evaluation.timeout;
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        match incoming.recv_timeout(wait) {
            Ok(Request::Resolve(path, reply)) => {
                let _ = reply.send(resolve(tree, &path));
            }
            Ok(Request::Read(path, reply)) => {
                let _ = reply.send(
                    tree.read(&path)
                        .map(<[u8]>::to_vec)
                        .map_err(|err| err.to_string()),
                );
            }
            Ok(Request::Done(outcomes)) => {
                let _ = worker.join();
                return outcomes.into_iter().collect();
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                abandon(worker);
                return Err(JsonnetError::TimedOut {
                    file: files.join(", "),
                    after: evaluation.timeout,
                });
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // The thread ended without an answer: it panicked (a jrsonnet bug).
                let _ = worker.join();
                return Err(JsonnetError::Evaluation {
                    file: files.join(", "),
                    message: "the Jsonnet evaluator failed unexpectedly".to_owned(),
                });
            }
        }
    }
}

/// Counts a thread past its deadline until it ends by itself.
fn abandon(worker: std::thread::JoinHandle<()>) {
    ABANDONED.fetch_add(1, Ordering::SeqCst);
    std::thread::spawn(move || {
        let _ = worker.join();
        ABANDONED.fetch_sub(1, Ordering::SeqCst);
    });
}

/// `Some(path)` of the file `path` names, following symlinks inside the repository; `None` if
/// there is none (the next search directory is tried); an error for a link that leaves it.
fn resolve(tree: &FileTree, path: &str) -> Result<Option<String>, String> {
    match tree.resolve(path) {
        Ok(resolved) if tree.read(&resolved).is_ok() => Ok(Some(resolved)),
        Ok(_) | Err(TreeError::NotFound { .. }) => Ok(None),
        Err(err) => Err(err.to_string()),
    }
}

struct Job {
    file: String,
    ext_vars: Vec<(String, String, bool)>,
    tlas: Vec<(String, String, bool)>,
}

/// Resolves a program's imports through the thread that holds the tree.
struct TreeImports {
    /// Library directories then the application's path, in search order.
    search: Vec<String>,
    requests: mpsc::Sender<Request>,
}

impl Trace for TreeImports {
    fn is_type_tracked() -> bool {
        false
    }
}

impl TreeImports {
    fn ask<T>(&self, request: impl FnOnce(mpsc::Sender<T>) -> Request) -> Result<T, String> {
        let (reply, answer) = mpsc::channel();
        self.requests
            .send(request(reply))
            .map_err(|_| "the render was abandoned".to_owned())?;
        answer.recv().map_err(|_| "the render was abandoned".to_owned())
    }
}

/// An import refused or not found, as jrsonnet reports it with the importing frame.
fn refuse(import: &str, reason: impl std::fmt::Display) -> jrsonnet_evaluator::Error {
    jrsonnet_evaluator::error::ErrorKind::RuntimeError(format!("import {import:?}: {reason}").into()).into()
}

fn repository_path(source: &SourcePath) -> Option<String> {
    source
        .downcast_ref::<SourceFile>()
        .map(|file| file.path().to_string_lossy().into_owned())
}

impl ImportResolver for TreeImports {
    fn resolve_from(&self, from: &SourcePath, path: &str) -> jrsonnet_evaluator::Result<SourcePath> {
        if path.starts_with('/') {
            return Err(refuse(
                path,
                "an absolute path; imports are read from the repository only",
            ));
        }
        let own_dir = repository_path(from).map(|file| {
            file.rsplit_once('/')
                .map_or(String::new(), |(dir, _)| dir.to_owned())
        });
        let mut looked = Vec::new();
        for dir in own_dir.iter().chain(self.search.iter()) {
            // A library directory is a path from Git too: `..` in it climbs like any other.
            let Some(candidate) = join_inside("", dir).and_then(|dir| join_inside(&dir, path)) else {
                return Err(refuse(path, format!("from {dir:?} it leaves the repository")));
            };
            match self.ask(|reply| Request::Resolve(candidate.clone(), reply)) {
                Ok(Ok(Some(resolved))) => return Ok(SourcePath::new(SourceFile::new(resolved.into()))),
                Ok(Ok(None)) => looked.push(candidate),
                Ok(Err(reason)) | Err(reason) => return Err(refuse(path, reason)),
            }
        }
        Err(refuse(
            path,
            format!("not found in the repository (looked for {})", looked.join(", ")),
        ))
    }

    /// The program itself, the only path evaluation starts from.
    fn resolve(&self, path: &Path) -> jrsonnet_evaluator::Result<SourcePath> {
        Ok(SourcePath::new(SourceFile::new(path.to_owned())))
    }

    fn load_file_contents(&self, resolved: &SourcePath) -> jrsonnet_evaluator::Result<Vec<u8>> {
        let Some(path) = repository_path(resolved) else {
            return Err(refuse(&resolved.to_string(), "not a repository file"));
        };
        match self.ask(|reply| Request::Read(path.clone(), reply)) {
            Ok(Ok(contents)) => Ok(contents),
            Ok(Err(reason)) | Err(reason) => Err(refuse(&path, reason)),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// A variable's value as jrsonnet takes it: a string, or code parsed as a file of its own.
fn tla_argument(name: &str, value: &str, code: bool, which: &str) -> Result<TlaArg, String> {
    if !code {
        return Ok(TlaArg::String(value.into()));
    }
    let source = Source::new_virtual(format!("<{which}:{name}>").into(), value.into());
    jrsonnet_parser::parse(value, &ParserSettings { source })
        .map(TlaArg::Code)
        .map_err(|err| format!("{which} {name}: not valid Jsonnet: {err}"))
}

/// Evaluates one program on the evaluation thread.
fn run(
    job: &Job,
    search: &[String],
    requests: &mpsc::Sender<Request>,
    max_output_bytes: usize,
) -> Result<Value, JsonnetError> {
    let failed = |message: String| JsonnetError::Evaluation {
        file: job.file.clone(),
        message,
    };
    let _depth = jrsonnet_evaluator::stack::limit_stack_depth(MAX_STACK_DEPTH);
    let stdlib = jrsonnet_stdlib::ContextInitializer::new(PathResolver::Absolute);
    for (name, value, code) in &job.ext_vars {
        let argument = tla_argument(name, value, *code, "extVar").map_err(failed)?;
        stdlib
            .settings_mut()
            .ext_vars
            .insert(name.as_str().into(), argument);
    }
    // `std.trace` writes to the engine's stderr otherwise: the repository does not get to.
    stdlib.settings_mut().trace_printer = Box::new(SilentTrace);
    let mut builder = State::builder();
    builder
        .import_resolver(TreeImports {
            search: search.to_vec(),
            requests: requests.clone(),
        })
        .context_initializer(stdlib);
    let state = builder.build();
    let value = state.import(&job.file).map_err(|err| failed(describe(&err)))?;
    let mut tlas: GcHashMap<IStr, TlaArg> = GcHashMap::new();
    for (name, value, code) in &job.tlas {
        tlas.insert(
            name.as_str().into(),
            tla_argument(name, value, *code, "tla").map_err(failed)?,
        );
    }
    let value = jrsonnet_evaluator::apply_tla(state, &tlas, value).map_err(|err| failed(describe(&err)))?;
    let mut budget = Budget {
        left: max_output_bytes,
    };
    to_json(&value, &mut budget).map_err(|err| match err {
        Conversion::TooLarge => JsonnetError::OutputTooLarge {
            file: job.file.clone(),
            limit: max_output_bytes,
        },
        Conversion::Failed(message) => failed(message),
    })
}

struct SilentTrace;

impl jrsonnet_stdlib::TracePrinter for SilentTrace {
    fn print_trace(&self, _location: jrsonnet_evaluator::function::CallLocation<'_>, _value: IStr) {}
}

/// An evaluation error as the reference implementation prints it: the message, then the frames.
fn describe(err: &jrsonnet_evaluator::Error) -> String {
    let format = CompactFormat {
        resolver: PathResolver::Absolute,
        max_trace: 10,
        padding: 4,
    };
    format
        .format(err)
        .unwrap_or_else(|_| err.to_string())
        .trim_end()
        .to_owned()
}

struct Budget {
    left: usize,
}

impl Budget {
    fn spend(&mut self, bytes: usize) -> Result<(), Conversion> {
        self.left = self.left.checked_sub(bytes).ok_or(Conversion::TooLarge)?;
        Ok(())
    }
}

enum Conversion {
    TooLarge,
    Failed(String),
}

/// Integers as JSON integers (jsonnet prints `3`, not `3.0`; Kubernetes wants integers).
fn number(value: f64) -> Value {
    /// 2^53: beyond it an f64 no longer holds every integer.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    #[expect(
        clippy::cast_possible_truncation,
        reason = "integral and within ±2^53, so exact"
    )]
    // -0 stays a float, printed `-0` as the reference implementation prints it.
    if value.fract() == 0.0 && value.abs() <= EXACT && !(value == 0.0 && value.is_sign_negative()) {
        return Value::from(value as i64);
    }
    serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
}

/// The JSON of `value`, counting its bytes (roughly as printed) against the budget.
fn to_json(value: &Val, budget: &mut Budget) -> Result<Value, Conversion> {
    let failed = |err: &jrsonnet_evaluator::Error| Conversion::Failed(describe(err));
    Ok(match value {
        Val::Null => {
            budget.spend(4)?;
            Value::Null
        }
        Val::Bool(flag) => {
            budget.spend(5)?;
            Value::Bool(*flag)
        }
        Val::Num(number_value) => {
            budget.spend(8)?;
            number(number_value.get())
        }
        Val::Str(text) => {
            let text = text.clone().into_flat();
            budget.spend(text.len() + 2)?;
            Value::String(text.as_str().to_owned())
        }
        Val::Arr(array) => {
            budget.spend(2)?;
            let mut items = Vec::new();
            for item in array.iter() {
                budget.spend(1)?;
                items.push(to_json(&item.map_err(|err| failed(&err))?, budget)?);
            }
            Value::Array(items)
        }
        Val::Obj(object) => {
            object.run_assertions().map_err(|err| failed(&err))?;
            budget.spend(2)?;
            let mut map = serde_json::Map::new();
            for (key, field) in object.iter() {
                budget.spend(key.len() + 4)?;
                let field = to_json(&field.map_err(|err| failed(&err))?, budget)?;
                map.insert(key.as_str().to_owned(), field);
            }
            Value::Object(map)
        }
        Val::Func(_) => {
            return Err(Conversion::Failed(
                "the program evaluates to a function that cannot be manifested (a function at the top takes tlas; a function inside an object must be hidden with ::)".to_owned(),
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::substitute;

    #[test]
    fn argo_cd_variables_are_substituted_and_unknown_ones_refused() {
        let environment = [("ARGOCD_APP_NAME", "guestbook"), ("ARGOCD_APP_NAMESPACE", "web")];
        assert_eq!(
            substitute("$ARGOCD_APP_NAME in ${ARGOCD_APP_NAMESPACE}", &environment).as_deref(),
            Ok("guestbook in web")
        );
        assert_eq!(substitute("costs $$5", &environment).as_deref(), Ok("costs $5"));
        assert_eq!(substitute("plain", &environment).as_deref(), Ok("plain"));
        assert_eq!(substitute("a $ b $", &environment).as_deref(), Ok("a $ b $"));
        let err = substitute("pa$word", &environment).expect_err("an unknown variable");
        assert!(err.contains("$word is not a variable"), "{err}");
        assert!(substitute("${ARGOCD_APP_NAME", &environment).is_err());
    }
}

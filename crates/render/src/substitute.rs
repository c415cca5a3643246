//! Flux's post-build variable substitution (`spec.source.postBuild`), as kustomize-controller
//! runs it: after the render, on each object's YAML text, with bash-style `${var}` expressions
//! (fluxcd/pkg `envsubst`, a fork of drone/envsubst, and `kustomize.SubstituteVariables`).
//!
//! What matches Flux, so its repositories render the same:
//! - the expression grammar and functions: `${var}`, `${var:=default}`, `${var:-default}`,
//!   `${var=default}`, `${#var}`, `${var^}`, `${var^^}`, `${var,}`, `${var,,}`, `${var:n}`,
//!   `${var:n:len}`, `${var#glob}`, `${var##glob}`, `${var%glob}`, `${var%%glob}`,
//!   `${var/a/b}`, `${var//a/b}`, `${var/#a/b}`, `${var/%a/b}`; defaults may nest expressions;
//!   `$$` is a literal `$` (so `$${var}` stays `${var}`); a bare `$var` is left alone;
//! - strict mode, Flux's default since v1.9 (`StrictPostBuildSubstitutions`): a variable used
//!   without a default that nothing defines is an error, never an empty string;
//! - variable names `^[_[:alpha:]][_[:alpha:][:digit:]]*$`, newlines removed from every value;
//! - later `substituteFrom` entries override earlier ones, inline `substitute` overrides all;
//! - an object labelled or annotated `kustomize.toolkit.fluxcd.io/substitute: disabled` is left
//!   alone; with no variable at all nothing is substituted unless `substituteStrategy: Always`;
//! - the substitution is textual, so a value's YAML type follows from where it lands
//!   (`replicas: ${n}` is a number). For a Kustomize source the text is kustomize's output, as
//!   in Flux, where quotes YAML does not need are gone (`"${n}"` is written `${n}`, so it too
//!   becomes a number); a directory's files are substituted as written, so there a quoted
//!   `"${n}"` stays a string (Flux would run them through kustomize first and lose the quotes).
//!
//! Where driftless is stricter than Flux: a value can change a scalar, never the shape of the
//! object — a value that would turn a scalar into a mapping or a list, or add keys or items
//! (`{admin: true}`, `[a, b]`), is refused naming the field (Flux takes it); expressions nest
//! at most [`MAX_NESTING`] deep and the substituted text is bounded like a manifest file.
//! Values never appear in an error.

use std::collections::BTreeMap;

use driftless_core::SourceLocation;
pub use driftless_core::application::is_variable_name;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::manifests::parse_documents;
use crate::{RenderError, RenderLimits, RenderedManifest};

/// The per-object opt-out, as a label or an annotation.
pub const OPT_OUT: &str = "kustomize.toolkit.fluxcd.io/substitute";
/// How deeply `${a:=${b:=…}}` may nest.
pub const MAX_NESTING: usize = 64;

/// The variables of one substitution, merged in Flux's order. Values are wiped from memory when
/// dropped and never printed (`Debug` shows the names).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Variables {
    values: BTreeMap<String, Zeroizing<String>>,
}

impl std::fmt::Debug for Variables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

impl Variables {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or overrides) the variables `origin` holds (`ConfigMap cluster-vars`, `substitute`),
    /// each value without its newlines, as Flux does. A name breaking the grammar fails the
    /// whole substitution, as in Flux.
    pub fn extend<I, V>(&mut self, origin: &str, entries: I) -> Result<(), SubstituteError>
    where
        I: IntoIterator<Item = (String, V)>,
        V: AsRef<str>,
    {
        for (name, value) in entries {
            if !is_variable_name(&name) {
                return Err(SubstituteError::InvalidName {
                    name,
                    origin: origin.to_owned(),
                });
            }
            let value = Zeroizing::new(value.as_ref().replace('\n', ""));
            self.values.insert(name, value);
        }
        Ok(())
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|value| value.as_str())
    }
}

/// A post-build substitution to run on a render's manifests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Substitution {
    pub variables: Variables,
    /// `substituteStrategy: Always`: substitute even when no variable is defined (for
    /// expressions that all have defaults).
    pub always: bool,
}

/// Why an expression could not be evaluated (fluxcd/pkg envsubst's errors, and strict mode's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpressionError {
    #[error("bad substitution")]
    BadSubstitution,
    #[error("missing closing brace")]
    MissingClosingBrace,
    #[error("unable to parse variable name")]
    VariableName,
    #[error("unable to parse substitution within function")]
    FunctionArgument,
    #[error("unable to parse default function")]
    DefaultFunction,
    #[error("variable not set (strict mode): {0:?}")]
    NotSet(String),
    #[error("expressions nest more than {MAX_NESTING} deep")]
    TooDeep,
    #[error("the substituted text is larger than {0} bytes")]
    TooLarge(usize),
}

/// Returned by the substitution. Names the file, object and field; never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubstituteError {
    #[error(
        "postBuild: variable name {name:?} (from {origin}) is invalid, must match '^[_[:alpha:]][_[:alpha:][:digit:]]*$'"
    )]
    InvalidName { name: String, origin: String },
    /// A `substituteFrom` object could not be read, or holds something that is not a variable.
    #[error("postBuild.substituteFrom: {kind} {namespace}/{name}: {reason}")]
    Source {
        kind: String,
        namespace: String,
        name: String,
        reason: String,
    },
    #[error("{location}: {object}: post-build variable substitution failed: {reason}")]
    Expression {
        location: SourceLocation,
        object: String,
        reason: ExpressionError,
    },
    /// The substituted YAML no longer parses (the parser's message is left out: it may quote a
    /// value).
    #[error("{location}: {object}: after post-build variable substitution the YAML does not parse{}", line.map(|l| format!(" (line {l} of the object)")).unwrap_or_default())]
    Unparsable {
        location: SourceLocation,
        object: String,
        line: Option<u64>,
    },
    #[error(
        "{location}: {object}: field {field}: a substituted value changed the object's shape ({change}); driftless substitutes values into scalars only"
    )]
    Shape {
        location: SourceLocation,
        object: String,
        field: String,
        change: &'static str,
    },
}

/// Parses `text` (one file, or a renderer's output) into manifests, substituting each YAML
/// document's text first unless it opts out.
pub(crate) fn parse_substituted(
    text: &str,
    file: &str,
    limits: &RenderLimits,
    substitution: &Substitution,
) -> Result<Vec<RenderedManifest>, RenderError> {
    let mut manifests = Vec::new();
    for (index, (first_line, document)) in split_documents(text).into_iter().enumerate() {
        let relocate = |mut manifest: RenderedManifest| {
            manifest.source.document = index;
            manifest.source.line = manifest.source.line.map(|line| line + first_line - 1);
            manifest
        };
        let original = parse_documents(document, file, limits)?;
        let location = SourceLocation {
            file: file.to_owned(),
            document: index,
            line: original
                .first()
                .and_then(|m| m.source.line)
                .map(|line| line + first_line - 1),
        };
        let skip = (substitution.variables.is_empty() && !substitution.always)
            || original.iter().any(|m| opted_out(&m.manifest))
            || !document.contains('$');
        if skip {
            manifests.extend(original.into_iter().map(relocate));
            continue;
        }
        let object = original
            .first()
            .map_or_else(|| "document".to_owned(), |m| describe(&m.manifest));
        let substituted =
            eval(document, &substitution.variables, true, limits.max_file_bytes).map_err(|reason| {
                SubstituteError::Expression {
                    location: location.clone(),
                    object: object.clone(),
                    reason,
                }
            })?;
        let replaced = parse_documents(&substituted, file, limits).map_err(|err| match err {
            RenderError::Unparsable { line, .. } => RenderError::Substitute(SubstituteError::Unparsable {
                location: location.clone(),
                object: object.clone(),
                line,
            }),
            other => other,
        })?;
        if replaced.len() != original.len() {
            return Err(SubstituteError::Shape {
                location,
                object,
                field: "(document)".to_owned(),
                change: "objects added or removed",
            }
            .into());
        }
        for (before, after) in original.iter().zip(&replaced) {
            if let Err((field, change)) = same_shape(&before.manifest, &after.manifest, "") {
                return Err(SubstituteError::Shape {
                    location,
                    object: describe(&before.manifest),
                    field: if field.is_empty() {
                        "(root)".to_owned()
                    } else {
                        field
                    },
                    change,
                }
                .into());
            }
        }
        manifests.extend(replaced.into_iter().map(relocate));
    }
    Ok(manifests)
}

/// `Kind/name` (with its namespace when it has one) for errors.
fn describe(manifest: &Value) -> String {
    let kind = manifest["kind"].as_str().unwrap_or("?");
    let name = manifest["metadata"]["name"].as_str().unwrap_or("?");
    match manifest["metadata"]["namespace"].as_str() {
        Some(namespace) => format!("{kind} {namespace}/{name}"),
        None => format!("{kind} {name}"),
    }
}

fn opted_out(manifest: &Value) -> bool {
    ["labels", "annotations"]
        .iter()
        .any(|field| manifest["metadata"][field][OPT_OUT] == "disabled")
}

/// Splits a YAML stream at its `---` lines (column 0, then nothing or whitespace), each part
/// with the 1-based line it starts on. The marker stays with the document it opens.
fn split_documents(text: &str) -> Vec<(usize, &str)> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (number, line) in text.split_inclusive('\n').enumerate() {
        let content = line.trim_end_matches(['\n', '\r']);
        let marker = content
            .strip_prefix("---")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']));
        if marker && offset > start {
            parts.push((start_line, &text[start..offset]));
            start = offset;
            start_line = number + 1;
        }
        offset += line.len();
    }
    if offset > start || parts.is_empty() {
        parts.push((start_line, &text[start..]));
    }
    parts
}

/// Whether `after` has the shape of `before`: the same mappings (same number of keys; keys may
/// be renamed by substitution), lists of the same length, scalars where there were scalars.
fn same_shape(before: &Value, after: &Value, path: &str) -> Result<(), (String, &'static str)> {
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            if a.len() != b.len() {
                return Err((path.to_owned(), "keys added or removed"));
            }
            let renamed_before: Vec<_> = a.iter().filter(|(k, _)| !b.contains_key(*k)).collect();
            let renamed_after: Vec<_> = b.iter().filter(|(k, _)| !a.contains_key(*k)).collect();
            for (key, value) in a {
                if let Some(other) = b.get(key) {
                    same_shape(value, other, &format!("{path}.{key}"))?;
                }
            }
            for ((key, value), (_, other)) in renamed_before.into_iter().zip(renamed_after) {
                same_shape(value, other, &format!("{path}.{key}"))?;
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return Err((path.to_owned(), "list items added or removed"));
            }
            for (index, (x, y)) in a.iter().zip(b).enumerate() {
                same_shape(x, y, &format!("{path}[{index}]"))?;
            }
            Ok(())
        }
        (Value::Object(_) | Value::Array(_), _) => {
            Err((path.to_owned(), "a mapping or list became a scalar"))
        }
        (_, Value::Object(_)) => Err((path.to_owned(), "a scalar became a mapping")),
        (_, Value::Array(_)) => Err((path.to_owned(), "a scalar became a list")),
        _ => Ok(()),
    }
}

// === the expression language (fluxcd/pkg envsubst/parse, envsubst/template.go) ===

/// Evaluates every `${…}` in `text`. With `strict`, a variable without a value is an error
/// unless its operator supplies a default. The result may be at most `limit` bytes.
pub fn eval(
    text: &str,
    variables: &Variables,
    strict: bool,
    limit: usize,
) -> Result<String, ExpressionError> {
    let nodes = Parser::new(text).parse_all()?;
    let mut out = String::with_capacity(text.len());
    for node in &nodes {
        evaluate(node, variables, strict, limit, &mut out)?;
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Text(String),
    Func {
        param: String,
        name: String,
        args: Vec<Node>,
    },
}

fn evaluate(
    node: &Node,
    variables: &Variables,
    strict: bool,
    limit: usize,
    out: &mut String,
) -> Result<(), ExpressionError> {
    let written = match node {
        Node::Text(text) => text.clone(),
        Node::Func { param, name, args } => {
            let mut values = Vec::with_capacity(args.len());
            for arg in args {
                let mut value = String::new();
                evaluate(arg, variables, strict, limit, &mut value)?;
                values.push(value);
            }
            let value = match variables.get(param) {
                Some(value) => value,
                None if strict && !is_default_op(name) => return Err(ExpressionError::NotSet(param.clone())),
                None => "",
            };
            apply(name, value, &values)
        }
    };
    if out.len() + written.len() > limit {
        return Err(ExpressionError::TooLarge(limit));
    }
    out.push_str(&written);
    Ok(())
}

fn is_default_op(name: &str) -> bool {
    matches!(name, "-" | "+" | "=" | "?" | ":-" | ":+" | ":=" | ":?")
}

/// template.go's lookupFunc and funcs.go.
fn apply(name: &str, value: &str, args: &[String]) -> String {
    let first = args.first().map(String::as_str);
    match (name, first) {
        (",", _) => change_first(value, false),
        (",,", _) => value.to_lowercase(),
        ("^", _) => change_first(value, true),
        ("^^", _) => value.to_uppercase(),
        ("#", None) => value.len().to_string(),
        ("#", Some(pattern)) => trim_prefix(value, pattern, false),
        ("##", Some(pattern)) => trim_prefix(value, pattern, true),
        ("%", Some(pattern)) => trim_suffix(value, pattern, false),
        ("%%", Some(pattern)) => trim_suffix(value, pattern, true),
        (":", Some(_)) => substring(value, args),
        ("/#", _) => match args {
            [from, to] if value.starts_with(from.as_str()) => value.replacen(from.as_str(), to, 1),
            _ => value.to_owned(),
        },
        ("/%", _) => match args {
            [from, to] if value.ends_with(from.as_str()) => {
                format!("{}{to}", &value[..value.len() - from.len()])
            }
            _ => value.to_owned(),
        },
        ("/", _) => replace(value, args, 1),
        ("//", _) => replace(value, args, usize::MAX),
        ("##" | "%" | "%%" | ":", None) => value.to_owned(),
        _ if value.is_empty() && !args.is_empty() => args.concat(),
        _ => value.to_owned(),
    }
}

fn change_first(value: &str, upper: bool) -> String {
    let mut chars = value.chars();
    match chars.next() {
        None => String::new(),
        Some(first) if upper => first.to_uppercase().chain(chars).collect(),
        Some(first) => first.to_lowercase().chain(chars).collect(),
    }
}

fn replace(value: &str, args: &[String], count: usize) -> String {
    match args {
        [] => value.to_owned(),
        [from] => value.replacen(from.as_str(), "", count),
        [from, to, ..] => value.replacen(from.as_str(), to, count),
    }
}

/// `${var:pos}` and `${var:pos:len}` over bytes, as Go slices strings; bash's leniencies.
fn substring(value: &str, args: &[String]) -> String {
    let bytes = value.as_bytes();
    let len = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    let Ok(mut pos) = args[0].parse::<i64>() else {
        return value.to_owned();
    };
    if pos < 0 {
        pos = (len + pos).max(0);
    }
    let slice = |from: i64, to: i64| {
        let (from, to) = (
            usize::try_from(from).unwrap_or(0),
            usize::try_from(to).unwrap_or(0),
        );
        String::from_utf8_lossy(&bytes[from..to]).into_owned()
    };
    let Some(length) = args.get(1) else {
        return if pos < len { slice(pos, len) } else { String::new() };
    };
    let Ok(length) = length.parse::<i64>() else {
        return value.to_owned();
    };
    if pos.saturating_add(length) >= len {
        return if pos < len { slice(pos, len) } else { String::new() };
    }
    if length < 0 {
        // Go would panic on s[pos:pos+len] with a negative length; bash errors. Keep the value.
        return value.to_owned();
    }
    slice(pos, pos + length)
}

fn trim_prefix(value: &str, pattern: &str, longest: bool) -> String {
    let bytes = value.as_bytes();
    let mut matched: Option<usize> = None;
    for cut in 0..bytes.len() {
        let end = bytes.len() - cut;
        match glob_match(pattern.as_bytes(), &bytes[..end]) {
            Err(()) => return value.to_owned(),
            Ok(true) if longest => return String::from_utf8_lossy(&bytes[end..]).into_owned(),
            Ok(true) => matched = Some(end),
            Ok(false) => {}
        }
    }
    match matched {
        Some(end) if end > 0 => String::from_utf8_lossy(&bytes[end..]).into_owned(),
        _ => value.to_owned(),
    }
}

fn trim_suffix(value: &str, pattern: &str, longest: bool) -> String {
    let reverse = |s: &str| s.chars().rev().collect::<String>();
    reverse(&trim_prefix(&reverse(value), &reverse(pattern), longest))
}

/// fluxcd/pkg envsubst/path.Match: Go's path.Match, except that a trailing `*` matches the rest
/// of the name, `/` included.
fn glob_match(mut pattern: &[u8], mut name: &[u8]) -> Result<bool, ()> {
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            return Ok(true);
        }
        let (t, ok, err) = match_chunk(chunk, name);
        if ok && (t.is_empty() || !pattern.is_empty()) {
            name = t;
            continue;
        }
        if err {
            return Err(());
        }
        if star {
            for i in 0..name.len() {
                let (t, ok, err) = match_chunk(chunk, &name[i + 1..]);
                if ok {
                    if pattern.is_empty() && !t.is_empty() {
                        continue;
                    }
                    name = t;
                    continue 'pattern;
                }
                if err {
                    return Err(());
                }
            }
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while let [b'*', rest @ ..] = pattern {
        pattern = rest;
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

fn decode_rune(bytes: &[u8]) -> (char, usize) {
    let len = match bytes.first() {
        None => return ('\u{FFFD}', 0),
        Some(b) if *b < 0x80 => 1,
        Some(b) if *b >= 0xF0 => 4,
        Some(b) if *b >= 0xE0 => 3,
        Some(_) => 2,
    };
    match bytes.get(..len).and_then(|b| std::str::from_utf8(b).ok()) {
        Some(s) => (s.chars().next().unwrap_or('\u{FFFD}'), len),
        None => ('\u{FFFD}', 1),
    }
}

/// (rest, matched, bad pattern)
fn match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> (&'a [u8], bool, bool) {
    while !chunk.is_empty() {
        if s.is_empty() {
            return (s, false, false);
        }
        match chunk[0] {
            b'[' => {
                let (r, n) = decode_rune(s);
                s = &s[n..];
                chunk = &chunk[1..];
                let mut negated = false;
                if chunk.first() == Some(&b'^') {
                    negated = true;
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let Some((lo, rest)) = class_char(chunk) else {
                        return (s, false, true);
                    };
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&b'-') {
                        let Some((high, rest)) = class_char(&chunk[1..]) else {
                            return (s, false, true);
                        };
                        hi = high;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    ranges += 1;
                }
                if matched == negated {
                    return (s, false, false);
                }
            }
            b'?' => {
                let (_, n) = decode_rune(s);
                s = &s[n..];
                chunk = &chunk[1..];
            }
            b'\\' if chunk.len() == 1 => return (s, false, true),
            first => {
                let expected = if first == b'\\' { chunk[1] } else { first };
                if expected != s[0] {
                    return (s, false, false);
                }
                s = &s[1..];
                chunk = &chunk[if first == b'\\' { 2 } else { 1 }..];
            }
        }
    }
    (s, true, false)
}

/// getEsc: one character of a `[...]` class; `None` for a bad pattern (Go also calls a class
/// that ends the pattern bad).
fn class_char(chunk: &[u8]) -> Option<(char, &[u8])> {
    let chunk = match chunk.first() {
        None | Some(b'-' | b']') => return None,
        Some(b'\\') => &chunk[1..],
        Some(_) => chunk,
    };
    let (r, n) = decode_rune(chunk);
    if n == 0 || (r == '\u{FFFD}' && n == 1) {
        return None;
    }
    let rest = &chunk[n..];
    if rest.is_empty() {
        return None;
    }
    Some((r, rest))
}

// --- scanner (envsubst/parse/scan.go) ---

const SCAN_IDENT: u8 = 1;
const SCAN_LBRACK: u8 = 2;
const SCAN_RBRACK: u8 = 4;
const SCAN_ESCAPE: u8 = 8;
const ESCAPE_DOLLAR: u8 = 1;
const ESCAPE_ALL: u8 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Illegal,
    Eof,
    Ident,
    Lbrack,
    Rbrack,
}

type Accept = fn(char, usize) -> bool;

struct Parser {
    buf: Vec<char>,
    /// Characters an escape removed (`$$` keeps one `$`; `\/` and `\\` in a replacement keep
    /// the second), so positions never shift: Go edits its buffer instead.
    removed: Vec<bool>,
    pos: usize,
    start: usize,
    width: usize,
    mode: u8,
    escapes: u8,
    accept: Accept,
    depth: usize,
}

impl Parser {
    fn new(text: &str) -> Self {
        let buf: Vec<char> = text.chars().collect();
        let removed = vec![false; buf.len()];
        Self {
            buf,
            removed,
            pos: 0,
            start: 0,
            width: 0,
            mode: 0,
            escapes: 0,
            accept: |_, _| true,
            depth: 0,
        }
    }

    fn read(&mut self) -> Option<char> {
        let Some(&c) = self.buf.get(self.pos) else {
            self.width = 0;
            return None;
        };
        self.width = 1;
        self.pos += 1;
        Some(c)
    }

    fn unread(&mut self) {
        self.pos -= self.width;
    }

    fn peek(&mut self) -> Option<char> {
        let c = self.read();
        self.unread();
        c
    }

    /// Drops the escape character just read; the one after it is taken literally.
    fn skip(&mut self) {
        self.removed[self.pos - 1] = true;
        self.pos += 1;
    }

    fn string(&self) -> String {
        (self.start..self.pos)
            .filter(|&i| !self.removed[i])
            .map(|i| self.buf[i])
            .collect()
    }

    fn scan(&mut self) -> Token {
        self.start = self.pos;
        let Some(r) = self.read() else {
            return Token::Eof;
        };
        if self.scan_lbrack(r) {
            Token::Lbrack
        } else if self.mode & SCAN_RBRACK != 0 && r == '}' {
            Token::Rbrack
        } else if self.scan_ident(r) {
            Token::Ident
        } else {
            Token::Illegal
        }
    }

    fn scan_ident(&mut self, r: char) -> bool {
        if self.mode & SCAN_IDENT == 0 {
            return false;
        }
        if self.scan_escaped(r) {
            self.skip();
        } else if !(self.accept)(r, self.pos - self.start) {
            return false;
        }
        loop {
            let Some(r) = self.read() else {
                self.unread();
                break;
            };
            if self.scan_lbrack(r) {
                self.unread();
                self.unread();
                break;
            }
            if self.scan_escaped(r) {
                self.skip();
                continue;
            }
            if !(self.accept)(r, self.pos - self.start) {
                self.unread();
                break;
            }
        }
        true
    }

    fn scan_lbrack(&mut self, r: char) -> bool {
        if self.mode & SCAN_LBRACK == 0 || r != '$' {
            return false;
        }
        if self.read() == Some('{') {
            return true;
        }
        self.unread();
        false
    }

    fn scan_escaped(&mut self, r: char) -> bool {
        if self.mode & SCAN_ESCAPE == 0 {
            return false;
        }
        if r == '$' && self.escapes & ESCAPE_DOLLAR != 0 && self.peek() == Some('$') {
            return true;
        }
        r == '\\' && self.escapes & 2 != 0 && matches!(self.peek(), Some('/' | '\\'))
    }

    // --- parser (envsubst/parse/parse.go); its right recursion over text is a loop here ---

    fn parse_all(mut self) -> Result<Vec<Node>, ExpressionError> {
        let mut nodes = Vec::new();
        loop {
            self.accept = |_, _| true;
            self.mode = SCAN_IDENT | SCAN_LBRACK | SCAN_ESCAPE;
            self.escapes = ESCAPE_DOLLAR;
            match self.scan() {
                Token::Ident => nodes.push(Node::Text(self.string())),
                Token::Eof => return Ok(nodes),
                Token::Lbrack => nodes.push(self.parse_func()?),
                Token::Illegal | Token::Rbrack => return Err(ExpressionError::BadSubstitution),
            }
        }
    }

    fn parse_func(&mut self) -> Result<Node, ExpressionError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(ExpressionError::TooDeep);
        }
        let node = self.parse_func_inner();
        self.depth -= 1;
        node
    }

    fn parse_func_inner(&mut self) -> Result<Node, ExpressionError> {
        self.escapes = ESCAPE_ALL;
        if self.peek() == Some('#') {
            return self.parse_len_func();
        }
        self.accept = accept_ident;
        self.mode = SCAN_IDENT;
        if self.scan() != Token::Ident {
            return Err(ExpressionError::VariableName);
        }
        let name = self.string();
        match self.peek() {
            Some(':') => return self.parse_default_or_substr(name),
            Some('=') => return self.parse_default_func(name),
            Some(',' | '^') => return self.parse_casing_func(name),
            Some('/') => return self.parse_replace_func(name),
            Some('#') => return self.parse_remove_func(name, |r, i| r == '#' && i < 3),
            Some('%') => return self.parse_remove_func(name, |r, i| r == '%' && i < 3),
            _ => {}
        }
        self.accept = accept_ident;
        self.mode = SCAN_RBRACK;
        if self.scan() != Token::Rbrack {
            return Err(ExpressionError::MissingClosingBrace);
        }
        Ok(Node::Func {
            param: name,
            name: String::new(),
            args: Vec::new(),
        })
    }

    fn parse_param(&mut self, accept: Accept, mode: u8) -> Result<Node, ExpressionError> {
        self.accept = accept;
        self.mode = mode | SCAN_LBRACK;
        match self.scan() {
            Token::Lbrack => self.parse_func(),
            Token::Ident | Token::Rbrack => Ok(Node::Text(self.string())),
            Token::Illegal | Token::Eof => Err(ExpressionError::FunctionArgument),
        }
    }

    fn operator(&mut self, accept: Accept, error: ExpressionError) -> Result<String, ExpressionError> {
        self.accept = accept;
        self.mode = SCAN_IDENT;
        if self.scan() != Token::Ident {
            return Err(error);
        }
        Ok(self.string())
    }

    fn parse_default_or_substr(&mut self, param: String) -> Result<Node, ExpressionError> {
        self.read();
        let next = self.peek();
        self.unread();
        if matches!(next, Some('=' | '-' | '?' | '+')) {
            self.parse_default_func(param)
        } else {
            self.parse_substr_func(param)
        }
    }

    fn parse_substr_func(&mut self, param: String) -> Result<Node, ExpressionError> {
        let name = self.operator(|r, i| i == 1 && r == ':', ExpressionError::BadSubstitution)?;
        let mut args = vec![self.parse_param(|r, _| r != ':' && r != '}', SCAN_IDENT)?];
        self.accept = |r, _| r == ':';
        self.mode = SCAN_IDENT | SCAN_RBRACK;
        match self.scan() {
            Token::Rbrack => return Ok(Node::Func { param, name, args }),
            Token::Ident => {}
            _ => return Err(ExpressionError::BadSubstitution),
        }
        args.push(self.parse_param(|r, _| r != '}', SCAN_IDENT)?);
        self.consume_rbrack()?;
        Ok(Node::Func { param, name, args })
    }

    fn parse_remove_func(&mut self, param: String, accept: Accept) -> Result<Node, ExpressionError> {
        let name = self.operator(accept, ExpressionError::BadSubstitution)?;
        let args = vec![self.parse_param(|r, _| r != '}', SCAN_IDENT)?];
        self.consume_rbrack()?;
        Ok(Node::Func { param, name, args })
    }

    fn parse_replace_func(&mut self, param: String) -> Result<Node, ExpressionError> {
        let name = self.operator(
            |r, i| (i == 1 && r == '/') || (i == 2 && matches!(r, '/' | '#' | '%')),
            ExpressionError::BadSubstitution,
        )?;
        let mut args = vec![self.parse_param(|r, _| r != '/', SCAN_IDENT | SCAN_ESCAPE)?];
        self.operator(|r, _| r == '/', ExpressionError::BadSubstitution)?;
        if self.peek() != Some('}') {
            args.push(self.parse_param(|r, _| r != '}', SCAN_IDENT | SCAN_ESCAPE)?);
        }
        self.consume_rbrack()?;
        Ok(Node::Func { param, name, args })
    }

    fn parse_default_func(&mut self, param: String) -> Result<Node, ExpressionError> {
        let accept: Accept = if self.peek() == Some('=') {
            |r, i| i == 1 && r == '='
        } else {
            |r, i| (i == 1 && r == ':') || (i == 2 && matches!(r, '=' | '-' | '?' | '+'))
        };
        let name = self.operator(accept, ExpressionError::DefaultFunction)?;
        let mut args = Vec::new();
        while self.peek() != Some('}') {
            args.push(self.parse_param(|r, _| r != '}', SCAN_IDENT)?);
        }
        self.consume_rbrack()?;
        Ok(Node::Func { param, name, args })
    }

    fn parse_casing_func(&mut self, param: String) -> Result<Node, ExpressionError> {
        let name = self.operator(
            |r, i| matches!(r, ',' | '^') && i < 3,
            ExpressionError::BadSubstitution,
        )?;
        self.consume_rbrack()?;
        Ok(Node::Func {
            param,
            name,
            args: Vec::new(),
        })
    }

    fn parse_len_func(&mut self) -> Result<Node, ExpressionError> {
        let name = self.operator(|r, i| r == '#' && i == 1, ExpressionError::BadSubstitution)?;
        let param = self.operator(accept_ident, ExpressionError::BadSubstitution)?;
        self.consume_rbrack()?;
        Ok(Node::Func {
            param,
            name,
            args: Vec::new(),
        })
    }

    fn consume_rbrack(&mut self) -> Result<(), ExpressionError> {
        self.mode = SCAN_RBRACK;
        if self.scan() == Token::Rbrack {
            Ok(())
        } else {
            Err(ExpressionError::BadSubstitution)
        }
    }
}

fn accept_ident(r: char, _: usize) -> bool {
    r.is_alphabetic() || r.is_numeric() || r == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Variables {
        let mut variables = Variables::new();
        variables
            .extend("test", pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)))
            .expect("valid names");
        variables
    }

    fn strict(text: &str, pairs: &[(&str, &str)]) -> Result<String, ExpressionError> {
        eval(text, &vars(pairs), true, 1 << 20)
    }

    #[test]
    fn expressions_evaluate_as_fluxs_envsubst_does() {
        let v = [("name", "Hello/World"), ("empty", ""), ("n", "3")];
        let cases = [
            ("${name}", "Hello/World"),
            ("a-${name}-b", "a-Hello/World-b"),
            ("${missing:=dev}", "dev"),
            ("${missing:-dev}", "dev"),
            ("${missing=dev}", "dev"),
            ("${empty:=dev}", "dev"),
            ("${name:=dev}", "Hello/World"),
            ("${missing:=${n}x}", "3x"),
            ("${#name}", "11"),
            ("${name^^}", "HELLO/WORLD"),
            ("${name,,}", "hello/world"),
            ("${name,}", "hello/World"),
            ("${name:6}", "World"),
            ("${name:0:5}", "Hello"),
            ("${name:-5}", "Hello/World"),
            ("${name#*/}", "World"),
            ("${name%/*}", "Hello"),
            ("${name/o/0}", "Hell0/World"),
            ("${name//o/0}", "Hell0/W0rld"),
            ("${name/#Hello/Bye}", "Bye/World"),
            ("${name/%World/All}", "Hello/All"),
            ("$${name}", "${name}"),
            ("$$", "$"),
            ("a$$b", "a$b"),
            ("$name", "$name"),
            ("cost: $5", "cost: $5"),
        ];
        for (text, want) in cases {
            assert_eq!(strict(text, &v).as_deref(), Ok(want), "{text}");
        }
    }

    #[test]
    fn strict_mode_refuses_an_unset_variable_without_a_default() {
        assert_eq!(
            strict("${nope}", &[]),
            Err(ExpressionError::NotSet("nope".into()))
        );
        assert_eq!(
            strict("${nope^^}", &[]),
            Err(ExpressionError::NotSet("nope".into()))
        );
        // An empty value is set.
        assert_eq!(strict("${empty}", &[("empty", "")]).as_deref(), Ok(""));
        assert_eq!(eval("${nope}", &Variables::new(), false, 100).as_deref(), Ok(""));
    }

    #[test]
    fn malformed_expressions_are_errors_as_in_flux() {
        assert_eq!(strict("${}", &[]), Err(ExpressionError::VariableName));
        assert_eq!(
            strict("${name", &[("name", "x")]),
            Err(ExpressionError::MissingClosingBrace)
        );
        assert_eq!(
            strict("${na me}", &[("na", "x")]),
            Err(ExpressionError::MissingClosingBrace)
        );
        // fluxcd/pkg's parser has no `${var-default}` despite its README.
        assert_eq!(strict("${a-b}", &[]), Err(ExpressionError::MissingClosingBrace));
        assert_eq!(strict("${a:=b", &[]), Err(ExpressionError::FunctionArgument));
    }

    #[test]
    fn hostile_expressions_are_bounded() {
        let nested = format!(
            "{}x{}",
            "${a:=".repeat(MAX_NESTING + 1),
            "}".repeat(MAX_NESTING + 1)
        );
        assert_eq!(strict(&nested, &[]), Err(ExpressionError::TooDeep));
        let fine = format!(
            "{}x{}",
            "${a:=".repeat(MAX_NESTING - 1),
            "}".repeat(MAX_NESTING - 1)
        );
        assert_eq!(strict(&fine, &[]).as_deref(), Ok("x"));
        // A huge default is fine; output beyond the limit is not.
        let big = "d".repeat(100_000);
        assert_eq!(
            strict(&format!("${{a:={big}}}"), &[]).map(|s| s.len()),
            Ok(100_000)
        );
        let many = "${v}".repeat(1000);
        let value = "x".repeat(2000);
        assert_eq!(
            eval(&many, &vars(&[("v", &value)]), true, 1 << 20),
            Err(ExpressionError::TooLarge(1 << 20))
        );
        // Many escapes stay linear (each is marked, never shifted).
        let dollars = "$$".repeat(200_000);
        assert_eq!(strict(&dollars, &[]).map(|s| s.len()), Ok(200_000));
    }

    /// Expressions built from the grammar's own characters never panic (a cheap stand-in for the
    /// fuzz target `substitute`, run on every `cargo test`).
    #[test]
    fn no_expression_panics() {
        const ALPHABET: &[char] = &[
            '$', '{', '}', ':', '=', '-', '+', '?', '#', '%', '/', '^', ',', '\\', '[', ']', '*', 'a', 'n',
            'é', '0', '1', ' ', '\n',
        ];
        let variables = vars(&[("a", "Hello/World*é"), ("n", "3"), ("empty", "")]);
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            let mut text = String::new();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = usize::try_from(state % 24).expect("small");
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let index = usize::try_from(state % ALPHABET.len() as u64).expect("small");
                text.push(ALPHABET[index]);
            }
            for strict in [true, false] {
                let _ = eval(&text, &variables, strict, 1 << 16);
            }
        }
    }

    #[test]
    fn values_lose_their_newlines_and_names_follow_fluxs_grammar() {
        let variables = vars(&[("multi", "a\nb: c\n")]);
        assert_eq!(variables.get("multi"), Some("ab: c"));
        let mut bad = Variables::new();
        let err = bad
            .extend("ConfigMap vars", [("my-key".to_owned(), "v")])
            .expect_err("refused");
        assert_eq!(
            err.to_string(),
            "postBuild: variable name \"my-key\" (from ConfigMap vars) is invalid, must match '^[_[:alpha:]][_[:alpha:][:digit:]]*$'"
        );
        assert!(is_variable_name("_a1") && is_variable_name("Cluster_ENV"));
        assert!(!is_variable_name("1a") && !is_variable_name("") && !is_variable_name("é"));
        // Later sources override earlier ones.
        let mut merged = vars(&[("a", "1"), ("b", "1")]);
        merged.extend("inline", [("b".to_owned(), "2")]).expect("valid");
        assert_eq!((merged.get("a"), merged.get("b")), (Some("1"), Some("2")));
        assert_eq!(format!("{merged:?}"), "{\"a\", \"b\"}");
    }

    fn substitution(pairs: &[(&str, &str)]) -> Substitution {
        Substitution {
            variables: vars(pairs),
            always: false,
        }
    }

    fn render(text: &str, pairs: &[(&str, &str)]) -> Result<Vec<Value>, RenderError> {
        parse_substituted(
            text,
            "apps/app.yaml",
            &RenderLimits::default(),
            &substitution(pairs),
        )
        .map(|manifests| manifests.into_iter().map(|m| m.manifest).collect())
    }

    const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    env: ${cluster_env:=dev}
spec:
  replicas: ${replicas:=1}
  template:
    spec:
      containers:
        - name: web
          image: nginx:${tag}
          env:
            - name: REPLICAS
              value: \"${replicas:=1}\"
";

    #[test]
    fn a_value_takes_the_yaml_type_of_where_it_lands() {
        let out = render(DEPLOYMENT, &[("replicas", "3"), ("tag", "1.27")]).expect("renders");
        let deployment = &out[0];
        assert_eq!(deployment["metadata"]["labels"]["env"], "dev");
        assert_eq!(deployment["spec"]["replicas"], 3);
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], "nginx:1.27");
        assert_eq!(container["env"][0]["value"], "3");
    }

    #[test]
    fn an_object_that_opts_out_is_left_alone_and_others_are_not() {
        let text = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: script
  annotations:
    kustomize.toolkit.fluxcd.io/substitute: disabled
data:
  run.sh: echo ${HOME} ${
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  env: ${cluster_env}
";
        let out = render(text, &[("cluster_env", "prod")]).expect("renders");
        assert_eq!(out[0]["data"]["run.sh"], "echo ${HOME} ${");
        assert_eq!(out[1]["data"]["env"], "prod");
    }

    #[test]
    fn nothing_is_substituted_without_variables_unless_always() {
        let text =
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  env: ${cluster_env:=dev}\n";
        let out = render(text, &[]).expect("renders");
        assert_eq!(out[0]["data"]["env"], "${cluster_env:=dev}");
        let always = Substitution {
            variables: Variables::new(),
            always: true,
        };
        let out = parse_substituted(text, "a.yaml", &RenderLimits::default(), &always).expect("renders");
        assert_eq!(out[0].manifest["data"]["env"], "dev");
    }

    #[test]
    fn errors_name_the_file_object_and_field_never_the_value() {
        let err = render(DEPLOYMENT, &[("replicas", "3")]).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "apps/app.yaml (document 1, line 1): Deployment web: post-build variable substitution failed: variable not set (strict mode): \"tag\""
        );
        // A value cannot turn a scalar into a mapping (YAML injection): refused, not applied.
        let injected = render(DEPLOYMENT, &[("replicas", "{a: s3cret}"), ("tag", "1")]).expect_err("refused");
        let message = injected.to_string();
        assert!(
            message.contains("Deployment web: field .spec.replicas: a substituted value changed the object's shape (a scalar became a mapping)"),
            "{message}"
        );
        assert!(!message.contains("s3cret"), "{message}");
        // Nor make YAML that no longer parses show its text.
        let broken = render(DEPLOYMENT, &[("replicas", "a: s3cret"), ("tag", "1")]).expect_err("refused");
        let message = broken.to_string();
        assert!(message.contains("does not parse"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }

    #[test]
    fn a_value_with_newlines_cannot_add_keys_or_objects() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  v: ${v}\n";
        let out = render(text, &[("v", "x\n---\nb")]).expect("renders");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["data"]["v"], "x---b");
        let err = render(text, &[("v", "x\n---\napiVersion: v1\nkind: Secret")]).expect_err("refused");
        assert!(err.to_string().contains("does not parse"), "{err}");
        let err = render(text, &[("v", "[a, b]")]).expect_err("refused");
        assert!(err.to_string().contains("a scalar became a list"), "{err}");
    }

    #[test]
    fn locations_stay_those_of_the_file() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\ndata:\n  v: ${v}\n";
        let out = parse_substituted(
            text,
            "f.yaml",
            &RenderLimits::default(),
            &substitution(&[("v", "1")]),
        )
        .expect("renders");
        assert_eq!(out[1].source.document, 1);
        assert_eq!(out[1].source.line, Some(6));
        assert_eq!(out[1].manifest["data"]["v"], 1);
    }
}

//! The in-process evaluator (jrsonnet) against the reference implementation: Debian's `jsonnet`,
//! the C++ one. Each program runs through both, from the same files, with the same external
//! variables, top-level arguments and library directories; the JSON values must be equal, and a
//! program one of them refuses the other must refuse too.

use std::path::Path;
use std::process::Command;

use driftless_core::application::{JsonnetOptions, JsonnetVariable};
use driftless_files::{Entry, FileTree};
use driftless_render::{RenderLimits, evaluate_jsonnet};
use serde_json::Value;

/// Files every program may import: a library directory and one next to the programs.
const LIBRARIES: &[(&str, &str)] = &[
    (
        "vendor/k8s.libsonnet",
        "{ configMap(name, data={}):: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: name }, data: data } }",
    ),
    ("vendor/greeting.txt", "hello from vendor\n"),
    (
        "app/params.libsonnet",
        "{ replicas: 3, image: 'nginx:1.25', ports: [80, 443] }",
    ),
    (
        "app/nested/deeper.libsonnet",
        "(import '../params.libsonnet') + { depth: 2 }",
    ),
];

struct Case {
    name: &'static str,
    program: &'static str,
    ext_vars: Vec<JsonnetVariable>,
    tlas: Vec<JsonnetVariable>,
}

fn case(name: &'static str, program: &'static str) -> Case {
    Case {
        name,
        program,
        ext_vars: Vec::new(),
        tlas: Vec::new(),
    }
}

fn variable(name: &str, value: &str, code: bool) -> JsonnetVariable {
    JsonnetVariable {
        name: name.into(),
        value: value.into(),
        code,
    }
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "std-library",
            r#"{
              length: std.length([1, 2, 3]), join: std.join(',', ['a', 'b']),
              split: std.split('a:b:c', ':'), map: std.map(function(x) x * 2, [1, 2]),
              filter: std.filter(function(x) x > 1, [1, 2, 3]), fields: std.objectFields({ b: 1, a: 2 }),
              toString: std.toString(1.5), substr: std.substr('hello', 1, 3),
              startsWith: std.startsWith('abc', 'ab'), upper: std.asciiUpper('abc'),
              base64: std.base64('hi'), decoded: std.base64Decode('aGk='), md5: std.md5('x'),
              range: std.range(1, 5), mergePatch: std.mergePatch({ a: 1, b: { c: 2 } }, { b: { c: null, d: 3 } }),
              parseJson: std.parseJson('{"x": [1, 2]}'), abs: std.abs(-3), floor: std.floor(2.7),
              pow: std.pow(2, 10), setUnion: std.setUnion([1, 3], [2, 3]), uniq: std.uniq([1, 1, 2]),
              escape: std.escapeStringJson('a"b'), strip: std.stripChars(' x ', ' '),
              foldl: std.foldl(function(acc, x) acc + x, [1, 2, 3], 0), flatMap: std.flatMap(function(x) [x, x], [1, 2]),
              lines: std.lines(['a', 'b']), codepoint: std.codepoint('é'), char: std.char(233),
              repeat: std.repeat('ab', 3), type: std.type({}), member: std.member([1, 2], 2),
              prune: std.prune({ a: null, b: [], c: { d: {} }, e: 1 }), min: std.min(3, 4),
              objectHas: std.objectHas({ a:: 1 }, 'a'), objectHasAll: std.objectHasAll({ a:: 1 }, 'a'),
              findSubstr: std.findSubstr('a', 'banana'), reverse: std.reverse([1, 2, 3]),
              unicode: 'héllo wörld ☃', length_unicode: std.length('☃é'),
            }"#,
        ),
        case(
            "objects",
            r"local base = { name: 'base', labels: { app: 'web' }, hidden:: 'not shown', greet():: 'hi ' + self.name };
            local child = base { name: 'child', labels+: { tier: 'front' }, visible: super.hidden, greeting: self.greet() };
            { child: child, outer: { inner: { root: $.child.name } }, computed: { ['key-' + k]: k for k in ['a', 'b'] },
              keep::: 'shown', merged: { a: 1 } + { b: 2 } + { a: 3 } }",
        ),
        case(
            "comprehensions",
            r"{ squares: [x * x for x in std.range(1, 5) if x % 2 == 1],
                 pairs: [[x, y] for x in [1, 2] for y in ['a', 'b']],
                 byName: { [p.name]: p.port for p in [{ name: 'http', port: 80 }, { name: 'https', port: 443 }] if p.port > 0 } }",
        ),
        case(
            "imports",
            r"local k8s = import 'k8s.libsonnet'; local params = import 'params.libsonnet';
            local deeper = import 'nested/deeper.libsonnet';
            [k8s.configMap('app', { replicas: std.toString(params.replicas), greeting: importstr 'greeting.txt' }), deeper]",
        ),
        Case {
            name: "external-variables",
            program: r"{ env: std.extVar('env'), replicas: std.extVar('replicas') + 1, labels: std.extVar('labels') }",
            ext_vars: vec![
                variable("env", "production", false),
                variable("replicas", "2", true),
                variable("labels", "{ team: 'web', tier: std.asciiUpper('front') }", true),
            ],
            tlas: Vec::new(),
        },
        Case {
            name: "top-level-arguments",
            program: r"function(name, replicas=1, ports=[80]) { name: name, replicas: replicas, ports: ports, kind: std.type(replicas) }",
            ext_vars: Vec::new(),
            tlas: vec![
                variable("name", "guestbook", false),
                variable("replicas", "3", true),
            ],
        },
        case(
            "string-formatting",
            r#"{ positional: '%s is %d years' % ['x', 3], named: '%(a)s-%(b)05.2f' % { a: 'v', b: 3.14159 },
                 hex: '%x %X %o' % [255, 255, 8], padded: '[%-6s|%6s]' % ['ab', 'cd'], float: '%.3f %e' % [2 / 3, 12345.678],
                 percent: '100%%' % [], joined: std.format('%s/%s', ['a', 'b']), escapes: 'tab\there "quoted" \u00e9' }"#,
        ),
        case(
            "manifest",
            r"local doc = { b: [1, 'two', { three: true }], a: { nested: null, 'key with space': 'v' }, n: 1.5 };
            { json: std.manifestJson(doc), jsonEx: std.manifestJsonEx(doc, '  '), yaml: std.manifestYamlDoc(doc),
              yamlStream: std.manifestYamlStream([{ a: 1 }, [1, 2]]), yamlIndented: std.manifestYamlDoc({ list: [{ a: 1, b: 2 }] }, indent_array_in_object=true),
              ini: std.manifestIni({ main: { a: 1 }, sections: { s: { b: 'x' } } }) }",
        ),
        case(
            "sorting",
            r"{ numbers: std.sort([3, 1, 2]), strings: std.sort(['b', 'a', 'C']), byKey: std.sort([{ k: 2 }, { k: 1 }], keyF=function(o) o.k),
                 set: std.set(['b', 'a', 'b']), setMember: std.setMember('a', std.set(['b', 'a'])), inter: std.setInter([1, 2, 3], [2, 3, 4]),
                 diff: std.setDiff([1, 2, 3], [2]), sortedFields: std.objectFields({ z: 1, a: 2, m: 3 }) }",
        ),
        case(
            "numbers",
            r"{ third: 1 / 3, big: 1e21, sum: 0.1 + 0.2, exact: std.pow(2, 53), negative: -7, modulo: 7 % 3,
                 shift: 1 << 10, bits: 6 & 3, int: std.floor(7 / 2), tiny: 1e-7, zero: -0 }",
        ),
        case("error-statement", "{ a: error 'boom' }"),
        case(
            "assertion",
            "local x = 1; assert x == 2 : 'x must be 2'; { x: x }",
        ),
        case("missing-field", "{ a: 1 }.b"),
        case("missing-import", "import 'does-not-exist.libsonnet'"),
        case("object-assertion", "{ a: 1, assert self.a > 1 : 'a too small' }"),
        case("manifest-function", "{ f: function(x) x }"),
    ]
}

fn jsonnet_binary() -> &'static str {
    let found = Command::new("jsonnet")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "the reference Jsonnet implementation is not installed: apt-get install -y jsonnet (scripts/testenv installs it)"
    );
    "jsonnet"
}

/// What the C++ implementation makes of `file` in `root`: `Ok(value)` or `Err(stderr)`.
fn reference(root: &Path, file: &str, case: &Case) -> Result<Value, String> {
    let mut command = Command::new(jsonnet_binary());
    command.current_dir(root);
    // `-J` right-most wins: the application's path last, as the in-process resolver searches it.
    command.args(["-J", "app", "-J", "vendor"]);
    for variable in &case.ext_vars {
        let flag = if variable.code { "--ext-code" } else { "--ext-str" };
        command
            .arg(flag)
            .arg(format!("{}={}", variable.name, variable.value));
    }
    for variable in &case.tlas {
        let flag = if variable.code { "--tla-code" } else { "--tla-str" };
        command
            .arg(flag)
            .arg(format!("{}={}", variable.name, variable.value));
    }
    let output = command.arg(file).output().expect("run jsonnet");
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&output.stdout).expect("jsonnet prints JSON"))
}

#[test]
fn the_in_process_evaluator_agrees_with_the_reference_implementation() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut entries: Vec<(String, Entry)> = Vec::new();
    let mut write = |path: &str, text: &str| {
        let on_disk = root.path().join(path);
        std::fs::create_dir_all(on_disk.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&on_disk, text).expect("write");
        entries.push((path.to_owned(), Entry::file(text)));
    };
    for (path, text) in LIBRARIES {
        write(path, text);
    }
    let cases = cases();
    for case in &cases {
        write(&format!("app/{}.jsonnet", case.name), case.program);
    }
    let tree = FileTree::from_git(entries);
    let mut disagreements = Vec::new();
    let mut refused = Vec::new();
    for case in &cases {
        let file = format!("app/{}.jsonnet", case.name);
        let options = JsonnetOptions {
            ext_vars: case.ext_vars.clone(),
            tlas: case.tlas.clone(),
            libs: vec!["vendor".into()],
        };
        let ours = evaluate_jsonnet(&tree, &file, "app", &options, &RenderLimits::default());
        let theirs = reference(root.path(), &file, case);
        match (ours, theirs) {
            (Ok(ours), Ok(theirs)) if ours == theirs => {}
            (Err(_), Err(_)) => refused.push(case.name),
            (ours, theirs) => disagreements.push(format!(
                "{}:\n  jrsonnet:  {ours:?}\n  reference: {theirs:?}",
                case.name
            )),
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    // Both refusing a program is agreeing; only the error cases may be refused.
    assert_eq!(
        refused,
        [
            "error-statement",
            "assertion",
            "missing-field",
            "missing-import",
            "object-assertion",
            "manifest-function"
        ]
    );
}

#!/usr/bin/env python3
"""A `helm`-compatible executable backed by real Helm, for driftless's tests.

The helm CLI cannot be installed from these machines' registries, but PyPI's `helm-python-sdk`
ships `libhelm_c`, a C ABI over Helm's own Go SDK (Helm 4.2). scripts/testenv installs that
package into $CACHE_ROOT/tools-venv and this file as $CACHE_ROOT/tools/bin/helm, with a `#!` line
that points at the venv's python.

It implements exactly what driftless calls, with Helm's flag names and semantics:

    helm version --short
    helm template RELEASE CHART_DIR_OR_TGZ [--namespace|-n NS] [--values|-f FILE]...
        [--set K=V]... [--set-string K=V]... [--set-json K=JSON]... [--set-file K=PATH]...
        [--set-literal K=V]... [--kube-version VER] [--api-versions|-a G/V[/Kind]]...
        [--include-crds] [--skip-crds] [--no-hooks]

and, for tests that build chart repositories (driftless itself never runs these):

    helm package CHART_DIR [--destination|-d DIR] [--version VER]
    helm repo index DIR [--url URL]
    helm push CHART_TGZ oci://HOST/PATH [--plain-http]   (loopback registries only)

Anything else exits 2 with a message on stderr. Helm errors exit 1 with `Error: ...` on stderr,
as helm does.

How `helm template` is reproduced (helm's pkg/cmd/template.go runs a client-side dry-run install
and prints the release manifest, then the hooks):
- the manifests are the `manifest` of a real `helm_install` with `dry_run: client` (Helm renders,
  splits, sorts by kind and formats them; nothing contacts a cluster);
- with --include-crds, the chart's CRDs (of the subcharts that are enabled) come first, in Helm's
  format (`---\\n# Source: FILE\\n<file>\\n`), as Helm's renderResources writes them;
- the hooks: the install summary does not carry them, so the chart is rendered again by Helm's
  engine (`helm_render`, same values and capabilities) and the hook documents are picked and
  ordered here the way Helm's releaseutil.SortManifests does (files in path order, documents in
  file order, a stable sort by kind in InstallOrder).
Charts are local directories or .tgz archives only: the shim never contacts a network.

Values, `--set*` parsing, rendering, schema validation, sorting and formatting are the SDK's (Helm's
own code); what is done here — flag parsing, the order values are layered in, CRDs first, hooks
picked and ordered — is checked byte for byte against Helm v4.2.3's own `helm template` golden
files by crates/testenv/tests/helm_template_golden.rs.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys

# Belt and braces for "no network": anything in libhelm_c that would reach out over HTTP(S)
# (a remote $ref in a values schema, say) goes to a proxy that refuses the connection. Go reads
# these when the library first makes a request, so they are set before it is loaded.
for _var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
    os.environ[_var] = "http://127.0.0.1:9"
for _var in ("NO_PROXY", "no_proxy", "KUBECONFIG"):
    os.environ.pop(_var, None)
# `helm push` (tests only) reaches a registry on loopback and nothing else.
if sys.argv[1:2] == ["push"]:
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"

USAGE = """usage:
  helm version --short
  helm template RELEASE CHART [--namespace NS] [--values FILE]... [--set K=V]...
                [--set-string K=V]... [--set-json K=JSON]... [--set-file K=PATH]...
                [--set-literal K=V]... [--kube-version VER] [--api-versions G/V[/Kind]]...
                [--include-crds] [--skip-crds] [--no-hooks]
(a helm shim over helm-python-sdk; see scripts/helm-shim.py)"""

# helm.sh/helm/v4/pkg/release/v1/util/kind_sorter.go
INSTALL_ORDER = [
    "PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange",
    "PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList",
    "ConfigMap", "StorageClass", "PersistentVolume", "PersistentVolumeClaim",
    "CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
    "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service",
    "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
    "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress",
    "APIService", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
]
# helm.sh/helm/v4/pkg/release/v1/util/manifest_sorter.go
HOOK_EVENTS = {
    "pre-install", "post-install", "pre-delete", "post-delete", "pre-upgrade", "post-upgrade",
    "pre-rollback", "post-rollback", "test", "test-success",
}
HOOK_ANNOTATION = "helm.sh/hook"
# releaseutil.SplitManifests: Go's \s is [\t\n\f\r ].
MANIFEST_SEPARATOR = re.compile(r"(?:^|[\t\n\f\r ]*\n)---[\t\n\f\r ]*")


class UsageError(Exception):
    pass


def usage_error(message: str) -> None:
    print(f"Error: {message}\n\n{USAGE}", file=sys.stderr)
    sys.exit(2)


def helm_error(message: str) -> None:
    print(f"Error: {message}", file=sys.stderr)
    sys.exit(1)


def go_lstrip(text: str) -> str:
    """strings.TrimLeftFunc(text, unicode.IsSpace)."""
    i = 0
    while i < len(text) and text[i].isspace() and text[i] not in "\x1c\x1d\x1e\x1f":
        i += 1
    return text[i:]


# --- flags, as cobra/pflag parse them ----------------------------------------------------------

# name -> (kind, shorthand); kind: "string", "slice" (comma-separated, repeatable), "array"
# (repeatable, no splitting), "bool".
TEMPLATE_FLAGS = {
    "namespace": ("string", "n"),
    "values": ("slice", "f"),
    "set": ("array", None),
    "set-string": ("array", None),
    "set-json": ("array", None),
    "set-file": ("array", None),
    "set-literal": ("array", None),
    "kube-version": ("string", None),
    "api-versions": ("slice", "a"),
    "include-crds": ("bool", None),
    "skip-crds": ("bool", None),
    "no-hooks": ("bool", None),
}


def parse_flags(args: list[str], spec: dict) -> tuple[list[str], dict]:
    shorthands = {short: name for name, (_, short) in spec.items() if short}
    values: dict = {}
    positional: list[str] = []

    def assign(name: str, value: str | None, rest: list[str]) -> None:
        kind = spec[name][0]
        if kind == "bool":
            if value is None:
                value = "true"
            if value not in ("true", "false", "1", "0", "t", "f", "TRUE", "FALSE", "True", "False"):
                raise UsageError(f'invalid argument "{value}" for "--{name}" flag')
            values[name] = value in ("true", "1", "t", "TRUE", "True")
            return
        if value is None:
            if not rest:
                raise UsageError(f"flag needs an argument: --{name}")
            value = rest.pop(0)
        if kind == "string":
            values[name] = value
        elif kind == "array":
            values.setdefault(name, []).append(value)
        else:
            items = next(csv.reader([value])) if value else []
            values.setdefault(name, []).extend(items)

    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            positional.extend(rest)
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if name not in spec:
                raise UsageError(f"unknown flag: --{name}")
            assign(name, value if eq else None, rest)
        elif arg.startswith("-") and len(arg) > 1:
            short, tail = arg[1], arg[2:]
            if short not in shorthands:
                raise UsageError(f"unknown shorthand flag: '{short}' in {arg}")
            name = shorthands[short]
            if tail.startswith("="):
                tail = tail[1:]
            assign(name, tail if tail else None, rest)
        else:
            positional.append(arg)
    return positional, values


# --- values, as helm's pkg/cli/values.Options.MergeValues builds them ---------------------------


def merge_maps(a: dict, b: dict) -> dict:
    """loader.MergeMaps: maps merge recursively, anything else from b replaces."""
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_maps(out[key], value)
        else:
            out[key] = value
    return out


def yaml_documents(text: str) -> list[str]:
    """k8s.io/apimachinery's YAMLReader: documents end at a line that is `---` (then spaces)."""
    documents, current = [], []
    for line in text.splitlines(keepends=True):
        if line.startswith("---") and line[3:].strip() == "":
            if current:
                documents.append("".join(current))
                current = []
            continue
        current.append(line)
    if current:
        documents.append("".join(current))
    return documents


def user_values(helm, flags: dict) -> dict:
    base: dict = {}
    for path in flags.get("values", []):
        if "://" in path:
            helm_error(f"values file {path}: this helm shim reads local files only (no network)")
        try:
            # As helm does, "-" is the standard input (driftless passes its merged values so).
            if path == "-":
                text = sys.stdin.read()
            else:
                with open(path, encoding="utf-8") as file:
                    text = file.read()
        except OSError as err:
            helm_error(f"open {path}: {err.strerror.lower() if err.strerror else err}")
        current: dict = {}
        try:
            for document in yaml_documents(text):
                current = merge_maps(current, helm.values_from_yaml(document))
        except helm.HelmError as err:
            helm_error(f"failed to parse {path}: {err}")
        base = merge_maps(base, current)
    # Then, in Helm's order (pkg/cli/values.Options.MergeValues): --set-json, --set, --set-string,
    # --set-file, --set-literal, each parsed by the SDK's own strvals (helm_strvals_parse_*).
    # Helm parses each expression into the one map (strvals.ParseInto); the SDK parses into a new
    # map, so the expressions of one flag are joined by commas (one ParseInto over all of them)
    # and the result merged onto the map so far. That differs from Helm only when an expression
    # indexes into a list (a[1]=x) that an earlier flag or a values file made: Helm edits that
    # list, here the new list replaces it.
    for value in flags.get("set-json", []):
        trimmed = value.strip()
        try:
            if trimmed.startswith("{"):
                parsed = json.loads(trimmed)
                if not isinstance(parsed, dict):
                    raise ValueError("not an object")
            else:
                parsed = helm.parse_set_json(value)
        except (ValueError, helm.HelmError):
            helm_error(f"failed parsing --set-json data {value}")
        base = merge_maps(base, parsed)
    parsers = (
        ("set", helm.parse_set_string),
        ("set-string", helm.parse_set_string_values),
        ("set-file", helm.parse_set_file),
        ("set-literal", helm.parse_set_literal),
    )
    for flag, parse in parsers:
        expressions = [e for e in flags.get(flag, []) if e]
        if not expressions:
            continue
        try:
            if flag == "set-literal":
                # A literal value may hold commas: one expression at a time.
                for expression in expressions:
                    base = merge_maps(base, parse(expression))
            else:
                base = merge_maps(base, parse(",".join(expressions)))
        except helm.HelmError as err:
            helm_error(f"failed parsing --{flag} data: {err}")
    return base


# --- hooks, as helm's releaseutil.SortManifests picks and orders them ---------------------------


def split_manifests(content: str) -> list[str]:
    documents = []
    for document in MANIFEST_SEPARATOR.split(go_lstrip(content)):
        if document == "":
            continue
        documents.append(go_lstrip(document))
    return documents


def hooks_of(helm, rendered: dict[str, str]) -> list[tuple[str, str, str]]:
    """(kind, path, manifest) of every hook document, in the order helm template prints them."""
    hooks = []
    for path in sorted(rendered):
        content = rendered[path]
        if path.endswith("NOTES.txt") or os.path.basename(path).startswith("_"):
            continue
        if content.strip() == "":
            continue
        for document in split_manifests(content):
            try:
                head = helm.values_from_yaml(document)
            except helm.HelmError:
                continue  # the install already accepted every document; not a hook
            metadata = head.get("metadata")
            if not isinstance(metadata, dict):
                continue
            annotations = metadata.get("annotations")
            if not isinstance(annotations, dict) or HOOK_ANNOTATION not in annotations:
                continue
            events = [e.strip().lower() for e in str(annotations[HOOK_ANNOTATION]).split(",")]
            if any(e not in HOOK_EVENTS for e in events):
                continue  # Helm skips unknown hooks entirely
            kind = head.get("kind")
            hooks.append((kind if isinstance(kind, str) else "", path, document))

    order = {kind: i for i, kind in enumerate(INSTALL_ORDER)}
    known = [h for h in hooks if h[0] in order]
    unknown = [h for h in hooks if h[0] not in order]
    known.sort(key=lambda h: order[h[0]])
    unknown.sort(key=lambda h: h[0])  # unknown kinds last, alphabetically (both sorts stable)
    return known + unknown


# --- commands -----------------------------------------------------------------------------------


def load_helm():
    import helm_python

    return helm_python


def cmd_version(args: list[str]) -> None:
    if args != ["--short"]:
        usage_error(f"unsupported: helm version {' '.join(args)} (only `helm version --short`)")
    helm = load_helm()
    print(helm.helm_sdk_version())


def cmd_template(args: list[str]) -> None:
    try:
        positional, flags = parse_flags(args, TEMPLATE_FLAGS)
    except UsageError as err:
        usage_error(str(err))
    if len(positional) != 2:
        usage_error(f"helm template takes RELEASE and CHART, got {len(positional)} argument(s)")
    release, chart_path = positional
    if "://" in chart_path or not os.path.exists(chart_path):
        helm_error(
            f"chart {chart_path!r}: not a local chart directory or archive "
            "(this helm shim renders local charts only and never uses the network)"
        )

    helm = load_helm()
    from helm_python import _native

    namespace = flags.get("namespace") or "default"
    kube_version = flags.get("kube-version")
    api_versions = flags.get("api-versions", [])
    values = user_values(helm, flags)

    try:
        chart = helm.Chart.load(chart_path)
    except helm.HelmError as err:
        helm_error(str(err))
    metadata = chart.metadata
    if metadata.get("type") == "library":
        helm_error("library charts are not installable")
    declared = [d.get("name") for d in metadata.get("dependencies") or []]
    loaded = {d.get("name") for d in chart.dependencies}
    missing = [name for name in declared if name not in loaded]
    if missing:
        helm_error(
            "An error occurred while checking for chart dependencies. You may need to run "
            "`helm dependency build` to fetch missing dependencies: found in Chart.yaml, but "
            f"missing in charts/ directory: {', '.join(missing)}"
        )

    capabilities: dict = {}
    if kube_version:
        capabilities["kube_version"] = kube_version
    if api_versions:
        capabilities["api_versions"] = api_versions

    def explain(err: Exception) -> str:
        message = str(err)
        if kube_version and isinstance(err, helm.HelmInvalidArgError) and kube_version in message:
            return f"invalid kube version '{kube_version}': {message}"
        return message

    # The manifests: a client-side dry-run install, which is what `helm template` runs.
    try:
        with helm.Config(namespace=namespace, storage_driver="memory") as config:
            summary = json.loads(
                _native.call_string(
                    "helm_install",
                    config._raw(),
                    _native.HANDLE(0),
                    chart._raw(),
                    None,
                    release,
                    json.dumps(values),
                    json.dumps({"dry_run": "client", "namespace": namespace, **capabilities}),
                )
            )
    except helm.HelmError as err:
        message = explain(err)
        # helm template adds the hint only when the install got as far as a release (a render
        # error); values refused by the chart's schema fail before one exists.
        rendered = not message.startswith("values don't meet the specifications of the schema")
        if isinstance(err, (helm.HelmReleaseError, helm.HelmRenderError)) and rendered:
            message += "\n\nUse --debug flag to render out invalid YAML"
        helm_error(message)

    out = ""
    if flags.get("include-crds"):
        # The install processed the chart's dependencies in place: disabled subcharts are gone,
        # so their CRDs are too, as in Helm.
        for crd in chart.crds:
            out += f"---\n# Source: {crd['filename']}\n{crd['data']}\n"
    out += summary.get("manifest", "")
    out = out.strip() + "\n"

    if not flags.get("no-hooks"):
        with helm.Chart.load(chart_path) as fresh:
            try:
                rendered = _native.call_string(
                    "helm_render",
                    fresh._raw(),
                    json.dumps(values),
                    json.dumps(
                        {
                            "name": release,
                            "namespace": namespace,
                            "revision": 1,
                            "is_install": True,
                            "is_upgrade": False,
                            **capabilities,
                        }
                    ),
                )
            except helm.HelmError as err:
                helm_error(explain(err))
        for _, path, manifest in hooks_of(helm, json.loads(rendered)):
            out += f"---\n# Source: {path}\n{manifest}\n"
    chart.close()
    sys.stdout.write(out)


PACKAGE_FLAGS = {"destination": ("string", "d"), "version": ("string", None)}
REPO_INDEX_FLAGS = {"url": ("string", None)}
PUSH_FLAGS = {"plain-http": ("bool", None)}


def parsed(args: list[str], spec: dict, count: int, usage: str) -> tuple[list[str], dict]:
    try:
        positional, flags = parse_flags(args, spec)
    except UsageError as err:
        usage_error(str(err))
    if len(positional) != count:
        usage_error(f"usage: {usage}")
    return positional, flags


def cmd_package(args: list[str]) -> None:
    (chart_dir,), flags = parsed(args, PACKAGE_FLAGS, 1, "helm package CHART_DIR [-d DIR] [--version V]")
    helm = load_helm()
    try:
        path = helm.package(chart_dir, destination=flags.get("destination", "."), version=flags.get("version"))
    except helm.HelmError as err:
        helm_error(str(err))
    print(f"Successfully packaged chart and saved it to: {path}")


def cmd_repo(args: list[str]) -> None:
    if args[:1] != ["index"]:
        usage_error("unsupported: only `helm repo index DIR [--url URL]`")
    (directory,), flags = parsed(args[1:], REPO_INDEX_FLAGS, 1, "helm repo index DIR [--url URL]")
    helm = load_helm()
    try:
        helm.repo_index_generate(directory, base_url=flags.get("url"))
    except helm.HelmError as err:
        helm_error(str(err))


def cmd_push(args: list[str]) -> None:
    (archive, remote), flags = parsed(args, PUSH_FLAGS, 2, "helm push CHART_TGZ oci://HOST/PATH [--plain-http]")
    host = remote.removeprefix("oci://").split("/")[0].rsplit(":", 1)[0]
    if host not in ("127.0.0.1", "localhost", "[::1]"):
        helm_error(f"{remote}: this helm shim pushes to loopback registries only")
    helm = load_helm()
    try:
        helm.push(archive, remote, plain_http=bool(flags.get("plain-http")))
    except helm.HelmError as err:
        helm_error(str(err))
    print(f"Pushed: {remote}")


def main(argv: list[str]) -> None:
    if not argv:
        usage_error("no command given")
    command, rest = argv[0], argv[1:]
    if command == "version":
        cmd_version(rest)
    elif command == "template":
        cmd_template(rest)
    elif command == "package":
        cmd_package(rest)
    elif command == "repo":
        cmd_repo(rest)
    elif command == "push":
        cmd_push(rest)
    else:
        usage_error(
            f"unsupported command {command!r} (this helm shim implements version, template, package, repo index, push)"
        )


if __name__ == "__main__":
    main(sys.argv[1:])

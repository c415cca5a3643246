//! README.zh-CN.md is README.md in Simplified Chinese (issue 21). The prose is translated; its
//! shape is not, so a change to README.md that the translation has not followed shows here:
//! per section (a heading and what follows it up to the next heading, in order), the same heading
//! level, the same fenced code blocks with identical contents (the commands a reader copies must
//! be the ones README.md runs), the same inline code (commands, fields, flags and file names stay
//! untranslated), the same number of list items and the same link targets. Each README links to
//! the other near its top.

use std::fmt;

use driftless_architecture::workspace_root;

const ENGLISH: &str = "README.md";
const CHINESE: &str = "README.zh-CN.md";

#[derive(Debug, Clone, PartialEq, Eq)]
struct CodeBlock {
    /// The 1-based line of the opening fence.
    line: usize,
    /// What follows the opening fence (`sh`, `yaml`).
    info: String,
    body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Section {
    /// The 1-based line of the heading; 0 for the text before the first heading.
    line: usize,
    /// 1 for `#`, 2 for `##` …; 0 for the text before the first heading.
    level: usize,
    title: String,
    code_blocks: Vec<CodeBlock>,
    list_items: usize,
    /// Sorted, so a translation may order its sentences differently.
    code_spans: Vec<String>,
    /// Sorted, like `code_spans`.
    link_targets: Vec<String>,
    /// Everything outside code blocks and headings, read for its code spans and links once the
    /// section is complete (a code span may wrap onto the next line).
    prose: String,
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.level == 0 {
            write!(f, "the text before the first heading")
        } else {
            write!(
                f,
                "`{} {}` (line {})",
                "#".repeat(self.level),
                self.title,
                self.line
            )
        }
    }
}

/// The fence that opened the code block being read: its character and length, as CommonMark
/// closes a block only with a fence of the same character at least as long.
struct OpenFence {
    marker: char,
    length: usize,
    block: CodeBlock,
}

fn fence(line: &str) -> Option<(char, usize, &str)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let marker = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let length = rest.chars().take_while(|c| *c == marker).count();
    (length >= 3).then(|| (marker, length, rest[length..].trim()))
}

fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.chars().take_while(|c| *c == '#').count();
    let rest = &line[level..];
    ((1..=6).contains(&level) && (rest.is_empty() || rest.starts_with(' ')))
        .then(|| (level, rest.trim().trim_end_matches('#').trim_end()))
}

fn is_list_item(line: &str) -> bool {
    let item = line.trim_start();
    let ordered = item.trim_start_matches(|c: char| c.is_ascii_digit());
    let ordered = ordered.len() < item.len() && (ordered.starts_with(". ") || ordered.starts_with(") "));
    ordered || ["- ", "* ", "+ "].iter().any(|bullet| item.starts_with(bullet))
}

/// Where the next run of exactly `length` backticks starts.
fn backtick_run(text: &str, length: usize) -> Option<usize> {
    let mut index = 0;
    while let Some(found) = text[index..].find('`') {
        let start = index + found;
        let run = text[start..].chars().take_while(|c| *c == '`').count();
        if run == length {
            return Some(start);
        }
        index = start + run;
    }
    None
}

/// The code spans of `prose` (a line break inside one reads as a space, as in CommonMark) and
/// the text outside them.
fn split_code_spans(prose: &str) -> (Vec<String>, String) {
    let mut spans = Vec::new();
    let mut outside = String::new();
    let mut rest = prose;
    while let Some(start) = rest.find('`') {
        outside.push_str(&rest[..start]);
        let run = rest[start..].chars().take_while(|c| *c == '`').count();
        let after = &rest[start + run..];
        if let Some(end) = backtick_run(after, run) {
            spans.push(after[..end].replace('\n', " ").trim().to_string());
            rest = &after[end + run..];
        } else {
            outside.push_str(&rest[start..start + run]);
            rest = after;
        }
    }
    outside.push_str(rest);
    (spans, outside)
}

/// Targets of inline links (`[text](target)`), outside code spans.
fn link_targets(prose: &str) -> Vec<String> {
    split_code_spans(prose)
        .1
        .split("](")
        .skip(1)
        .filter_map(|after| after.split_once(')').map(|(target, _)| target.trim().to_string()))
        .collect()
}

/// The document's sections in order. A fence left open at the end is an error naming its line:
/// everything after it would otherwise be read as code and the comparison would mean nothing.
fn outline(name: &str, markdown: &str) -> Result<Vec<Section>, String> {
    let mut sections = vec![Section {
        line: 0,
        level: 0,
        title: String::new(),
        code_blocks: Vec::new(),
        list_items: 0,
        code_spans: Vec::new(),
        link_targets: Vec::new(),
        prose: String::new(),
    }];
    let mut open: Option<OpenFence> = None;
    for (index, line) in markdown.lines().enumerate() {
        let number = index + 1;
        let section = sections
            .last_mut()
            .expect("the section before the first heading is always there");
        if let Some(fence_open) = open.take() {
            match fence(line) {
                Some((marker, length, "")) if marker == fence_open.marker && length >= fence_open.length => {
                    section.code_blocks.push(fence_open.block);
                }
                _ => {
                    let mut fence_open = fence_open;
                    fence_open.block.body.push_str(line);
                    fence_open.block.body.push('\n');
                    open = Some(fence_open);
                }
            }
        } else if let Some((marker, length, info)) = fence(line) {
            open = Some(OpenFence {
                marker,
                length,
                block: CodeBlock {
                    line: number,
                    info: info.to_string(),
                    body: String::new(),
                },
            });
        } else if let Some((level, title)) = heading(line) {
            sections.push(Section {
                line: number,
                level,
                title: title.to_string(),
                code_blocks: Vec::new(),
                list_items: 0,
                code_spans: Vec::new(),
                link_targets: Vec::new(),
                prose: String::new(),
            });
        } else {
            section.list_items += usize::from(is_list_item(line));
            section.prose.push_str(line);
            section.prose.push('\n');
        }
    }
    if let Some(fence_open) = open {
        return Err(format!(
            "{name}: the code block opened at line {} is never closed",
            fence_open.block.line
        ));
    }
    for section in &mut sections {
        section.code_spans = split_code_spans(&section.prose).0;
        section.code_spans.sort();
        section.link_targets = link_targets(&section.prose);
        section.link_targets.sort();
    }
    Ok(sections)
}

/// The links between the two READMEs are the one place their links may differ.
fn without_language_links(mut section: Section) -> Section {
    section
        .link_targets
        .retain(|target| target != ENGLISH && target != CHINESE);
    section
}

/// `Ok` when the translation has README.md's shape; otherwise the first section, in document
/// order, where they part, named in both files, and how they differ.
fn compare(english: &str, chinese: &str) -> Result<(), String> {
    let english_sections: Vec<Section> = outline(ENGLISH, english)?
        .into_iter()
        .map(without_language_links)
        .collect();
    let chinese_sections: Vec<Section> = outline(CHINESE, chinese)?
        .into_iter()
        .map(without_language_links)
        .collect();
    for (position, pair) in english_sections.iter().zip(&chinese_sections).enumerate() {
        let (ours, theirs) = pair;
        let part = |how: String| {
            Err(format!(
                "{CHINESE} is out of step with {ENGLISH} at {ENGLISH}'s section {ours}, section {position} of each \
                 ({CHINESE} has {theirs} there): {how}"
            ))
        };
        if ours.level != theirs.level {
            return part(format!(
                "heading level {} in {ENGLISH}, {} in {CHINESE}",
                ours.level, theirs.level
            ));
        }
        if ours.code_blocks.len() != theirs.code_blocks.len() {
            return part(format!(
                "{} fenced code blocks in {ENGLISH}, {} in {CHINESE}",
                ours.code_blocks.len(),
                theirs.code_blocks.len()
            ));
        }
        for (block, translated) in ours.code_blocks.iter().zip(&theirs.code_blocks) {
            if block.info != translated.info || block.body != translated.body {
                let first_difference = block
                    .body
                    .lines()
                    .zip(translated.body.lines())
                    .find(|(a, b)| a != b)
                    .map_or_else(
                        || "their lengths differ".to_string(),
                        |(a, b)| format!("{ENGLISH} has {a:?} where {CHINESE} has {b:?}"),
                    );
                return part(format!(
                    "the code block at {ENGLISH} line {} (```{}) differs from the one at {CHINESE} line {} (```{}): {}",
                    block.line, block.info, translated.line, translated.info, first_difference
                ));
            }
        }
        if ours.code_spans != theirs.code_spans {
            let only = |these: &[String], those: &[String]| -> Vec<String> {
                let mut left: Vec<String> = those.to_vec();
                these
                    .iter()
                    .filter(|span| match left.iter().position(|other| other == *span) {
                        Some(found) => {
                            left.swap_remove(found);
                            false
                        }
                        None => true,
                    })
                    .cloned()
                    .collect()
            };
            return part(format!(
                "inline code only in {ENGLISH}: {:?}; only in {CHINESE}: {:?}",
                only(&ours.code_spans, &theirs.code_spans),
                only(&theirs.code_spans, &ours.code_spans)
            ));
        }
        if ours.list_items != theirs.list_items {
            return part(format!(
                "{} list items in {ENGLISH}, {} in {CHINESE}",
                ours.list_items, theirs.list_items
            ));
        }
        if ours.link_targets != theirs.link_targets {
            return part(format!(
                "links to {:?} in {ENGLISH}, to {:?} in {CHINESE}",
                ours.link_targets, theirs.link_targets
            ));
        }
    }
    match english_sections.len().cmp(&chinese_sections.len()) {
        std::cmp::Ordering::Greater => Err(format!(
            "{ENGLISH}'s section {} has no counterpart in {CHINESE}, which ends before it",
            english_sections[chinese_sections.len()]
        )),
        std::cmp::Ordering::Less => Err(format!(
            "{CHINESE}'s section {} has no counterpart in {ENGLISH}, which ends before it",
            chinese_sections[english_sections.len()]
        )),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

fn read(name: &str) -> String {
    let path = workspace_root().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}

/// Whether one of the first lines of `markdown` links to `target`.
fn links_near_top(markdown: &str, target: &str) -> bool {
    markdown
        .lines()
        .take(5)
        .any(|line| link_targets(line).iter().any(|found| found == target))
}

#[test]
fn readme_zh_cn_has_the_structure_and_commands_of_readme() {
    let english = read(ENGLISH);
    let chinese = read(CHINESE);
    assert!(
        links_near_top(&english, CHINESE),
        "{ENGLISH} links to {CHINESE} in its first five lines"
    );
    assert!(
        links_near_top(&chinese, ENGLISH),
        "{CHINESE} links back to {ENGLISH} in its first five lines"
    );
    if let Err(difference) = compare(&english, &chinese) {
        panic!(
            "{difference}\nTranslate the change into {CHINESE}; code blocks stay exactly as in {ENGLISH}."
        );
    }
}

/// The check fails, naming the section, when README.md gains a section the translation lacks.
#[test]
fn a_section_added_to_readme_only_is_named() {
    let english = read(ENGLISH);
    let chinese = read(CHINESE);
    let documentation = english
        .find("\n## Documentation")
        .expect("README.md has a Documentation section");
    let with_code = format!(
        "{}\n## Upgrading\n\nStop serve, replace the binary:\n\n```sh\ndriftless serve\n```\n{}",
        &english[..documentation],
        &english[documentation..]
    );
    let difference =
        compare(&with_code, &chinese).expect_err("a section with a code block only in README.md");
    assert!(difference.contains("`## Upgrading`"), "{difference}");
    assert!(
        difference.contains("0 fenced code blocks") || difference.contains("1 fenced code blocks"),
        "{difference}"
    );

    let at_the_end = format!("{english}\n## Upgrading\n\nStop serve, replace the binary.\n");
    let difference = compare(&at_the_end, &chinese).expect_err("a last section only in README.md");
    assert!(
        difference.contains("`## Upgrading`") && difference.contains("no counterpart"),
        "{difference}"
    );
}

#[test]
fn a_changed_command_or_a_missing_list_item_is_named() {
    let english = "# t\n\n## Using it\n\n- one\n- two\n\n```sh\ndriftless status\n```\n";
    let same = "# t\n\n## 使用\n\n- 一\n- 二\n\n```sh\ndriftless status\n```\n";
    assert_eq!(compare(english, same), Ok(()));

    let other_command = same.replace("driftless status", "driftless --config x status");
    let difference = compare(english, &other_command).expect_err("a command changed in one file only");
    assert!(
        difference.contains("`## Using it`") && difference.contains("driftless status"),
        "{difference}"
    );

    let one_item = same.replace("- 二\n", "");
    let difference = compare(english, &one_item).expect_err("a list item missing from the translation");
    assert!(
        difference.contains("2 list items in README.md, 1 in README.zh-CN.md"),
        "{difference}"
    );

    let english_flag = english.replace("- two", "- two, with `--prune`");
    let translated_flag = same.replace("- 二", "- 二，带 `--修剪`");
    let difference = compare(&english_flag, &translated_flag).expect_err("a flag translated");
    assert!(
        difference
            .contains(r#"inline code only in README.md: ["--prune"]; only in README.zh-CN.md: ["--修剪"]"#),
        "{difference}"
    );
    let kept_flag = same.replace("- 二", "- 二，带 `--prune`");
    assert_eq!(compare(&english_flag, &kept_flag), Ok(()));

    let other_level = same.replace("## 使用", "### 使用");
    let difference = compare(english, &other_level).expect_err("a heading one level deeper");
    assert!(
        difference.contains("heading level 2 in README.md, 3"),
        "{difference}"
    );
}

#[test]
fn comments_in_code_blocks_are_not_headings_and_open_fences_are_errors() {
    let markdown =
        "# t\n\n````yaml\n# a comment\nkey: value\n```\n````\n\n## next\n[a](docs/x.md) `[b](not-a-link)`\n";
    let sections = outline("x.md", markdown).expect("closed fences");
    let titles: Vec<&str> = sections.iter().map(|section| section.title.as_str()).collect();
    assert_eq!(titles, ["", "t", "next"]);
    assert_eq!(sections[1].code_blocks[0].body, "# a comment\nkey: value\n```\n");
    assert_eq!(sections[2].link_targets, ["docs/x.md"]);

    let wrapped = outline(
        "x.md",
        "# t\nrun `sops --encrypt\nsecret.yaml`, then ``a ` b``.\n",
    )
    .expect("no fence");
    assert_eq!(wrapped[1].code_spans, ["a ` b", "sops --encrypt secret.yaml"]);

    let error = outline("x.md", "# t\n```sh\nls\n").expect_err("a fence never closed");
    assert_eq!(error, "x.md: the code block opened at line 2 is never closed");
}

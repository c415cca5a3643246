//! Documents as SOPS sees them: mappings keep their order (the MAC hashes leaves in document
//! order), scalars keep the type the format's parser gave them (the MAC hashes typed values), and
//! nothing is deduplicated or merged.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

/// One node of a document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML or JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        // sops (Go) cannot hold integers above i64 either: such files do not exist.
        i64::try_from(v)
            .map(Node::Int)
            .map_err(|_| E::custom(format!("integer {v} is too large")))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let Node::Str(key) = key else {
                return Err(de::Error::custom("a mapping key is not a string"));
            };
            entries.push((key, map.next_value()?));
        }
        Ok(Node::Map(entries))
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => serializer.serialize_unit(),
            Node::Bool(v) => serializer.serialize_bool(*v),
            Node::Int(v) => serializer.serialize_i64(*v),
            Node::Float(v) => serializer.serialize_f64(*v),
            Node::Str(v) => serializer.serialize_str(v),
            Node::Seq(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

impl Node {
    /// The value of `key` in a mapping.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Removes every entry `key` of a mapping, returning the first.
    pub(crate) fn remove(&mut self, key: &str) -> Option<Node> {
        let Node::Map(entries) = self else {
            return None;
        };
        let mut removed = None;
        entries.retain_mut(|(k, v)| {
            if k == key {
                removed.get_or_insert(std::mem::replace(v, Node::Null));
                false
            } else {
                true
            }
        });
        removed
    }

    /// As JSON; integral floats of JSON files become integers again, as Go's encoder writes them.
    pub(crate) fn into_json(self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(v) => Value::Bool(v),
            Node::Int(v) => Value::from(v),
            #[allow(clippy::cast_possible_truncation, clippy::float_cmp)]
            Node::Float(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => Value::from(v as i64),
            Node::Float(v) => serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number),
            Node::Str(v) => Value::String(v),
            Node::Seq(items) => Value::Array(items.into_iter().map(Node::into_json).collect()),
            Node::Map(entries) => {
                Value::Object(entries.into_iter().map(|(k, v)| (k, v.into_json())).collect())
            }
        }
    }

    /// From JSON (for metadata rebuilt from dotenv lines).
    pub(crate) fn from_json(value: Value) -> Node {
        match value {
            Value::Null => Node::Null,
            Value::Bool(v) => Node::Bool(v),
            Value::Number(n) => n
                .as_i64()
                .map_or_else(|| Node::Float(n.as_f64().unwrap_or(f64::NAN)), Node::Int),
            Value::String(v) => Node::Str(v),
            Value::Array(items) => Node::Seq(items.into_iter().map(Node::from_json).collect()),
            Value::Object(map) => Node::Map(map.into_iter().map(|(k, v)| (k, Node::from_json(v))).collect()),
        }
    }
}

/// YAML as sops 3.11 (go-yaml v3) reads it: YAML 1.2 booleans only, `0644` octal, `<<` an
/// ordinary key, duplicate keys an error, and bounds against alias bombs and deep nesting.
fn yaml_options(max_documents: usize) -> serde_saphyr::Options {
    serde_saphyr::options! {
        legacy_octal_numbers: true,
        strict_booleans: true,
        merge_keys: serde_saphyr::MergeKeyPolicy::AsOrdinary,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        non_finite_float_policy: serde_saphyr::NonFiniteFloatPolicy::PassThrough,
        budget: serde_saphyr::budget! {
            max_aliases: 10_000,
            max_anchors: 10_000,
            max_depth: 256,
            max_documents: max_documents,
        },
    }
}

/// Why a file is not valid in its format, or its plaintext cannot be written back in it (in
/// [`crate::DecryptError::Parse`], which names the format).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not UTF-8 text")]
    NotUtf8,
    /// The YAML or JSON parser's message (for YAML its first line: the rest quotes the file).
    #[error("{message}")]
    Syntax { message: String },
    #[error("line {line}: not KEY=VALUE")]
    NotKeyValue { line: usize },
    #[error("a document must be a mapping")]
    NotAMapping,
    /// The serialiser's message, writing plaintext back in the file's format.
    #[error("{message}")]
    Serialise { message: String },
}

fn syntax(message: impl Into<String>) -> ParseError {
    ParseError::Syntax {
        message: message.into(),
    }
}

pub(crate) fn parse_yaml(text: &str, max_documents: usize) -> Result<Vec<Node>, ParseError> {
    serde_saphyr::from_multiple_with_options(text, yaml_options(max_documents))
        .map_err(|err| syntax(err.to_string().lines().next().unwrap_or_default()))
}

pub(crate) fn parse_json(text: &str) -> Result<Node, ParseError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let node = Node::deserialize(&mut deserializer).map_err(|err| syntax(err.to_string()))?;
    deserializer.end().map_err(|err| syntax(err.to_string()))?;
    Ok(node)
}

pub(crate) fn to_yaml(documents: &[Node]) -> Result<String, ParseError> {
    let mut out = String::new();
    for (index, document) in documents.iter().enumerate() {
        if index > 0 {
            out.push_str("---\n");
        }
        out.push_str(
            &serde_saphyr::to_string(document).map_err(|err| ParseError::Serialise {
                message: err.to_string(),
            })?,
        );
    }
    Ok(out)
}

/// One line of a dotenv file as sops 3.11 reads it: no quoting, no trimming, `\n` is a newline.
pub(crate) enum DotenvLine {
    Comment,
    Pair(String, String),
}

pub(crate) fn parse_dotenv(text: &str) -> Result<Vec<DotenvLine>, ParseError> {
    let mut lines = Vec::new();
    for (number, line) in text.split('\n').enumerate() {
        // sops keeps a CR, which then breaks its own timestamps; dropping it is kinder and changes
        // no value a sops-written (LF-only) file can hold.
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line.starts_with('#') {
            lines.push(DotenvLine::Comment);
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(ParseError::NotKeyValue { line: number + 1 });
        };
        lines.push(DotenvLine::Pair(key.to_owned(), value.replace("\\n", "\n")));
    }
    Ok(lines)
}

/// Why a dotenv file's `sops_*` line does not fit the metadata (names the line's key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataKeyError {
    #[error("metadata key sops_{key}: bad list index")]
    BadIndex { key: String },
    #[error("metadata key sops_{key}: list index too large")]
    IndexTooLarge { key: String },
    #[error("metadata key sops_{key}: cannot be read")]
    Unreadable { key: String },
    #[error("metadata key sops_{key}: conflicts with another")]
    Conflict { key: String },
}

/// Rebuilds the metadata of a dotenv file from its `sops_*` lines: `sops_age__list_0__map_enc`
/// is `age[0].enc` (sops' flattening).
pub(crate) fn unflatten(pairs: &[(String, String)]) -> Result<Node, MetadataKeyError> {
    let mut root = Value::Object(serde_json::Map::new());
    for (key, value) in pairs {
        let mut path: Vec<PathStep> = Vec::new();
        let mut rest = key.as_str();
        let first_end = rest.find("__").unwrap_or(rest.len());
        path.push(PathStep::Key(rest[..first_end].to_owned()));
        rest = &rest[first_end..];
        while !rest.is_empty() {
            let (step, remainder) = if let Some(after) = rest.strip_prefix("__list_") {
                let end = after.find("__").unwrap_or(after.len());
                let index = after[..end]
                    .parse::<usize>()
                    .map_err(|_| MetadataKeyError::BadIndex { key: key.clone() })?;
                if index > 1_000 {
                    return Err(MetadataKeyError::IndexTooLarge { key: key.clone() });
                }
                (PathStep::Index(index), &after[end..])
            } else if let Some(after) = rest.strip_prefix("__map_") {
                let end = after.find("__").unwrap_or(after.len());
                (PathStep::Key(after[..end].to_owned()), &after[end..])
            } else {
                return Err(MetadataKeyError::Unreadable { key: key.clone() });
            };
            path.push(step);
            rest = remainder;
        }
        insert(&mut root, &path, Value::String(value.clone()))
            .map_err(|()| MetadataKeyError::Conflict { key: key.clone() })?;
    }
    Ok(Node::from_json(root))
}

enum PathStep {
    Key(String),
    Index(usize),
}

fn insert(target: &mut Value, path: &[PathStep], value: Value) -> Result<(), ()> {
    let Some((step, rest)) = path.split_first() else {
        *target = value;
        return Ok(());
    };
    let child = match step {
        PathStep::Key(key) => {
            if target.is_null() {
                *target = Value::Object(serde_json::Map::new());
            }
            let Value::Object(map) = target else {
                return Err(());
            };
            map.entry(key.clone()).or_insert(Value::Null)
        }
        PathStep::Index(index) => {
            if target.is_null() {
                *target = Value::Array(Vec::new());
            }
            let Value::Array(items) = target else {
                return Err(());
            };
            if items.len() <= *index {
                items.resize(index + 1, Value::Null);
            }
            &mut items[*index]
        }
    };
    insert(child, rest, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_keeps_order_types_and_merge_keys_and_refuses_duplicates() {
        let docs = parse_yaml(
            "b: 1\na: true\nc: yes\nd: 0644\ne: 1.50\nf: '8080'\n<<: {x: 1}\n",
            10,
        )
        .expect("parses");
        let Node::Map(entries) = &docs[0] else {
            panic!("a mapping")
        };
        let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a", "c", "d", "e", "f", "<<"]);
        assert_eq!(docs[0].get("a"), Some(&Node::Bool(true)));
        assert_eq!(
            docs[0].get("c"),
            Some(&Node::Str("yes".into())),
            "YAML 1.2 booleans only"
        );
        assert_eq!(
            docs[0].get("d"),
            Some(&Node::Int(420)),
            "legacy octal, as go-yaml v3"
        );
        assert_eq!(docs[0].get("e"), Some(&Node::Float(1.5)));
        assert_eq!(docs[0].get("f"), Some(&Node::Str("8080".into())));
        assert!(parse_yaml("a: 1\na: 2\n", 10).is_err(), "duplicate keys");
    }

    #[test]
    fn json_keeps_duplicate_keys_in_order() {
        let node = parse_json(r#"{"a": 1, "b": 2, "a": 3}"#).expect("parses");
        let Node::Map(entries) = node else {
            panic!("a mapping")
        };
        assert_eq!(entries.len(), 3);
        assert!(parse_json("{} trailing").is_err());
    }

    #[test]
    fn dotenv_metadata_unflattens() {
        let pairs = vec![
            ("age__list_0__map_recipient".to_owned(), "age1x".to_owned()),
            ("age__list_0__map_enc".to_owned(), "line1\nline2".to_owned()),
            ("lastmodified".to_owned(), "2025-01-01T00:00:00Z".to_owned()),
        ];
        let node = unflatten(&pairs).expect("unflattens").into_json();
        assert_eq!(node["age"][0]["recipient"], "age1x");
        assert_eq!(node["age"][0]["enc"], "line1\nline2");
        assert_eq!(node["lastmodified"], "2025-01-01T00:00:00Z");
        assert!(unflatten(&[("age__list_99999999__map_enc".to_owned(), String::new())]).is_err());
    }
}

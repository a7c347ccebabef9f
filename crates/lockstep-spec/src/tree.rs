//! A YAML document as a tree whose every node knows its line and column.
//!
//! `serde_yaml` cannot tell where a value was written, so the loaders read the text once with
//! `yaml-rust2`'s marked event parser into [`Node`]s, validate on those (every error positioned),
//! and hand typed sub-trees to `serde_yaml` through [`Node::to_value`].

use std::collections::HashMap;
use std::hash::BuildHasher as _;
use std::rc::Rc;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::diag::{Diagnostic, Diagnostics, Pos, SourceFile};

/// One YAML node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub pos: Pos,
    /// The tag as written (`!vault`), if any.
    pub tag: Option<String>,
    pub kind: Kind,
}

/// What a node is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// A scalar; `plain` when written without quotes (so `~`, `null`, `true`, numbers are typed).
    Scalar {
        value: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The scalar's text, if the node is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Whether the node is YAML null (`~`, `null`, empty).
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { value, plain: true }
            if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// The node's entries if it is a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The node's entries, taken, if it is a mapping; else the node back.
    pub fn into_map(self) -> Result<Vec<(Node, Node)>, Node> {
        match self.kind {
            Kind::Map(m) => Ok(m),
            _ => Err(self),
        }
    }

    /// The node's items if it is a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The value under key `k` of a mapping.
    pub fn get(&self, k: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(key, _)| key.as_str() == Some(k))
            .map(|(_, v)| v)
    }

    /// What the node is, for messages (`a mapping`).
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar { .. } if self.is_null() => "nothing",
            Kind::Scalar { .. } => "a scalar",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// A plain `true`/`false` (YAML 1.1 spellings Ansible accepts too).
    pub fn as_bool(&self) -> Option<bool> {
        match &self.kind {
            Kind::Scalar { value, plain: true } => match value.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" => Some(true),
                "false" | "no" | "off" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// The node converted for `serde_yaml` (plain scalars typed as YAML 1.2 core does).
    pub fn to_value(&self) -> serde_yaml::Value {
        use serde_yaml::Value;
        match &self.kind {
            Kind::Scalar { value, plain } => {
                if !plain {
                    return Value::String(value.clone());
                }
                if self.is_null() {
                    return Value::Null;
                }
                match value.as_str() {
                    "true" | "True" | "TRUE" => return Value::Bool(true),
                    "false" | "False" | "FALSE" => return Value::Bool(false),
                    _ => {}
                }
                if let Ok(i) = value.parse::<i64>() {
                    return Value::Number(i.into());
                }
                if let Ok(u) = value.parse::<u64>() {
                    return Value::Number(u.into());
                }
                Value::String(value.clone())
            }
            Kind::Seq(items) => Value::Sequence(items.iter().map(Node::to_value).collect()),
            Kind::Map(entries) => Value::Mapping(
                entries
                    .iter()
                    .map(|(k, v)| (k.to_value(), v.to_value()))
                    .collect(),
            ),
        }
    }

    /// The node as the text a template or host variable sees: scalars as written, anything else
    /// in YAML flow form.
    pub fn to_text(&self) -> String {
        match &self.kind {
            Kind::Scalar { value, .. } => value.clone(),
            _ => serde_yaml::to_string(&self.to_value())
                .unwrap_or_default()
                .trim_end()
                .to_owned(),
        }
    }
}

/// Parses one YAML document; an empty text is an empty mapping. Syntax errors carry the parser's
/// position.
pub(crate) fn parse(file: &SourceFile) -> Result<Node, Diagnostics> {
    let name: Rc<str> = Rc::from(file.path.as_str());
    if let Some(i) = file.text.find('\0') {
        let before = &file.text[..i];
        return Err(Diagnostics(vec![Diagnostic {
            file: file.path.clone(),
            line: before.matches('\n').count() + 1,
            col: before.rsplit('\n').next().unwrap_or("").chars().count() + 1,
            message: "a NUL byte is not allowed in the text".into(),
        }]));
    }
    let mut builder = Builder {
        file: name.clone(),
        stack: Vec::new(),
        anchors: HashMap::new(),
        docs: Vec::new(),
        errors: Vec::new(),
        nodes: 0,
        budget: MAX_ALIAS_NODES.max(file.text.len() / 2),
        exhausted: false,
    };
    let mut parser = Parser::new_from_str(&file.text);
    if let Err(e) = parser.load(&mut builder, true) {
        let m = e.marker();
        return Err(Diagnostics(vec![Diagnostic {
            file: file.path.clone(),
            line: m.line().max(1),
            col: m.col() + 1,
            message: format!("malformed YAML: {}", e.info()),
        }]));
    }
    if !builder.errors.is_empty() {
        return Err(Diagnostics(builder.errors));
    }
    let mut docs = builder.docs;
    if docs.len() > 1 {
        let second = &docs[1];
        return Err(Diagnostics(vec![Diagnostic {
            file: file.path.clone(),
            line: second.pos.line,
            col: second.pos.col,
            message: "more than one YAML document in the file".into(),
        }]));
    }
    Ok(docs.pop().unwrap_or_else(|| Node {
        pos: Pos {
            file: name,
            line: 1,
            col: 1,
        },
        tag: None,
        kind: Kind::Map(Vec::new()),
    }))
}

/// How many nodes aliases (`*name`) may add to a document in all, at least: each alias copies
/// its anchor's whole sub-tree, so a few lines ("billion laughs") could otherwise ask for
/// billions of nodes. A larger text gets a budget of half its length.
pub(crate) const MAX_ALIAS_NODES: usize = 200_000;

enum Frame {
    /// The sequence, its anchor, the node count when it started.
    Seq(Node, usize, usize),
    /// The mapping, its anchor, a key waiting for its value, keys brought in by merge keys, the
    /// node count when it started.
    Map(Node, usize, Option<Node>, Vec<String>, usize, KeyIndex),
}

/// Finds a mapping's keys for the duplicate check: a scan while the mapping is small (most are:
/// a host's few variables), then a table from each key's hash to its entry once it is large (a
/// group of 40,000 hosts), so that reading stays linear without copying any key.
#[derive(Default)]
struct KeyIndex(
    Option<(
        foldhash::fast::RandomState,
        HashMap<u64, usize, foldhash::fast::RandomState>,
    )>,
);

/// Entries beyond which a mapping's keys are hashed.
const KEY_SCAN_LIMIT: usize = 16;

impl KeyIndex {
    /// The first entry whose key is the string `t`.
    fn find(&self, entries: &[(Node, Node)], t: &str) -> Option<usize> {
        let same = |i: &usize| entries[*i].0.as_str() == Some(t);
        match &self.0 {
            // Two keys with one hash (unlikely with a random seed): a scan settles it.
            Some((seed, m)) => match m.get(&seed.hash_one(t)) {
                Some(i) if same(i) => Some(*i),
                Some(_) => (0..entries.len()).find(same),
                None => None,
            },
            None => (0..entries.len()).find(same),
        }
    }

    /// Records the entry just pushed (a key not yet present).
    fn pushed(&mut self, entries: &[(Node, Node)]) {
        match &mut self.0 {
            Some((seed, m)) => {
                let i = entries.len() - 1;
                if let Some(t) = entries[i].0.as_str() {
                    m.entry(seed.hash_one(t)).or_insert(i);
                }
            }
            None if entries.len() > KEY_SCAN_LIMIT => self.rebuild(entries),
            None => {}
        }
    }

    /// Indexes `entries` afresh (after a merge key), if they are many.
    fn rebuild(&mut self, entries: &[(Node, Node)]) {
        self.0 = (entries.len() > KEY_SCAN_LIMIT).then(|| {
            let seed = foldhash::fast::RandomState::default();
            let mut m = HashMap::with_capacity_and_hasher(entries.len() * 2, Default::default());
            for (i, (k, _)) in entries.iter().enumerate() {
                if let Some(t) = k.as_str() {
                    m.entry(seed.hash_one(t)).or_insert(i);
                }
            }
            (seed, m)
        });
    }
}

struct Builder {
    file: Rc<str>,
    stack: Vec<Frame>,
    /// Each anchored node and how many nodes it holds.
    anchors: HashMap<usize, (Node, usize)>,
    docs: Vec<Node>,
    errors: Vec<Diagnostic>,
    /// Nodes built so far (aliases count the nodes they copy).
    nodes: usize,
    /// Nodes aliases may still add.
    budget: usize,
    /// The alias budget ran out: every further event is ignored.
    exhausted: bool,
}

impl Builder {
    fn pos(&self, m: Marker) -> Pos {
        Pos {
            file: self.file.clone(),
            line: m.line().max(1),
            col: m.col() + 1,
        }
    }

    fn push_node(&mut self, node: Node, anchor: usize, size: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(seq, _, _)) => {
                if let Kind::Seq(items) = &mut seq.kind {
                    if items.is_empty() && before(&node.pos, &seq.pos) {
                        seq.pos = node.pos.clone();
                    }
                    items.push(node);
                }
            }
            Some(Frame::Map(map, _, pending, merged, _, index)) => match pending.take() {
                None => {
                    // The parser marks a block mapping after its first key: start it at the key.
                    if matches!(&map.kind, Kind::Map(e) if e.is_empty())
                        && before(&node.pos, &map.pos)
                    {
                        map.pos = node.pos.clone();
                    }
                    *pending = Some(node)
                }
                Some(key) => {
                    if let Kind::Map(entries) = &mut map.kind {
                        // Only a plain `<<` is a merge key; `"<<"` is an ordinary (odd) key.
                        let merge_key = matches!(&key.kind, Kind::Scalar { value, plain: true } if value == "<<");
                        if merge_key && key.tag.is_none() {
                            merged.extend(merge_into(entries, &node));
                            index.rebuild(entries);
                        } else if let Some(slot) = key
                            .as_str()
                            .and_then(|t| index.find(entries, t))
                            .map(|i| &mut entries[i])
                        {
                            let name = key.as_str().unwrap_or_default();
                            if let Some(i) = merged.iter().position(|m| m == name) {
                                // A key written here overrides one brought in by a merge key.
                                merged.remove(i);
                                *slot = (key, node);
                            } else {
                                self.errors.push(Diagnostic {
                                    file: key.pos.file.to_string(),
                                    line: key.pos.line,
                                    col: key.pos.col,
                                    message: format!(
                                        "duplicate key `{}` (first at line {})",
                                        name.escape_debug(),
                                        slot.0.pos.line
                                    ),
                                });
                            }
                        } else {
                            entries.push((key, node));
                            index.pushed(entries);
                        }
                    }
                }
            },
        }
    }
}

fn before(a: &Pos, b: &Pos) -> bool {
    (a.line, a.col) < (b.line, b.col)
}

/// YAML merge keys (`<<: *defaults`): keys already present win. Returns the keys brought in.
fn merge_into(entries: &mut Vec<(Node, Node)>, from: &Node) -> Vec<String> {
    let mut added = Vec::new();
    let sources: Vec<&Node> = match &from.kind {
        Kind::Seq(items) => items.iter().collect(),
        _ => vec![from],
    };
    for src in sources {
        if let Kind::Map(m) = &src.kind {
            for (k, v) in m {
                if !entries.iter().any(|(ek, _)| ek.as_str() == k.as_str()) {
                    added.push(k.as_str().unwrap_or_default().to_owned());
                    entries.push((k.clone(), v.clone()));
                }
            }
        }
    }
    added
}

fn tag_text(tag: Option<yaml_rust2::parser::Tag>) -> Option<String> {
    tag.map(|t| format!("{}{}", t.handle, t.suffix))
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.exhausted {
            return;
        }
        match ev {
            Event::Scalar(value, style, anchor, tag) => {
                let node = Node {
                    pos: self.pos(mark),
                    tag: tag_text(tag),
                    kind: Kind::Scalar {
                        value,
                        plain: style == TScalarStyle::Plain,
                    },
                };
                self.nodes += 1;
                self.push_node(node, anchor, 1);
            }
            Event::SequenceStart(anchor, tag) => {
                let node = Node {
                    pos: self.pos(mark),
                    tag: tag_text(tag),
                    kind: Kind::Seq(Vec::new()),
                };
                self.nodes += 1;
                self.stack.push(Frame::Seq(node, anchor, self.nodes));
            }
            Event::MappingStart(anchor, tag) => {
                let node = Node {
                    pos: self.pos(mark),
                    tag: tag_text(tag),
                    kind: Kind::Map(Vec::new()),
                };
                self.nodes += 1;
                self.stack.push(Frame::Map(
                    node,
                    anchor,
                    None,
                    Vec::new(),
                    self.nodes,
                    KeyIndex::default(),
                ));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor, start) = match self.stack.pop() {
                    Some(Frame::Seq(n, a, s)) | Some(Frame::Map(n, a, _, _, s, _)) => (n, a, s),
                    None => return,
                };
                let size = self.nodes + 1 - start;
                self.push_node(node, anchor, size);
            }
            Event::Alias(id) => {
                let (node, size) = self.anchors.get(&id).cloned().unwrap_or((
                    Node {
                        pos: self.pos(mark),
                        tag: None,
                        kind: Kind::Scalar {
                            value: String::new(),
                            plain: true,
                        },
                    },
                    1,
                ));
                if size > self.budget {
                    let pos = self.pos(mark);
                    self.errors.push(Diagnostic {
                        file: pos.file.to_string(),
                        line: pos.line,
                        col: pos.col,
                        message: format!(
                            "aliases expand to more than {} nodes (an alias bomb?); write the \
                             values out or use fewer nested aliases",
                            MAX_ALIAS_NODES
                        ),
                    });
                    self.exhausted = true;
                    return;
                }
                self.budget -= size;
                self.nodes += size;
                self.push_node(node, 0, size);
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Node {
        parse(&SourceFile::new("t.yml", text)).unwrap()
    }

    #[test]
    fn positions_are_one_based() {
        let n = p("a:\n  b: hello\n  c: [1, 'x']\n");
        let b = n.get("a").unwrap().get("b").unwrap();
        assert_eq!((b.pos.line, b.pos.col), (2, 6));
        let c = n.get("a").unwrap().get("c").unwrap().as_seq().unwrap();
        assert_eq!((c[1].pos.line, c[1].pos.col), (3, 10));
        assert_eq!(c[1].to_value(), serde_yaml::Value::String("x".into()));
    }

    #[test]
    fn anchors_and_merge_keys() {
        let n = p("d: &d {x: 1, y: 2}\ne:\n  <<: *d\n  y: 3\n");
        let e = n.get("e").unwrap();
        assert_eq!(e.get("x").unwrap().as_str(), Some("1"));
        assert_eq!(e.get("y").unwrap().as_str(), Some("3"));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = parse(&SourceFile::new("t.yml", "a: 1\nb: 2\na: 3\n")).unwrap_err();
        assert_eq!((e.0[0].line, e.0[0].col), (3, 1));
        assert!(e.0[0]
            .message
            .contains("duplicate key `a` (first at line 1)"));
    }

    #[test]
    fn alias_bombs_stop_at_the_budget() {
        let mut y = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            y.push_str(&format!(
                "a{i}: &a{i} [{}]\n",
                vec![format!("*a{}", i - 1); 10].join(", ")
            ));
        }
        let e = parse(&SourceFile::new("bomb.yml", y)).unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert!(
            e.0[0].message.contains("aliases expand to more than"),
            "{e}"
        );
        // The alias that crossed the budget is named by its line.
        assert!(e.0[0].line > 1 && e.0[0].line <= 10, "{e}");
        // Aliases within the budget still work.
        assert!(parse(&SourceFile::new("ok.yml", "a: &a [1, 2]\nb: *a\n")).is_ok());
    }

    #[test]
    fn a_nul_byte_is_an_error_where_it_is() {
        let e = parse(&SourceFile::new("n.yml", "a: 1\nb: x\0: [\n")).unwrap_err();
        assert_eq!((e.0[0].line, e.0[0].col), (2, 5));
        assert!(e.0[0].message.contains("NUL"));
    }

    #[test]
    fn syntax_error_has_position() {
        let e = parse(&SourceFile::new("t.yml", "a: [1, 2\nb: c\n")).unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert!(e.0[0].message.starts_with("malformed YAML"), "{}", e);
        assert!(e.0[0].line >= 1);
    }
}

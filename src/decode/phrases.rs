//! Phrase grammars for voice commands (`--phrases FILE`): parsing, the
//! token automaton the constrained beam search walks (`command.rs`), and
//! matching a decoded text back to its phrase and number slots.
//!
//! A phrase file has one phrase per line; blank lines and lines starting
//! with `#` are skipped. Words are letters and apostrophes (upper case is
//! read as lower case); `(a b|c)` is a choice, `[a b]` is optional (both
//! nest), and `{number}` (or `{number:NAME}`) is a number slot, spoken
//! "zero" to "nine hundred (and) ninety nine", whose value is reported as
//! a slot. Errors name the line and column (1-based, in characters).
//!
//! Compilation: the phrases become a word-level automaton with empty moves,
//! which is spelled out in the model's tokens (a space token between words,
//! spaces before the first and after the last word and repeated spaces
//! allowed) and determinized, so that every decoded prefix is in exactly
//! one automaton state. Built once at start-up (allocates); `next` and
//! `accepting` are table lookups that the per-frame search calls.

use std::collections::HashMap;

use crate::error::{HarkError, Result};

/// No transition.
pub const DEAD: u32 = u32::MAX;

/// More automaton states than this is a phrase file too large to decode.
const MAX_STATES: usize = 200_000;

const UNITS: [&str; 9] = [
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];
const TEENS: [&str; 10] = [
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 8] = [
    "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

#[derive(Clone, Debug, PartialEq)]
enum Item {
    Word(String),
    Choice(Vec<Vec<Item>>),
    Optional(Vec<Item>),
    Number(String),
}

#[derive(Clone, Debug)]
struct Phrase {
    /// The line as written (trimmed), reported as `phrase`.
    source: String,
    items: Vec<Item>,
}

/// A slot's value in a matched command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    pub name: String,
    pub value: u32,
}

/// A decoded text matched to the first phrase that says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    /// Index of the phrase in the file (0-based, comments skipped).
    pub index: usize,
    /// The phrase as written in the file.
    pub phrase: String,
    pub slots: Vec<Slot>,
}

/// The compiled phrases: a deterministic automaton over the model's token
/// ids, and the phrases themselves for matching.
#[derive(Debug)]
pub struct Phrases {
    pub source: String,
    phrases: Vec<Phrase>,
    vocab: usize,
    /// `states * vocab` transitions (DEAD where none).
    next: Vec<u32>,
    accepting: Vec<bool>,
    /// Per state, the tokens with a transition (for the search's inner loop).
    out: Vec<Vec<u16>>,
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    source: &'a str,
    spellable: &'a dyn Fn(char) -> bool,
}

impl Parser<'_> {
    fn err(&self, col: usize, msg: impl std::fmt::Display) -> HarkError {
        HarkError::Config(format!("{}:{}:{}: {msg}", self.source, self.line, col + 1))
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// A sequence of items up to `)`, `|`, `]` or the end of the line.
    fn seq(&mut self) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        loop {
            self.skip_space();
            let Some(c) = self.peek() else {
                return Ok(items);
            };
            let start = self.pos;
            let item = match c {
                ')' | '|' | ']' => return Ok(items),
                '(' => {
                    self.pos += 1;
                    let mut alts = Vec::new();
                    loop {
                        let at = self.pos;
                        let alt = self.seq()?;
                        if alt.is_empty() {
                            return Err(
                                self.err(at, "empty alternative (use [...] for an optional part)")
                            );
                        }
                        alts.push(alt);
                        match self.peek() {
                            Some('|') => self.pos += 1,
                            Some(')') => {
                                self.pos += 1;
                                break;
                            }
                            Some(']') => return Err(self.err(self.pos, "expected `)`, found `]`")),
                            _ => return Err(self.err(start, "`(` is not closed")),
                        }
                    }
                    Item::Choice(alts)
                }
                '[' => {
                    self.pos += 1;
                    let at = self.pos;
                    let inner = self.seq()?;
                    match self.peek() {
                        Some(']') => self.pos += 1,
                        Some('|') => {
                            return Err(self.err(
                                self.pos,
                                "`|` outside a choice (write [(a|b)] for an optional choice)",
                            ))
                        }
                        Some(')') => return Err(self.err(self.pos, "expected `]`, found `)`")),
                        _ => return Err(self.err(start, "`[` is not closed")),
                    }
                    if inner.is_empty() {
                        return Err(self.err(at, "empty optional part `[]`"));
                    }
                    Item::Optional(inner)
                }
                '{' => {
                    self.pos += 1;
                    let from = self.pos;
                    while self.peek().is_some_and(|c| c != '}') {
                        self.pos += 1;
                    }
                    if self.peek().is_none() {
                        return Err(self.err(start, "`{` is not closed"));
                    }
                    let body: String = self.chars[from..self.pos].iter().collect();
                    self.pos += 1;
                    let (kind, name) = match body.split_once(':') {
                        Some((k, n)) => (k.trim(), n.trim()),
                        None => (body.trim(), body.trim()),
                    };
                    if kind != "number" {
                        return Err(self.err(
                            from,
                            format!("unknown slot `{{{body}}}` (the slot type is `{{number}}`)"),
                        ));
                    }
                    if name.is_empty()
                        || !name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    {
                        return Err(self.err(
                            from,
                            format!("bad slot name in `{{{body}}}` (letters, digits, `_`, `-`)"),
                        ));
                    }
                    Item::Number(name.to_string())
                }
                _ => {
                    let mut word = String::new();
                    while let Some(c) = self.peek() {
                        if c.is_whitespace() || "()[]{}|".contains(c) {
                            break;
                        }
                        let lc = c.to_ascii_lowercase();
                        if !(lc.is_ascii_lowercase() || lc == '\'') {
                            let hint = if c.is_ascii_digit() {
                                " (write numbers as words, or use {number})"
                            } else {
                                " (words are letters and apostrophes)"
                            };
                            return Err(
                                self.err(self.pos, format!("unexpected character {c:?}{hint}"))
                            );
                        }
                        if !(self.spellable)(lc) {
                            return Err(self.err(
                                self.pos,
                                format!("the model cannot spell {c:?} (it has no such token)"),
                            ));
                        }
                        word.push(lc);
                        self.pos += 1;
                    }
                    Item::Word(word)
                }
            };
            // a group must be its own word: `(a|b)c` is a mistake, not "a c"
            if !matches!(item, Item::Word(_)) {
                if let Some(c) = self.peek() {
                    if !c.is_whitespace() && !"()[]{}|".contains(c) {
                        return Err(self.err(
                            self.pos,
                            format!("expected a space before {c:?} (a group is a word of its own)"),
                        ));
                    }
                }
            }
            items.push(item);
        }
    }
}

/// Word-level automaton with empty moves.
#[derive(Default)]
struct WordNfa {
    /// Per node: (word, target), and empty moves.
    words: Vec<Vec<(String, usize)>>,
    eps: Vec<Vec<usize>>,
}

impl WordNfa {
    fn node(&mut self) -> usize {
        self.words.push(Vec::new());
        self.eps.push(Vec::new());
        self.words.len() - 1
    }

    fn word(&mut self, from: usize, w: &str, to: usize) {
        self.words[from].push((w.to_string(), to));
    }

    fn seq(&mut self, items: &[Item], from: usize, to: usize) {
        let mut at = from;
        for (i, item) in items.iter().enumerate() {
            let end = if i + 1 == items.len() {
                to
            } else {
                self.node()
            };
            match item {
                Item::Word(w) => self.word(at, w, end),
                Item::Choice(alts) => {
                    for a in alts {
                        self.seq(a, at, end);
                    }
                }
                Item::Optional(inner) => {
                    self.seq(inner, at, end);
                    self.eps[at].push(end);
                }
                Item::Number(_) => self.number(at, end),
            }
            at = end;
        }
        if items.is_empty() {
            self.eps[from].push(to);
        }
    }

    /// 1 to 99.
    fn below_hundred(&mut self, from: usize, to: usize) {
        for w in UNITS.iter().chain(TEENS.iter()) {
            self.word(from, w, to);
        }
        let tens = self.node();
        for w in TENS {
            self.word(from, w, tens);
        }
        self.eps[tens].push(to);
        for w in UNITS {
            self.word(tens, w, to);
        }
    }

    /// 0 to 999: "zero", 1-99, or "N hundred [[and] 1-99]".
    fn number(&mut self, from: usize, to: usize) {
        self.word(from, "zero", to);
        self.below_hundred(from, to);
        let (h1, h2, h3) = (self.node(), self.node(), self.node());
        for w in UNITS {
            self.word(from, w, h1);
        }
        self.word(h1, "hundred", h2);
        self.eps[h2].push(to);
        self.eps[h2].push(h3);
        self.word(h2, "and", h3);
        self.below_hundred(h3, to);
    }
}

/// The value of number words as `{number}` accepts them, None otherwise.
pub fn number_value(words: &[&str]) -> Option<u32> {
    fn below_hundred(w: &[&str]) -> Option<u32> {
        let pos = |list: &[&str], x: &str| list.iter().position(|v| *v == x).map(|i| i as u32);
        match w {
            [x] => pos(&UNITS, x)
                .map(|i| i + 1)
                .or_else(|| pos(&TEENS, x).map(|i| i + 10))
                .or_else(|| pos(&TENS, x).map(|i| 20 + 10 * i)),
            [t, u] => Some(20 + 10 * pos(&TENS, t)? + pos(&UNITS, u)? + 1),
            _ => None,
        }
    }
    match words {
        ["zero"] => Some(0),
        [u, "hundred", rest @ ..] => {
            let h = 100 * (UNITS.iter().position(|v| v == u)? as u32 + 1);
            match rest {
                [] => Some(h),
                ["and", r @ ..] if !r.is_empty() => Some(h + below_hundred(r)?),
                r => Some(h + below_hundred(r)?),
            }
        }
        w => below_hundred(w),
    }
}

impl Phrases {
    /// Parse and compile `text` (named `source` in errors) for a model whose
    /// tokens are `tokens` (blank at `blank`); each letter and the space
    /// must be a token of its own.
    pub fn compile(source: &str, text: &str, tokens: &[String], blank: usize) -> Result<Self> {
        let id_of = |c: char| {
            tokens
                .iter()
                .enumerate()
                .find(|(i, t)| *i != blank && t.chars().eq(std::iter::once(c)))
                .map(|(i, _)| i)
        };
        let space = id_of(' ').ok_or_else(|| {
            HarkError::Config(format!(
                "{source}: the model has no space token, so it cannot decode phrases"
            ))
        })?;
        let spellable = |c: char| id_of(c).is_some();
        let mut phrases = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let mut p = Parser {
                chars: line.chars().collect(),
                pos: 0,
                line: i + 1,
                source,
                spellable: &spellable,
            };
            let items = p.seq()?;
            if let Some(c) = p.peek() {
                let msg = match c {
                    ')' => "`)` without `(`",
                    ']' => "`]` without `[`",
                    _ => "`|` outside a choice (write (a|b))",
                };
                return Err(p.err(p.pos, msg));
            }
            phrases.push(Phrase {
                source: trimmed.to_string(),
                items,
            });
        }
        if phrases.is_empty() {
            return Err(HarkError::Config(format!(
                "{source}: no phrases (one per line; `#` starts a comment line)"
            )));
        }
        if phrases.iter().any(|p| has_number(&p.items)) {
            let words = UNITS.iter().chain(&TEENS).chain(&TENS);
            let missing = words
                .chain(&["zero", "hundred", "and"])
                .flat_map(|w| w.chars())
                .find(|c| !spellable(*c));
            if let Some(c) = missing {
                return Err(HarkError::Config(format!(
                    "{source}: {{number}} needs the letter {c:?}, which the model cannot spell"
                )));
            }
        }
        let mut nfa = WordNfa::default();
        let (start, end) = (nfa.node(), nfa.node());
        for p in &phrases {
            nfa.seq(&p.items, start, end);
        }
        let mut out = Phrases {
            source: source.to_string(),
            phrases,
            vocab: tokens.len(),
            next: Vec::new(),
            accepting: Vec::new(),
            out: Vec::new(),
        };
        out.determinize(&nfa, start, end, space, &id_of)?;
        Ok(out)
    }

    /// Spell the word automaton out in tokens and determinize it. Each word
    /// node n has two token-level nodes: 2n ("at a boundary": nothing or a
    /// space came last) and 2n+1 ("a word just ended": a space must come
    /// before the next word). Words run from 2n to 2m+1 through nodes of
    /// their own; spaces go 2n+1 -> 2n and 2n -> 2n.
    fn determinize(
        &mut self,
        w: &WordNfa,
        start: usize,
        end: usize,
        space: usize,
        id_of: &dyn Fn(char) -> Option<usize>,
    ) -> Result<()> {
        let n_word = w.words.len();
        let mut edges: Vec<Vec<(usize, usize)>> = vec![Vec::new(); 2 * n_word];
        let mut eps: Vec<Vec<usize>> = vec![Vec::new(); 2 * n_word];
        for n in 0..n_word {
            edges[2 * n + 1].push((space, 2 * n));
            edges[2 * n].push((space, 2 * n));
            for &m in &w.eps[n] {
                eps[2 * n].push(2 * m);
                eps[2 * n + 1].push(2 * m + 1);
            }
            for (word, m) in &w.words[n] {
                let ids: Vec<usize> = word.chars().filter_map(id_of).collect();
                let mut at = 2 * n;
                for (k, id) in ids.iter().enumerate() {
                    let to = if k + 1 == ids.len() {
                        2 * m + 1
                    } else {
                        edges.push(Vec::new());
                        eps.push(Vec::new());
                        edges.len() - 1
                    };
                    edges[at].push((*id, to));
                    at = to;
                }
            }
        }
        let finals = [2 * end, 2 * end + 1];
        let closure = |set: &mut Vec<usize>| {
            let mut i = 0;
            while i < set.len() {
                for &m in &eps[set[i]] {
                    if !set.contains(&m) {
                        set.push(m);
                    }
                }
                i += 1;
            }
            set.sort_unstable();
        };
        let mut first = vec![2 * start];
        closure(&mut first);
        let mut index: HashMap<Vec<usize>, u32> = HashMap::new();
        let mut sets = vec![first.clone()];
        index.insert(first, 0);
        let mut i = 0;
        while i < sets.len() {
            let set = sets[i].clone();
            self.accepting.push(set.iter().any(|s| finals.contains(s)));
            let row = self.next.len();
            self.next.resize(row + self.vocab, DEAD);
            let mut outs = Vec::new();
            for tok in 0..self.vocab {
                let mut to: Vec<usize> = Vec::new();
                for &s in &set {
                    for &(t, m) in &edges[s] {
                        if t == tok && !to.contains(&m) {
                            to.push(m);
                        }
                    }
                }
                if to.is_empty() {
                    continue;
                }
                closure(&mut to);
                let id = match index.get(&to) {
                    Some(id) => *id,
                    None => {
                        if sets.len() >= MAX_STATES {
                            return Err(HarkError::Config(format!(
                                "{}: the phrases need more than {MAX_STATES} automaton states; split them or use fewer choices",
                                self.source
                            )));
                        }
                        let id = sets.len() as u32;
                        sets.push(to.clone());
                        index.insert(to, id);
                        id
                    }
                };
                self.next[row + tok] = id;
                outs.push(tok as u16);
            }
            self.out.push(outs);
            i += 1;
        }
        Ok(())
    }

    /// The start state.
    pub fn start(&self) -> u32 {
        0
    }

    /// The state after `tok` from `state`, or DEAD.
    pub fn next(&self, state: u32, tok: usize) -> u32 {
        self.next[state as usize * self.vocab + tok]
    }

    /// The tokens with a transition from `state`.
    pub fn tokens_from(&self, state: u32) -> &[u16] {
        &self.out[state as usize]
    }

    /// Whether a complete phrase ends in `state`.
    pub fn accepting(&self, state: u32) -> bool {
        self.accepting[state as usize]
    }

    pub fn states(&self) -> usize {
        self.accepting.len()
    }

    pub fn len(&self) -> usize {
        self.phrases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.phrases.is_empty()
    }

    /// Walk `ids` from the start; the state reached, or None.
    pub fn walk(&self, ids: impl IntoIterator<Item = usize>) -> Option<u32> {
        let mut s = self.start();
        for id in ids {
            s = self.next(s, id);
            if s == DEAD {
                return None;
            }
        }
        Some(s)
    }

    /// The first phrase that says `text` (words separated by single
    /// spaces), with its slot values. Runs once per command (allocates).
    pub fn matches(&self, text: &str) -> Option<Match> {
        let words: Vec<&str> = text.split_whitespace().collect();
        for (index, p) in self.phrases.iter().enumerate() {
            let mut slots = Vec::new();
            if match_items(&p.items, &words, 0, &mut slots, &mut |pos, _| {
                pos == words.len()
            }) {
                // a repeated slot name is numbered: number, number_2, ...
                let named = slots
                    .iter()
                    .enumerate()
                    .map(|(i, (name, value))| {
                        let before = slots[..i].iter().filter(|s| s.0 == *name).count();
                        Slot {
                            name: if before == 0 {
                                name.clone()
                            } else {
                                format!("{name}_{}", before + 1)
                            },
                            value: *value,
                        }
                    })
                    .collect();
                return Some(Match {
                    index,
                    phrase: p.source.clone(),
                    slots: named,
                });
            }
        }
        None
    }
}

fn has_number(items: &[Item]) -> bool {
    items.iter().any(|i| match i {
        Item::Number(_) => true,
        Item::Choice(alts) => alts.iter().any(|a| has_number(a)),
        Item::Optional(inner) => has_number(inner),
        Item::Word(_) => false,
    })
}

type Slots = Vec<(String, u32)>;

/// Backtracking match of `items` against `words[pos..]`; `k` is called
/// with the end position and the slots so far, and says whether the rest
/// matched.
fn match_items(
    items: &[Item],
    words: &[&str],
    pos: usize,
    slots: &mut Slots,
    k: &mut dyn FnMut(usize, &mut Slots) -> bool,
) -> bool {
    let Some((first, rest)) = items.split_first() else {
        return k(pos, slots);
    };
    let mut then = |p: usize, s: &mut Slots| match_items(rest, words, p, s, &mut *k);
    match first {
        Item::Word(w) => words.get(pos) == Some(&w.as_str()) && then(pos + 1, slots),
        Item::Choice(alts) => alts
            .iter()
            .any(|a| match_items(a, words, pos, slots, &mut then)),
        Item::Optional(inner) => {
            match_items(inner, words, pos, slots, &mut then) || then(pos, slots)
        }
        Item::Number(name) => {
            // longest spelling first: "twenty five" before "twenty"
            for len in (1..=5).rev() {
                if pos + len > words.len() {
                    continue;
                }
                if let Some(v) = number_value(&words[pos..pos + len]) {
                    slots.push((name.clone(), v));
                    if then(pos + len, slots) {
                        return true;
                    }
                    slots.pop();
                }
            }
            false
        }
    }
}

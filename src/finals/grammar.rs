//! Phrase grammars (`--phrases`) in Whisper's tokens, for reading a
//! command with the finals decoder: from each state of the phrase
//! automaton (decode/phrases.rs, spelled in the streaming model's
//! characters), the Whisper tokens that keep the text inside the grammar
//! and the state each leads to.
//!
//! A token's text is matched lowercased, with `.,?!;:"` dropped, a curly
//! apostrophe read as `'` and a hyphen as a space (Whisper writes
//! "drip-coffee"); a token with any other character (a digit, say) is not
//! in any grammar. A token left with no text (punctuation) is allowed
//! wherever a space is, once in a row. Built once at start-up
//! (allocates); the search reads it without allocating.

use std::sync::Arc;

use crate::decode::phrases::{Phrases, DEAD};

use super::FinalsModel;

#[derive(Debug)]
pub struct TokenGrammar {
    phrases: Arc<Phrases>,
    /// Per automaton state, (token, next state), by token.
    edges: Vec<Vec<(u32, u32)>>,
    /// Per state, whether punctuation may come next.
    pause: Vec<bool>,
    /// Tokens that are punctuation only.
    punctuation: Vec<u32>,
}

/// A trie of the tokens' matched texts: per node, the tokens whose text
/// ends there and the children by character (as the phrase automaton's
/// token id).
#[derive(Default)]
struct Node {
    tokens: Vec<u32>,
    children: Vec<(usize, usize)>,
}

impl TokenGrammar {
    /// `phrases` compiled for a model whose tokens are `chars` (each a
    /// character; blank at `blank`), read in `finals`' tokens.
    pub fn new(
        phrases: Arc<Phrases>,
        chars: &[String],
        blank: usize,
        finals: &FinalsModel,
    ) -> Self {
        let id_of = |c: char| {
            chars
                .iter()
                .enumerate()
                .position(|(i, t)| i != blank && t.chars().eq(std::iter::once(c)))
        };
        let space = id_of(' ');
        let mut trie = vec![Node::default()];
        let mut punctuation = Vec::new();
        let text_tokens = finals.info.eot as usize;
        for (t, bytes) in finals.token_bytes.iter().enumerate().take(text_tokens) {
            let Some(ids) = std::str::from_utf8(bytes)
                .ok()
                .and_then(|s| matched(s, &id_of))
            else {
                continue;
            };
            if ids.is_empty() {
                punctuation.push(t as u32);
                continue;
            }
            let mut at = 0;
            for id in ids {
                at = match trie[at].children.iter().find(|c| c.0 == id) {
                    Some(c) => c.1,
                    None => {
                        trie.push(Node::default());
                        let n = trie.len() - 1;
                        trie[at].children.push((id, n));
                        n
                    }
                };
            }
            trie[at].tokens.push(t as u32);
        }
        let mut edges = Vec::with_capacity(phrases.states());
        let mut pause = Vec::with_capacity(phrases.states());
        let mut todo = Vec::new();
        for s in 0..phrases.states() as u32 {
            let mut out = Vec::new();
            todo.push((0usize, s));
            while let Some((node, state)) = todo.pop() {
                for &(id, child) in &trie[node].children {
                    let next = phrases.next(state, id);
                    if next != DEAD {
                        out.extend(trie[child].tokens.iter().map(|&t| (t, next)));
                        todo.push((child, next));
                    }
                }
            }
            out.sort_unstable();
            edges.push(out);
            pause.push(space.is_some_and(|sp| phrases.next(s, sp) != DEAD));
        }
        TokenGrammar {
            phrases,
            edges,
            pause,
            punctuation,
        }
    }

    pub fn phrases(&self) -> &Arc<Phrases> {
        &self.phrases
    }

    pub fn start(&self) -> u32 {
        self.phrases.start()
    }

    pub fn accepting(&self, state: u32) -> bool {
        self.phrases.accepting(state)
    }

    /// The tokens allowed from `state`, each with the state it leads to.
    pub fn edges(&self, state: u32) -> &[(u32, u32)] {
        &self.edges[state as usize]
    }

    /// Punctuation tokens, allowed (staying in `state`) when `pause(state)`.
    pub fn punctuation(&self) -> &[u32] {
        &self.punctuation
    }

    pub fn pause(&self, state: u32) -> bool {
        self.pause[state as usize]
    }

    /// Transitions in all, for the log.
    pub fn size(&self) -> usize {
        self.edges.iter().map(Vec::len).sum()
    }
}

/// A token's text as the phrase automaton's ids (see the module's note;
/// empty for punctuation, spaces included), or None when a character is
/// not in the automaton's alphabet.
fn matched(text: &str, id_of: &dyn Fn(char) -> Option<usize>) -> Option<Vec<usize>> {
    let mut ids = Vec::new();
    let mut last_space = false;
    for c in normalized(text) {
        if c == ' ' && last_space {
            return None;
        }
        last_space = c == ' ';
        ids.push(id_of(c)?);
    }
    // only spaces left (" ."): punctuation, not a space the automaton
    // would let repeat
    if text
        .chars()
        .all(|c| !c.is_alphanumeric() && c != '\'' && c != '\u{2019}')
    {
        ids.clear();
    }
    Some(ids)
}

/// The words of a decoded command: lowercased, punctuation dropped, a
/// hyphen read as a space, single spaces (what `Phrases::matches` reads).
pub fn command_words(text: &str) -> String {
    let out: String = normalized(text).collect();
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` as the grammar reads it: lowercased, `.,?!;:"` dropped, a curly
/// apostrophe read as `'` and a hyphen as a space.
fn normalized(text: &str) -> impl Iterator<Item = char> + '_ {
    text.chars()
        .flat_map(char::to_lowercase)
        .filter(|c| !matches!(c, '.' | ',' | '?' | '!' | ';' | ':' | '"'))
        .map(|c| match c {
            '\u{2019}' => '\'',
            '-' => ' ',
            c => c,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(text: &str) -> Option<String> {
        let alphabet = " 'abcdefghijklmnopqrstuvwxyz";
        let id_of = |c: char| alphabet.find(c);
        matched(text, &id_of).map(|v| v.iter().map(|&i| alphabet.as_bytes()[i] as char).collect())
    }

    #[test]
    fn tokens_are_matched_lowercased_without_punctuation() {
        assert_eq!(ids(" Turn").as_deref(), Some(" turn"));
        assert_eq!(ids("\u{2019}d").as_deref(), Some("'d"));
        assert_eq!(ids("-coffee").as_deref(), Some(" coffee"));
        assert_eq!(ids(" lights.").as_deref(), Some(" lights"));
        // punctuation, spaces included, is no text at all
        assert_eq!(ids(" .").as_deref(), Some(""));
        assert_eq!(ids("?").as_deref(), Some(""));
        // digits and other letters are in no grammar
        assert_eq!(ids(" 10"), None);
        assert_eq!(ids(" caf\u{e9}"), None);
        assert_eq!(ids("  the"), None);
    }

    #[test]
    fn a_decoded_command_reads_as_its_words() {
        assert_eq!(
            command_words(" Please turn on the kitchen lights."),
            "please turn on the kitchen lights"
        );
        assert_eq!(
            command_words(" I\u{2019}d like a drip-coffee, please!"),
            "i'd like a drip coffee please"
        );
    }
}

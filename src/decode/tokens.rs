//! The token table of a `char` model: token id -> text, blank excluded.

#[derive(Clone, Debug)]
pub struct Tokens {
    texts: Vec<String>,
    blank_id: usize,
}

impl Tokens {
    pub fn new(texts: Vec<String>, blank_id: usize) -> Self {
        Tokens { texts, blank_id }
    }
    pub fn len(&self) -> usize {
        self.texts.len()
    }
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }
    pub fn blank_id(&self) -> usize {
        self.blank_id
    }
    pub fn text(&self, id: usize) -> &str {
        self.texts.get(id).map(|s| s.as_str()).unwrap_or("")
    }
    /// Append the text of `ids` to `out`, collapsing runs of spaces and
    /// trimming both ends (words are separated by the space token).
    pub fn render(&self, ids: impl Iterator<Item = usize>, out: &mut String) {
        out.clear();
        for id in ids {
            let t = self.text(id);
            if t == " " {
                if !out.is_empty() && !out.ends_with(' ') {
                    out.push(' ');
                }
            } else {
                out.push_str(t);
            }
        }
        while out.ends_with(' ') {
            out.pop();
        }
    }
}

//! Character n-gram language model for the CTC beam search: the backoff
//! tables that `train/charlm.py export` writes (the byte layout is in the
//! docstring of `BinLM` there), checked once and then read in place: the
//! bundled LM straight from the bytes embedded in the binary (only the
//! pages a query touches are resident, and the kernel may drop them again
//! under memory pressure), an LM file from one buffer. A query is a few
//! binary searches and never allocates.

use crate::error::{HarkError, Result};

/// The LM built into the binary: a 7-gram over the training sentences of
/// the bundled model (see models/README.md, "hark-charlm7.bin").
pub static BUNDLED_LM: &[u8] = include_bytes!("../../models/hark-charlm7.bin");
pub const BUNDLED_LM_NAME: &str = "hark-charlm7 (bundled)";

const MAGIC: &[u8; 8] = b"HARKCLM1";
const VERSION: u32 = 1;
/// Context keys are base-32 digits in a u32: at most 6 context symbols.
pub const MAX_ORDER: usize = 7;
/// Symbol ids and the sentence start must fit in a base-32 digit.
const MAX_SYMBOLS: usize = 30;

/// The decoding settings the LM was tuned with, stored in its file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tuning {
    pub alpha: f64,
    pub beta: f64,
    pub beam: usize,
    pub prune: f64,
}

/// One order's rows: a context (sorted keys) -> its log backoff and its
/// entries (symbol, log-prob) at `starts[i]..starts[i + 1]`. The fields
/// are byte offsets of little-endian arrays in the LM's bytes, checked by
/// `parse_tables` to lie inside them.
#[derive(Debug)]
struct Table {
    n_ctx: usize,
    keys: usize,
    backoff: usize,
    starts: usize,
    syms: usize,
    logp: usize,
}

/// Where the LM's bytes live.
enum Storage {
    /// Embedded in the binary (the bundled LM).
    Static(&'static [u8]),
    /// Read from a file.
    Owned(Vec<u8>),
}

pub struct CharLm {
    pub source: String,
    order: usize,
    /// Predicted symbols; the end-of-sentence symbol is last.
    symbols: Vec<String>,
    pub tuning: Tuning,
    tables: Vec<Table>,
    log_uniform: f64,
    bytes: Storage,
}

impl Storage {
    fn as_slice(&self) -> &[u8] {
        match self {
            Storage::Static(b) => b,
            Storage::Owned(v) => v,
        }
    }
}

/// The `i`-th little-endian u32 of the array at byte `off` of `b`; the
/// caller has checked the array lies inside `b`.
fn u32_at(b: &[u8], off: usize, i: usize) -> u32 {
    let p = off + 4 * i;
    u32::from_le_bytes([b[p], b[p + 1], b[p + 2], b[p + 3]])
}

fn f32_at(b: &[u8], off: usize, i: usize) -> f32 {
    f32::from_bits(u32_at(b, off, i))
}

impl std::fmt::Debug for CharLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CharLm({}, order {}, {} symbols)",
            self.source,
            self.order,
            self.symbols.len()
        )
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(format!("truncated at byte {}", self.pos)),
        }
    }
    fn u32(&mut self) -> std::result::Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn f32(&mut self) -> std::result::Result<f32, String> {
        Ok(f32::from_bits(self.u32()?))
    }
    /// Skip an array of `n` items of `size` bytes; its byte offset.
    fn array(&mut self, n: usize, size: usize) -> std::result::Result<usize, String> {
        let at = self.pos;
        self.take(n.checked_mul(size).ok_or("size overflow")?)?;
        Ok(at)
    }
}

/// What `parse_tables` reads besides the bytes themselves.
struct Parsed {
    order: usize,
    symbols: Vec<String>,
    tuning: Tuning,
    tables: Vec<Table>,
}

impl CharLm {
    /// Read an LM file's bytes (copied); `source` names it in error messages.
    pub fn parse(bytes: &[u8], source: &str) -> Result<Self> {
        Self::from_storage(Storage::Owned(bytes.to_vec()), source)
    }

    pub fn load_path(path: &std::path::Path) -> Result<Self> {
        let source = path.display().to_string();
        let bytes = std::fs::read(path)
            .map_err(|e| HarkError::Config(format!("language model {source}: {e}")))?;
        Self::from_storage(Storage::Owned(bytes), &source)
    }

    /// The bundled LM, read in place from the binary.
    pub fn bundled() -> Result<Self> {
        let lm = Self::from_storage(Storage::Static(BUNDLED_LM), BUNDLED_LM_NAME);
        // Checking the tables touched every page: hand them back, so that
        // only what the queries touch comes back (issue 22).
        crate::mem::release_embedded(BUNDLED_LM);
        lm
    }

    fn from_storage(bytes: Storage, source: &str) -> Result<Self> {
        let p = parse_tables(bytes.as_slice())
            .map_err(|e| HarkError::Config(format!("language model {source}: {e}")))?;
        Ok(CharLm {
            source: source.to_string(),
            order: p.order,
            log_uniform: (1.0 / p.symbols.len() as f64).ln(),
            symbols: p.symbols,
            tuning: p.tuning,
            tables: p.tables,
            bytes,
        })
    }

    fn bytes(&self) -> &[u8] {
        self.bytes.as_slice()
    }

    pub fn order(&self) -> usize {
        self.order
    }

    /// Id of a predicted symbol (a character of the model's vocabulary).
    pub fn symbol(&self, text: &str) -> Option<u8> {
        self.symbols.iter().position(|s| s == text).map(|i| i as u8)
    }

    /// The end-of-sentence symbol.
    pub fn eos(&self) -> u8 {
        (self.symbols.len() - 1) as u8
    }

    /// The sentence-start symbol (only ever context).
    pub fn bos(&self) -> u8 {
        self.symbols.len() as u8
    }

    /// Natural-log P(sym | ctx). `ctx` is the canonical context, oldest
    /// first: the last order-1 symbols of the sentence, or the sentence-start
    /// symbol followed by the whole (shorter) sentence.
    pub fn logp(&self, ctx: &[u8], sym: u8) -> f64 {
        let bytes = self.bytes();
        let ctx = &ctx[ctx.len().saturating_sub(self.order - 1)..];
        let mut acc = 0.0f64;
        for start in 0..=ctx.len() {
            let c = &ctx[start..];
            let t = &self.tables[c.len()];
            let key = c.iter().fold(0u32, |k, s| k * 32 + *s as u32 + 1);
            if let Some(i) = find_key(bytes, t, key) {
                let a = u32_at(bytes, t.starts, i) as usize;
                let b = u32_at(bytes, t.starts, i + 1) as usize;
                let syms = &bytes[t.syms + a..t.syms + b];
                if let Ok(j) = syms.binary_search(&sym) {
                    return acc + f32_at(bytes, t.logp, a + j) as f64;
                }
                acc += f32_at(bytes, t.backoff, i) as f64;
            }
        }
        acc + self.log_uniform
    }
}

/// Row of `key` in the sorted keys of `t`.
fn find_key(bytes: &[u8], t: &Table, key: u32) -> Option<usize> {
    let (mut lo, mut hi) = (0, t.n_ctx);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match u32_at(bytes, t.keys, mid).cmp(&key) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return Some(mid),
        }
    }
    None
}

/// Check an LM file's header and tables and find where the tables are.
fn parse_tables(bytes: &[u8]) -> std::result::Result<Parsed, String> {
    let mut r = Reader { bytes, pos: 0 };
    if r.take(8).ok() != Some(&MAGIC[..]) {
        return Err("not a hark character LM (bad magic)".into());
    }
    let version = r.u32()?;
    if version != VERSION {
        return Err(format!(
            "format version {version}, this build reads {VERSION}"
        ));
    }
    let order = r.u32()? as usize;
    let n_sym = r.u32()? as usize;
    if !(1..=MAX_ORDER).contains(&order) || !(2..=MAX_SYMBOLS).contains(&n_sym) {
        return Err(format!("unsupported order {order} or {n_sym} symbols"));
    }
    let mut symbols = Vec::with_capacity(n_sym);
    for _ in 0..n_sym {
        let len = r.take(1)?[0] as usize;
        let text = std::str::from_utf8(r.take(len)?).map_err(|_| "symbol is not UTF-8")?;
        symbols.push(text.to_string());
    }
    let tuning = Tuning {
        alpha: r.f32()? as f64,
        beta: r.f32()? as f64,
        beam: r.u32()? as usize,
        prune: r.f32()? as f64,
    };
    let valid = tuning.alpha.is_finite()
        && tuning.beta.is_finite()
        && tuning.prune > 0.0
        && (1..=256).contains(&tuning.beam);
    if !valid {
        return Err(format!("bad decoding settings {tuning:?}"));
    }
    let mut tables = Vec::with_capacity(order);
    for k in 1..=order {
        let n_ctx = r.u32()? as usize;
        let n_ent = r.u32()? as usize;
        let t = Table {
            n_ctx,
            keys: r.array(n_ctx, 4)?,
            backoff: r.array(n_ctx, 4)?,
            starts: r.array(n_ctx.checked_add(1).ok_or("size overflow")?, 4)?,
            syms: r.array(n_ent, 1)?,
            logp: r.array(n_ent, 4)?,
        };
        let key = |i| u32_at(bytes, t.keys, i);
        let start = |i| u32_at(bytes, t.starts, i);
        let sorted = (1..n_ctx).all(|i| key(i - 1) < key(i));
        let spans = start(0) == 0
            && start(n_ctx) as usize == n_ent
            && (1..=n_ctx).all(|i| start(i - 1) <= start(i));
        let syms_ok = bytes[t.syms..t.syms + n_ent]
            .iter()
            .all(|s| (*s as usize) < n_sym);
        let finite = (0..n_ent).all(|i| f32_at(bytes, t.logp, i).is_finite())
            && (0..n_ctx).all(|i| f32_at(bytes, t.backoff, i).is_finite());
        if !(sorted && spans && syms_ok && finite) {
            return Err(format!("order-{k} table is inconsistent"));
        }
        tables.push(t);
    }
    if r.pos != bytes.len() {
        return Err("trailing bytes after the tables".into());
    }
    Ok(Parsed {
        order,
        symbols,
        tuning,
        tables,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_lm_is_a_distribution() {
        let lm = CharLm::bundled().expect("bundled LM");
        let space = lm.symbol(" ").expect("space");
        let t = lm.symbol("t").expect("t");
        let h = lm.symbol("h").expect("h");
        for ctx in [
            vec![lm.bos()],
            vec![lm.bos(), t, h],
            vec![t, h, space, t, h],
        ] {
            let total: f64 = (0..=lm.eos()).map(|s| lm.logp(&ctx, s).exp()).sum();
            assert!((total - 1.0).abs() < 1e-4, "{ctx:?}: {total}");
        }
        // "the" is far likelier than "thq" after "th"
        let e = lm.symbol("e").expect("e");
        let q = lm.symbol("q").expect("q");
        let ctx = [lm.bos(), t, h];
        assert!(lm.logp(&ctx, e) > lm.logp(&ctx, q) + 3.0);
    }

    #[test]
    fn corrupt_files_are_config_errors() {
        for bad in [
            &BUNDLED_LM[..BUNDLED_LM.len() / 2],
            &BUNDLED_LM[..7],
            b"not an lm at all".as_slice(),
        ] {
            let e = CharLm::parse(bad, "x").expect_err("must fail");
            assert_eq!(e.exit_code(), 2, "{e}");
        }
        let mut extra = BUNDLED_LM.to_vec();
        extra.push(0);
        assert!(CharLm::parse(&extra, "x").is_err());
    }
}

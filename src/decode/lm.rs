//! Character n-gram language model for the CTC beam search: the backoff
//! tables that `train/charlm.py export` writes (the byte layout is in the
//! docstring of `BinLM` there), read once into flat arrays. A query is a
//! few binary searches and never allocates.

use crate::error::{HarkError, Result};

/// The LM built into the binary: a 6-gram over the training sentences of
/// the bundled model (see models/README.md, "hark-charlm6.bin").
pub static BUNDLED_LM: &[u8] = include_bytes!("../../models/hark-charlm6.bin");
pub const BUNDLED_LM_NAME: &str = "hark-charlm6 (bundled)";

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
/// entries (symbol, log-prob) at `starts[i]..starts[i + 1]`.
#[derive(Debug)]
struct Table {
    keys: Vec<u32>,
    backoff: Vec<f32>,
    starts: Vec<u32>,
    syms: Vec<u8>,
    logp: Vec<f32>,
}

pub struct CharLm {
    pub source: String,
    order: usize,
    /// Predicted symbols; the end-of-sentence symbol is last.
    symbols: Vec<String>,
    pub tuning: Tuning,
    tables: Vec<Table>,
    log_uniform: f64,
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
    fn u32s(&mut self, n: usize) -> std::result::Result<Vec<u32>, String> {
        let b = self.take(n.checked_mul(4).ok_or("size overflow")?)?;
        Ok(b.chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
    fn f32s(&mut self, n: usize) -> std::result::Result<Vec<f32>, String> {
        Ok(self.u32s(n)?.into_iter().map(f32::from_bits).collect())
    }
}

impl CharLm {
    /// Read an LM file's bytes; `source` names it in error messages.
    pub fn parse(bytes: &[u8], source: &str) -> Result<Self> {
        Self::parse_inner(bytes, source)
            .map_err(|e| HarkError::Config(format!("language model {source}: {e}")))
    }

    pub fn load_path(path: &std::path::Path) -> Result<Self> {
        let source = path.display().to_string();
        let bytes = std::fs::read(path)
            .map_err(|e| HarkError::Config(format!("language model {source}: {e}")))?;
        Self::parse(&bytes, &source)
    }

    pub fn bundled() -> Result<Self> {
        let lm = Self::parse(BUNDLED_LM, BUNDLED_LM_NAME);
        // the tables are copied out: the embedded bytes need not stay resident
        crate::mem::release_embedded(BUNDLED_LM);
        lm
    }

    fn parse_inner(bytes: &[u8], source: &str) -> std::result::Result<Self, String> {
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
                keys: r.u32s(n_ctx)?,
                backoff: r.f32s(n_ctx)?,
                starts: r.u32s(n_ctx + 1)?,
                syms: r.take(n_ent)?.to_vec(),
                logp: r.f32s(n_ent)?,
            };
            let sorted = t.keys.windows(2).all(|w| w[0] < w[1]);
            let spans = t.starts.first() == Some(&0)
                && t.starts.last().map(|s| *s as usize) == Some(n_ent)
                && t.starts.windows(2).all(|w| w[0] <= w[1]);
            let syms_ok = t.syms.iter().all(|s| (*s as usize) < n_sym);
            let finite = t.logp.iter().chain(&t.backoff).all(|x| x.is_finite());
            if !(sorted && spans && syms_ok && finite) {
                return Err(format!("order-{k} table is inconsistent"));
            }
            tables.push(t);
        }
        if r.pos != bytes.len() {
            return Err("trailing bytes after the tables".into());
        }
        Ok(CharLm {
            source: source.to_string(),
            order,
            log_uniform: (1.0 / n_sym as f64).ln(),
            symbols,
            tuning,
            tables,
        })
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
        let ctx = &ctx[ctx.len().saturating_sub(self.order - 1)..];
        let mut acc = 0.0f64;
        for start in 0..=ctx.len() {
            let c = &ctx[start..];
            let t = &self.tables[c.len()];
            let key = c.iter().fold(0u32, |k, s| k * 32 + *s as u32 + 1);
            if let Ok(i) = t.keys.binary_search(&key) {
                let (a, b) = (t.starts[i] as usize, t.starts[i + 1] as usize);
                if let Ok(j) = t.syms[a..b].binary_search(&sym) {
                    return acc + t.logp[a + j] as f64;
                }
                acc += t.backoff[i] as f64;
            }
        }
        acc + self.log_uniform
    }
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

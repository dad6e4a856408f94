//! The Rust beam search reproduces train/charlm.py's `beam_search` exactly:
//! tests/data/beam_vectors.json holds the bundled model's log-probs for the
//! e2e clips and the Python decoder's transcripts with the bundled LM under
//! three settings (`python train/charlm.py vectors tests/data/e2e/*.wav`).

use std::sync::Arc;

use hark::decode::beam::BeamSearch;
use hark::decode::lm::{CharLm, Tuning};
use hark::decode::tokens::Tokens;
use serde_json::Value;

#[test]
fn beam_search_matches_the_python_reference() {
    let path = crate::util::repo().join("tests/data/beam_vectors.json");
    let text = std::fs::read_to_string(&path).expect("vectors");
    let v: Value = serde_json::from_str(&text).expect("json");
    let tokens: Vec<String> = v["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| t.as_str().expect("token").to_string())
        .collect();
    let blank = v["blank"].as_u64().expect("blank") as usize;
    let table = Tokens::new(tokens.clone(), blank);
    let lm = Arc::new(CharLm::bundled().expect("bundled LM"));
    let mut checked = 0;
    for item in v["items"].as_array().expect("items") {
        let rows: Vec<f32> = item["log_probs"]
            .as_array()
            .expect("rows")
            .iter()
            .flat_map(|r| r.as_array().expect("row").iter())
            .map(|x| x.as_f64().expect("number") as f32)
            .collect();
        let vocab = tokens.len();
        for d in item["decoded"].as_array().expect("decoded") {
            let tuning = Tuning {
                alpha: d["alpha"].as_f64().expect("alpha"),
                beta: d["beta"].as_f64().expect("beta"),
                beam: d["beam"].as_u64().expect("beam") as usize,
                prune: d["prune"].as_f64().expect("prune"),
            };
            let mut bs =
                BeamSearch::new(lm.clone(), tuning, &tokens, blank, rows.len()).expect("beam");
            // in uneven pieces, as chunks arrive
            let mut frame = 0;
            for piece in rows.chunks(vocab * 7) {
                bs.accept(piece, vocab, frame);
                frame += (piece.len() / vocab) as u64;
            }
            bs.finalize();
            let mut got = String::new();
            table.render(bs.best().iter().map(|t| t.id), &mut got);
            assert_eq!(
                got,
                d["text"].as_str().expect("text"),
                "{} {tuning:?}",
                item["file"]
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 18);
}

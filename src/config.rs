//! Validated configuration built from the flags: everything checked before
//! any audio flows, so a bad value is a configuration error (exit 2).

use std::sync::Arc;

use crate::cli::{DecodeArgs, FinalsChoice, PhraseArgs};
use crate::decode::endpoint::EndpointConfig;
use crate::decode::lm::CharLm;
use crate::decode::phrases::Phrases;
use crate::error::{HarkError, Result};
use crate::finals::grammar::TokenGrammar;
use crate::finals::{EncoderMode, FinalsModel};
use crate::model::{Model, ModelInfo};
use crate::stream::{CommandDecoding, LmDecoding, StreamConfig};

/// `--reject` when not given: chosen by benches/commands.py on its tuning
/// subset of real held-out recordings (disjoint from the clips it reports)
/// with hark-wsm-v4, v9, v12 and v20 (each chose it; with v21 it is one of
/// five tied thresholds, 0.20-0.40), as the threshold that minimises
/// missed-or-wrong commands plus false accepts, averaged over its two grammars
/// (benches/RESULTS.md, "Voice commands").
pub const DEFAULT_REJECT: f64 = 0.25;
/// `--reject` when not given and the finals decoder reads the commands:
/// chosen by benches/commands.py the same way, on the same tuning subset
/// (benches/RESULTS.md, "Voice commands").
pub const DEFAULT_DECODER_REJECT: f64 = 0.25;
/// Hypotheses of the finals decoder's phrase search
/// (results/whisper-finals/phrases.md).
pub const DECODER_PHRASE_BEAM: usize = 4;
/// `--beam` of the phrase search when not given.
pub const DEFAULT_PHRASE_BEAM: usize = 16;
/// The phrase search's bonus per token (natural log units).
pub const PHRASE_TOKEN_BONUS: f64 = 2.0;

/// The stream configuration for `d`, with partial hypotheses when `partials`.
pub fn stream_config(d: &DecodeArgs, partials: bool) -> Result<StreamConfig> {
    if d.endpoint_silence_ms < 40 {
        return Err(HarkError::Config(
            "--endpoint-silence-ms must be at least 40".into(),
        ));
    }
    if d.max_utterance_ms < 1000 || d.max_utterance_ms > 600_000 {
        return Err(HarkError::Config(
            "--max-utterance-ms must be between 1000 and 600000".into(),
        ));
    }
    if d.beam.is_some_and(|b| !(1..=256).contains(&b)) {
        return Err(HarkError::Config("--beam must be between 1 and 256".into()));
    }
    if d.endpoint_silence_ms >= d.max_utterance_ms {
        return Err(HarkError::Config(
            "--endpoint-silence-ms must be shorter than --max-utterance-ms".into(),
        ));
    }
    Ok(StreamConfig {
        endpoint: EndpointConfig {
            trailing_silence_ms: d.endpoint_silence_ms,
            max_utterance_ms: d.max_utterance_ms,
        },
        partials,
        lm: None,
        commands: None,
        finals: None,
    })
}

/// The finals model for `d` (`--finals`, `--finals-model`), or None with
/// `--finals ctc`. With phrases it reads the commands. A finals model that
/// cannot be loaded is a model error (exit 2).
pub fn finals(
    d: &DecodeArgs,
    phrases: bool,
    backend: crate::backend::Backend,
) -> Result<Option<Arc<FinalsModel>>> {
    if d.finals == FinalsChoice::Ctc {
        if d.finals_model.is_some() {
            return Err(HarkError::Config(
                "--finals-model needs --finals whisper".into(),
            ));
        }
        log::info!("finals: the streaming CTC pass (--finals ctc)");
        return Ok(None);
    }
    let mode = match d.finals {
        FinalsChoice::Stream => EncoderMode::Stream,
        _ => EncoderMode::Reencode,
    };
    if mode == EncoderMode::Stream && phrases {
        return Err(HarkError::Config(
            "--phrases reads commands with --finals whisper or --finals ctc, not --finals stream"
                .into(),
        ));
    }
    let f = FinalsModel::load(d.finals_model.as_deref(), mode)?;
    if let Some(s) = &f.stream {
        let max_ms = s.info.max_samples() as u64 * 1000 / crate::finals::mel::SAMPLE_RATE_HZ as u64;
        // the utterance starts up to 0.5 s before its first token and can
        // overshoot the maximum by a chunk
        let limit = max_ms.saturating_sub(1000);
        if d.max_utterance_ms as u64 > limit {
            return Err(HarkError::Config(format!(
                "--finals stream reads utterances of at most {limit} ms: set --max-utterance-ms to that or less"
            )));
        }
    }
    crate::mem::tune_allocator_for_running();
    if backend != crate::backend::Backend::Cpu {
        log::info!(
            "finals: the Whisper pass runs on the CPU (only the streaming pass runs on the GPU)"
        );
    }
    log::info!(
        "finals: {} ({} weights) from {}{}",
        f.info.name,
        f.info.weights,
        f.source,
        if phrases {
            ", reading the commands"
        } else {
            ""
        }
    );
    Ok(Some(f))
}

/// The language model to decode `model`'s output with: `--lm`, else the
/// bundled one, none with `--no-lm`. A model whose tokens the bundled LM
/// does not cover is decoded greedily (with a warning); an `--lm` that
/// does not cover them is a configuration error.
pub fn language_model(d: &DecodeArgs, model: &ModelInfo) -> Result<Option<LmDecoding>> {
    if d.no_lm {
        log::info!("decoding: greedy, no language model (--no-lm)");
        return Ok(None);
    }
    let lm = match &d.lm {
        Some(path) => CharLm::load_path(path)?,
        None => CharLm::bundled()?,
    };
    let missing = model
        .tokens
        .iter()
        .enumerate()
        .find(|(i, t)| *i != model.blank_id && lm.symbol(t).is_none());
    if let Some((_, t)) = missing {
        let msg = format!(
            "language model {} has no symbol for the model's token {t:?}",
            lm.source
        );
        if d.lm.is_some() {
            return Err(HarkError::Config(msg));
        }
        log::warn!("{msg}; decoding without a language model");
        return Ok(None);
    }
    let mut tuning = lm.tuning;
    if let Some(b) = d.beam {
        tuning.beam = b;
    }
    log::info!(
        "decoding: beam {}{} with language model {} (character {}-gram, LM weight {}, bonus {} per character)",
        tuning.beam,
        if d.beam.is_some() { " (--beam)" } else { "" },
        lm.source,
        lm.order(),
        tuning.alpha,
        tuning.beta
    );
    Ok(Some(LmDecoding {
        lm: Arc::new(lm),
        tuning,
    }))
}

/// Phrase-constrained decoding from `--phrases` for `model`'s tokens, or
/// None without the flag; `decoder`: the finals decoder will read the
/// commands (its default threshold). A phrase file that cannot be read or
/// compiled is a configuration error naming the file (and line and column).
pub fn commands(
    p: &PhraseArgs,
    d: &DecodeArgs,
    model: &ModelInfo,
    decoder: bool,
) -> Result<Option<CommandDecoding>> {
    let Some(path) = &p.phrases else {
        return Ok(None);
    };
    let reject = p.reject.unwrap_or(match decoder {
        true => DEFAULT_DECODER_REJECT,
        false => DEFAULT_REJECT,
    });
    if !(0.0..=1.0).contains(&reject) {
        return Err(HarkError::Config("--reject must be between 0 and 1".into()));
    }
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| HarkError::Config(format!("cannot read phrases {name}: {e}")))?;
    let phrases = Phrases::compile(&name, &text, &model.tokens, model.blank_id)?;
    log::info!(
        "phrases: {} from {name}, {} automaton states",
        phrases.len(),
        phrases.states()
    );
    Ok(Some(CommandDecoding {
        phrases: Arc::new(phrases),
        beam: d.beam.unwrap_or(DEFAULT_PHRASE_BEAM),
        token_bonus: PHRASE_TOKEN_BONUS,
        reject,
        decoder: None,
        decoder_beam: DECODER_PHRASE_BEAM,
    }))
}

/// The decoding of `model`'s output: phrases (`--phrases`), else the
/// language model (see `language_model`), into `cfg`.
pub fn decoding(
    cfg: StreamConfig,
    p: &PhraseArgs,
    d: &DecodeArgs,
    model: &Model,
) -> Result<StreamConfig> {
    let decoder = p.phrases.is_some() && d.finals == FinalsChoice::Whisper;
    let mut commands = commands(p, d, &model.info, decoder)?;
    let lm = match commands {
        Some(_) => None,
        None => language_model(d, &model.info)?,
    };
    let finals = finals(d, commands.is_some(), model.backend)?;
    if let (Some(c), Some(f)) = (&mut commands, &finals) {
        let g = TokenGrammar::new(
            c.phrases.clone(),
            &model.info.tokens,
            model.info.blank_id,
            f,
        );
        log::info!(
            "phrases: {} transitions in the finals decoder's tokens",
            g.size()
        );
        c.decoder = Some(Arc::new(g));
    }
    Ok(StreamConfig {
        lm,
        commands,
        finals,
        ..cfg
    })
}

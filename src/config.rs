//! Validated configuration built from the flags: everything checked before
//! any audio flows, so a bad value is a configuration error (exit 2).

use crate::cli::DecodeArgs;
use crate::decode::endpoint::EndpointConfig;
use crate::error::{HarkError, Result};
use crate::stream::StreamConfig;

pub fn stream_config(d: &DecodeArgs) -> Result<StreamConfig> {
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
        partials: d.partials,
    })
}

//! A source's colour as the record keeps it (`source.video.colour`).

use serde::{Deserialize, Serialize};

/// A source's colour, as its stream says it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ColourInfo {
    /// `sdr`, `pq` or `hlg`.
    pub transfer: String,
    /// The transfer as libav names it (`smpte2084`, `bt709`, `unknown`…).
    pub transfer_characteristic: String,
    /// `bt709`, `bt2020`, `smpte170m`… (`unknown` when not said).
    pub primaries: String,
    /// `bt709`, `bt2020nc`, `smpte170m`…
    pub matrix: String,
    /// `tv` (limited) or `pc` (full).
    pub range: String,
    pub bit_depth: u8,
    /// SMPTE ST 2086, in nits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mastering_display: Option<MasteringDisplay>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_light: Option<ContentLight>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dolby_vision: Option<DolbyVision>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MasteringDisplay {
    pub max_luminance: f64,
    pub min_luminance: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentLight {
    pub max_cll: u32,
    pub max_fall: u32,
}

/// Dolby Vision: profile 5 has no fallback for other screens
/// (`compatibility: none`); 8.1 an HDR10 one, 8.2 SDR, 8.4 HLG.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DolbyVision {
    pub profile: u8,
    pub level: u8,
    /// `none`, `hdr10`, `sdr`, `hlg` (the base layer's).
    pub compatibility: String,
}

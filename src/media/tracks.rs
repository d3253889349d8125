//! The source's streams besides its video: text subtitles (caption
//! tracks), every audio track when there are several, or when codec groups
//! share one audio group (audio renditions),
//! with their language, name and disposition; what cannot be used is
//! named in a note.

use super::subs::{is_text_codec, SourceTrack, MAX_TRACKS};
use ffmpeg_next::format::context::Input;
use ffmpeg_next::format::stream::Disposition;
use ffmpeg_next::media;

/// Most audio renditions made from one source.
pub(crate) const MAX_AUDIO_TRACKS: usize = 8;

/// (text subtitle streams, audio streams when there are `min_audio`+,
/// notes).
pub(crate) fn other_streams(
    ictx: &Input,
    first_audio: Option<usize>,
    min_audio: usize,
) -> (Vec<SourceTrack>, Vec<SourceTrack>, Vec<String>) {
    let (mut subs, mut audio, mut notes) = (Vec::new(), Vec::new(), Vec::new());
    for st in ictx.streams() {
        let p = st.parameters();
        let codec = p.id().name().to_owned();
        let described = describe(&st, subs.len() + audio.len());
        match p.medium() {
            media::Type::Subtitle if is_text_codec(&codec) && subs.len() < MAX_TRACKS => {
                subs.push(described)
            }
            media::Type::Subtitle if is_text_codec(&codec) => notes.push(format!(
                "subtitle stream {} left out: more than {MAX_TRACKS} caption tracks",
                st.index()
            )),
            media::Type::Subtitle => notes.push(format!(
                "subtitle stream {} ({codec}) left out: only text subtitles become captions",
                st.index()
            )),
            media::Type::Audio if decodable(&p) => audio.push(described),
            _ => {}
        }
    }
    // The first audio track leads (its own decision made by the probe).
    if let Some(first) = first_audio {
        audio.sort_by_key(|a| a.index != first);
    }
    if audio.len() > MAX_AUDIO_TRACKS {
        notes.push(format!(
            "{} audio tracks left out: at most {MAX_AUDIO_TRACKS} are made",
            audio.len() - MAX_AUDIO_TRACKS
        ));
        audio.truncate(MAX_AUDIO_TRACKS);
    }
    if audio.len() < min_audio {
        audio.clear();
    }
    (subs, audio, notes)
}

fn decodable(p: &ffmpeg_next::codec::Parameters) -> bool {
    ffmpeg_next::decoder::find(p.id()).is_some()
        && ffmpeg_next::codec::context::Context::from_parameters(p.clone())
            .ok()
            .and_then(|c| c.decoder().audio().ok())
            .is_some_and(|d| d.rate() > 0 && d.channels() > 0)
}

/// A stream's language, name and disposition.
fn describe(st: &ffmpeg_next::format::stream::Stream<'_>, n: usize) -> SourceTrack {
    let meta = st.metadata();
    let lang = meta
        .get("language")
        .and_then(language)
        .unwrap_or_else(|| "und".to_owned());
    let name = meta
        .get("title")
        .map(|t| {
            t.chars()
                .filter(|c| !c.is_control())
                .take(64)
                .collect::<String>()
        })
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| display_name(&lang, n));
    let d = st.disposition();
    SourceTrack {
        index: st.index(),
        lang,
        name,
        default: d.contains(Disposition::DEFAULT),
        forced: d.contains(Disposition::FORCED),
    }
}

/// ISO 639-1/2 codes as BCP 47 wants them (the shortest form).
const LANGUAGES: &[(&str, &str, &str)] = &[
    ("eng", "en", "English"),
    ("fra", "fr", "Français"),
    ("fre", "fr", "Français"),
    ("deu", "de", "Deutsch"),
    ("ger", "de", "Deutsch"),
    ("spa", "es", "Español"),
    ("ita", "it", "Italiano"),
    ("por", "pt", "Português"),
    ("nld", "nl", "Nederlands"),
    ("dut", "nl", "Nederlands"),
    ("rus", "ru", "Русский"),
    ("jpn", "ja", "日本語"),
    ("zho", "zh", "中文"),
    ("chi", "zh", "中文"),
    ("kor", "ko", "한국어"),
    ("ara", "ar", "العربية"),
    ("hin", "hi", "हिन्दी"),
    ("pol", "pl", "Polski"),
    ("tur", "tr", "Türkçe"),
    ("swe", "sv", "Svenska"),
    ("nor", "no", "Norsk"),
    ("dan", "da", "Dansk"),
    ("fin", "fi", "Suomi"),
    ("ces", "cs", "Čeština"),
    ("cze", "cs", "Čeština"),
    ("ell", "el", "Ελληνικά"),
    ("gre", "el", "Ελληνικά"),
    ("heb", "he", "עברית"),
    ("hun", "hu", "Magyar"),
    ("ukr", "uk", "Українська"),
    ("vie", "vi", "Tiếng Việt"),
];

/// The language tag of a stream's `language` metadata, if it is one.
pub(crate) fn language(tag: &str) -> Option<String> {
    let t = tag.trim().to_ascii_lowercase();
    if t == "und" || t.is_empty() {
        return None;
    }
    if let Some((_, short, _)) = LANGUAGES.iter().find(|(long, _, _)| *long == t) {
        return Some((*short).to_owned());
    }
    crate::storage::names::language_tag(&t)
}

/// A name for a track in `lang` with no title.
pub(crate) fn display_name(lang: &str, n: usize) -> String {
    LANGUAGES
        .iter()
        .find(|(_, short, _)| *short == lang)
        .map(|(_, _, name)| (*name).to_owned())
        .unwrap_or_else(|| {
            if lang == "und" {
                format!("Track {}", n + 1)
            } else {
                lang.to_owned()
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_take_their_shortest_form() {
        assert_eq!(language("eng").as_deref(), Some("en"));
        assert_eq!(language("FRE").as_deref(), Some("fr"));
        assert_eq!(language("pt-BR").as_deref(), Some("pt-br"));
        assert_eq!(language("und"), None);
        assert_eq!(language("../x"), None);
        assert_eq!(display_name("fr", 0), "Français");
        assert_eq!(display_name("und", 1), "Track 2");
    }
}

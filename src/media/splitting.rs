//! A job's side of chunked encoding (`chunks`): splitting it when it may
//! be, routing its video packets, and what it keeps of the chunks at the
//! end.

use super::chunks::{Chunked, Recipe, Stitch};
use super::job::Job;
use super::video::DecoderPlan;
use crate::hls::ladder::RungPlan;
use crate::Error;
use ffmpeg_next::Packet;

impl Job<'_> {
    /// Splits the job's video into chunks with `settings` (each chunk's,
    /// from `chunks::per_chunk`: the job is eligible): the job's chain
    /// (whose encoders its outputs were opened from) becomes the first
    /// chunk's, and a chain with no encoder takes its place.
    pub(super) fn split_into_chunks(
        &mut self,
        decoder: DecoderPlan,
        rungs: Vec<RungPlan>,
        settings: super::Settings,
    ) -> Result<(), Error> {
        let duration = self.source.info.duration;
        // Each chunk's decoder as the job's, with its share of the cores.
        let threads = super::video::decoder_threads(rungs.len(), settings.cores);
        let recipe = Recipe {
            decoder: DecoderPlan { threads, ..decoder },
            rungs,
            offset: self.timing.offset,
            duration,
            settings,
        };
        let placeholder = recipe.placeholder(&self.source)?;
        let first = std::mem::replace(&mut self.video, placeholder);
        let chunked = Chunked::new(recipe, first, self.timing.tb, self.outs.len());
        let hold = chunked.audio_to_hold();
        let group = self.group.iter_mut().map(|g| &mut g.out);
        for o in self.outs.iter_mut().chain(group) {
            o.hold_audio(hold);
        }
        self.chunks = Some(chunked);
        Ok(())
    }

    /// A source video packet, to the chunks.
    pub(super) fn chunk_packet(&mut self, packet: &Packet) -> Result<(), Error> {
        let Some(c) = self.chunks.as_mut() else {
            return Err(Error::Internal("not split".into()));
        };
        let mut into = Stitch {
            outs: &mut self.outs,
            storyboard: &mut self.video.storyboard,
            cancel: self.ctx.cancel,
        };
        c.send(packet, self.timing.offset, &self.source, &mut into)
    }

    /// Waits for every chunk; the job's chain gets their poster and
    /// decoding errors.
    pub(super) fn finish_chunks(&mut self) -> Result<(), Error> {
        let Some(c) = self.chunks.as_mut() else {
            return Ok(());
        };
        let mut into = Stitch {
            outs: &mut self.outs,
            storyboard: &mut self.video.storyboard,
            cancel: self.ctx.cancel,
        };
        c.finish(&mut into)?;
        if let Some((poster, errors)) = c.take_poster() {
            self.video.poster = poster;
            self.video.decode_errors = errors;
        }
        Ok(())
    }
}

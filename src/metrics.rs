//! Counters and gauges, rendered in the Prometheus text format (0.0.4).
//! Plain atomics and small maps: no metrics crate is needed for this size.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds (seconds) of the request latency histogram's buckets.
const LATENCY_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

/// One route's latency histogram.
#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Cumulative counts per bucket of `LATENCY_BUCKETS`.
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Everything the server counts. Shared as `Arc<Metrics>`.
#[derive(Debug, Default)]
pub struct Metrics {
    pub uploads_accepted: AtomicU64,
    pub upload_bytes: AtomicU64,
    /// Refused uploads by error code.
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    pub jobs_done: AtomicU64,
    pub jobs_failed: AtomicU64,
    /// Microseconds spent in finished jobs.
    job_micros: AtomicU64,
    /// Seconds of media produced by finished jobs, in microseconds.
    media_micros: AtomicU64,
    pub frames_encoded: AtomicU64,
    /// Requests by (route, status).
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
    pub bytes_served: AtomicU64,
    pub active_connections: AtomicI64,
    /// Webhook deliveries answered 2xx.
    pub webhooks_delivered: AtomicU64,
    /// Webhook attempts that failed (retried later).
    pub webhooks_failed: AtomicU64,
    /// Webhook events given up after 24 hours of failures.
    pub webhooks_dropped: AtomicU64,
    /// Bytes live publishers sent into their broadcasts.
    pub live_ingest_bytes: AtomicU64,
    /// Live publishers cut by the server (bit-rate cap, quota, size).
    pub lives_cut: AtomicU64,
    /// Each running live's (media seconds made, wall seconds since its job
    /// began, video frames dropped): its encoder's speed against real time.
    lives_progress: Mutex<BTreeMap<String, (f64, f64, u64)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Gauges read at render time from the rest of the server.
#[derive(Debug, Default)]
pub struct Gauges {
    pub jobs_queued: u64,
    pub jobs_running: u64,
    pub uploads_receiving: u64,
    pub storage_used_bytes: u64,
    pub storage_free_bytes: Option<u64>,
    /// What the quota's ledger counts as stored (reservations apart).
    pub quota_stored_bytes: u64,
    /// Webhook deliveries still to make.
    pub webhooks_pending: u64,
    /// Lives awaiting or receiving a broadcast, and those receiving one.
    pub lives: u64,
    pub lives_publishing: u64,
    /// Segments (with their playlists) jobs handed over and the store has
    /// not made durable yet, and how often a job found its queue full.
    pub publish_queued: u64,
    pub publish_queue_full: u64,
    /// LL-HLS requests held now (blocking reloads, preload hints), and
    /// held so far.
    pub blocking_waiting: u64,
    pub blocking_total: u64,
}

impl Metrics {
    /// Counts a refused upload.
    pub fn upload_rejected(&self, code: &'static str) {
        *lock(&self.rejected).entry(code).or_default() += 1;
    }

    /// Counts a finished job that took `secs` for `media_secs` of video.
    pub fn job_finished(&self, secs: f64, media_secs: f64, frames: u64) {
        self.jobs_done.fetch_add(1, Ordering::Relaxed);
        self.job_micros
            .fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
        self.media_micros
            .fetch_add((media_secs * 1e6) as u64, Ordering::Relaxed);
        self.frames_encoded.fetch_add(frames, Ordering::Relaxed);
    }

    /// Counts one answered request.
    pub fn request(&self, route: &'static str, status: u16, secs: f64) {
        *lock(&self.requests).entry((route, status)).or_default() += 1;
        let mut lat = lock(&self.latency);
        let h = lat.entry(route).or_default();
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.buckets[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// A running live's job made `media` seconds in `wall` seconds.
    pub fn live_progress(&self, id: &str, media: f64, wall: f64) {
        let mut lives = lock(&self.lives_progress);
        let e = lives.entry(id.to_owned()).or_default();
        (e.0, e.1) = (media, wall);
    }

    /// A running live's job dropped `frames` video frames so far.
    pub fn live_dropped(&self, id: &str, frames: u64) {
        lock(&self.lives_progress)
            .entry(id.to_owned())
            .or_default()
            .2 = frames;
    }

    /// A live's job is over.
    pub fn live_done(&self, id: &str) {
        lock(&self.lives_progress).remove(id);
    }

    /// The exposition text.
    pub fn render(&self, g: &Gauges) -> String {
        let mut out = String::new();
        self.render_counters(&mut out);
        self.render_gauges(&mut out, g);
        self.render_lives(&mut out);
        self.render_webhooks(&mut out, g.webhooks_pending);
        self.render_requests(&mut out);
        out
    }

    fn render_counters(&self, out: &mut String) {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let counters = [
            (
                "hlsd_uploads_total",
                "Uploads accepted (201).",
                &self.uploads_accepted,
            ),
            (
                "hlsd_upload_bytes_total",
                "Bytes received in accepted uploads.",
                &self.upload_bytes,
            ),
            (
                "hlsd_jobs_done_total",
                "Transcode jobs finished ready.",
                &self.jobs_done,
            ),
            (
                "hlsd_jobs_failed_total",
                "Transcode jobs that failed.",
                &self.jobs_failed,
            ),
            (
                "hlsd_frames_encoded_total",
                "Video frames encoded by finished jobs.",
                &self.frames_encoded,
            ),
            (
                "hlsd_bytes_served_total",
                "Body bytes of playback responses.",
                &self.bytes_served,
            ),
            (
                "hlsd_live_ingest_bytes_total",
                "Bytes live publishers sent into their broadcasts (RTMP, SRT).",
                &self.live_ingest_bytes,
            ),
            (
                "hlsd_lives_cut_total",
                "Live publishers the server cut (bit-rate cap, quota, size).",
                &self.lives_cut,
            ),
        ];
        for (name, help, v) in counters {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                load(v)
            );
        }
        let job_secs = load(&self.job_micros) as f64 / 1e6;
        let media_secs = load(&self.media_micros) as f64 / 1e6;
        let _ = write!(
            out,
            "# HELP hlsd_job_seconds_total Wall seconds spent in finished jobs.\n\
             # TYPE hlsd_job_seconds_total counter\nhlsd_job_seconds_total {job_secs}\n\
             # HELP hlsd_media_seconds_total Seconds of video produced by finished jobs.\n\
             # TYPE hlsd_media_seconds_total counter\nhlsd_media_seconds_total {media_secs}\n\
             # HELP hlsd_realtime_factor Seconds of video produced per wall second, over all jobs.\n\
             # TYPE hlsd_realtime_factor gauge\nhlsd_realtime_factor {}\n",
            if job_secs > 0.0 { media_secs / job_secs } else { 0.0 }
        );
        out.push_str("# HELP hlsd_uploads_rejected_total Uploads refused, by error code.\n# TYPE hlsd_uploads_rejected_total counter\n");
        for (code, n) in lock(&self.rejected).iter() {
            let _ = writeln!(out, "hlsd_uploads_rejected_total{{reason=\"{code}\"}} {n}");
        }
    }

    fn render_gauges(&self, out: &mut String, g: &Gauges) {
        let connections = self.active_connections.load(Ordering::Relaxed).max(0) as u64;
        let mut gauges = vec![
            (
                "hlsd_jobs_queued",
                "Videos waiting for a transcode slot.",
                g.jobs_queued,
            ),
            (
                "hlsd_jobs_running",
                "Videos being transcoded.",
                g.jobs_running,
            ),
            (
                "hlsd_uploads_receiving",
                "Uploads still arriving.",
                g.uploads_receiving,
            ),
            (
                "hlsd_active_connections",
                "Open HTTP connections.",
                connections,
            ),
            (
                "hlsd_lives",
                "Lives awaiting or receiving a broadcast.",
                g.lives,
            ),
            (
                "hlsd_lives_publishing",
                "Lives receiving a broadcast now.",
                g.lives_publishing,
            ),
            (
                "hlsd_storage_used_bytes",
                "Bytes under the storage root (a bucket: as last measured, plus this node's writes since).",
                g.storage_used_bytes,
            ),
            (
                "hlsd_publish_queued",
                "Segments with their playlists that jobs handed over and the store has not made durable yet.",
                g.publish_queued,
            ),
            (
                "hlsd_blocking_reloads_waiting",
                "LL-HLS requests held now (blocking playlist reloads and preload-hinted parts).",
                g.blocking_waiting,
            ),
            (
                "hlsd_quota_stored_bytes",
                "Bytes the storage quota counts as stored by videos (what they reserve apart).",
                g.quota_stored_bytes,
            ),
        ];
        if let Some(free) = g.storage_free_bytes {
            gauges.push((
                "hlsd_storage_free_bytes",
                "Bytes free on the storage filesystem.",
                free,
            ));
        }
        for (name, help, v) in gauges {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n"
            );
        }
        let name = "hlsd_blocking_reloads_total";
        let _ = write!(
            out,
            "# HELP {name} LL-HLS requests held until the playlist or part they asked for was out.\n# TYPE {name} counter\n{name} {}\n",
            g.blocking_total
        );
        let name = "hlsd_publish_queue_full_total";
        let _ = write!(
            out,
            "# HELP {name} Times a job's encoder waited because its publishing queue was full (the store was slower).\n# TYPE {name} counter\n{name} {}\n",
            g.publish_queue_full
        );
    }

    fn render_lives(&self, out: &mut String) {
        let lives = lock(&self.lives_progress);
        let speed = "hlsd_live_encoder_speed";
        let behind = "hlsd_live_behind_seconds";
        let _ = write!(
            out,
            "# HELP {speed} A running live's media seconds made per wall second since its job began (about 1 when it keeps up with the publisher).\n# TYPE {speed} gauge\n"
        );
        for (id, (media, wall, _)) in lives.iter() {
            let v = if *wall > 0.0 { media / wall } else { 0.0 };
            let _ = writeln!(out, "{speed}{{video=\"{id}\"}} {v:.3}");
        }
        let _ = write!(
            out,
            "# HELP {behind} Wall seconds since a running live's job began minus the media seconds it made (growing: it falls behind).\n# TYPE {behind} gauge\n"
        );
        for (id, (media, wall, _)) in lives.iter() {
            let _ = writeln!(out, "{behind}{{video=\"{id}\"}} {:.3}", wall - media);
        }
        let dropped = "hlsd_live_dropped_frames";
        let _ = write!(
            out,
            "# HELP {dropped} Video frames a running live dropped (packets its decoder refused; the picture is concealed). Frames are never dropped to keep up: a live that cannot falls behind.\n# TYPE {dropped} gauge\n"
        );
        for (id, (_, _, n)) in lives.iter() {
            let _ = writeln!(out, "{dropped}{{video=\"{id}\"}} {n}");
        }
    }

    fn render_requests(&self, out: &mut String) {
        out.push_str("# HELP hlsd_http_requests_total HTTP requests by route and status.\n# TYPE hlsd_http_requests_total counter\n");
        for ((route, status), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "hlsd_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP hlsd_http_request_duration_seconds Time to the response head, by route.\n# TYPE hlsd_http_request_duration_seconds histogram\n");
        for (route, h) in lock(&self.latency).iter() {
            for (le, c) in LATENCY_BUCKETS.iter().zip(h.buckets) {
                let _ = writeln!(out, "hlsd_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {c}");
            }
            let _ = writeln!(
                out,
                "hlsd_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n\
                 hlsd_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n\
                 hlsd_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count, h.sum, h.count
            );
        }
    }
}

impl Metrics {
    fn render_webhooks(&self, out: &mut String, pending: u64) {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = write!(
            out,
            "# HELP hlsd_webhook_deliveries_total Webhook delivery attempts by result.\n\
             # TYPE hlsd_webhook_deliveries_total counter\n\
             hlsd_webhook_deliveries_total{{result=\"delivered\"}} {}\n\
             hlsd_webhook_deliveries_total{{result=\"failed\"}} {}\n\
             hlsd_webhook_deliveries_total{{result=\"dropped\"}} {}\n\
             # HELP hlsd_webhook_pending Webhook deliveries waiting (retries included).\n\
             # TYPE hlsd_webhook_pending gauge\n\
             hlsd_webhook_pending {pending}\n",
            load(&self.webhooks_delivered),
            load(&self.webhooks_failed),
            load(&self.webhooks_dropped),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_labels_and_histograms() {
        let m = Metrics::default();
        m.request("play", 200, 0.003);
        m.request("play", 200, 2.0);
        m.upload_rejected("too_large");
        m.job_finished(2.0, 8.0, 240);
        let text = m.render(&Gauges::default());
        assert!(text.contains("hlsd_http_requests_total{route=\"play\",status=\"200\"} 2"));
        assert!(text
            .contains("hlsd_http_request_duration_seconds_bucket{route=\"play\",le=\"0.005\"} 1"));
        assert!(text
            .contains("hlsd_http_request_duration_seconds_bucket{route=\"play\",le=\"+Inf\"} 2"));
        assert!(text.contains("hlsd_uploads_rejected_total{reason=\"too_large\"} 1"));
        assert!(text.contains("hlsd_realtime_factor 4"));
        assert!(text.contains("hlsd_frames_encoded_total 240"));
    }
}

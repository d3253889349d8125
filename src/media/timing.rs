//! Timestamp arithmetic shared by the job's stages.

use ffmpeg_next::{Packet, Rational};

/// Subtracts `offset` from a packet's timestamps.
pub(crate) fn shift(p: &mut Packet, offset: i64) {
    p.set_pts(p.pts().map(|t| t - offset));
    p.set_dts(p.dts().map(|t| t - offset));
}

pub(crate) const MICROS: Rational = Rational(1, 1_000_000);

/// `v * from / to`, in i128 so large timestamps cannot overflow.
pub(crate) fn rescale(v: i64, from: Rational, to: Rational) -> i64 {
    let num = i128::from(v) * i128::from(from.numerator()) * i128::from(to.denominator());
    let den = i128::from(from.denominator()) * i128::from(to.numerator());
    if den == 0 {
        return 0;
    }
    i64::try_from(num / den).unwrap_or(0)
}

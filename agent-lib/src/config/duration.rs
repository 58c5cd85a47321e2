//! Go-style durations (`time.ParseDuration`), which the original Go agent accepted for
//! `agent.hotplug_timeout`, and the timeout rule shared by every source.
//!
//! Grammar: an optional sign, then either `0` or one or more `<number><unit>` pairs with no
//! separator, e.g. `10s`, `1m30s`, `1.5h`, `.5s`, `2h45m`, `300us`. A number is digits with an
//! optional fraction (`1.`, `.5` and `1.5` are all numbers). Units: `ns`, `us`, `µs` (U+00B5),
//! `μs` (U+03BC), `ms`, `s`, `m`, `h`. Like Go, a magnitude above `i64::MAX` nanoseconds
//! (about 292 years) is out of range, so no caller can overflow an `Instant` with a parsed
//! timeout. Fractions finer than a nanosecond are truncated.

use std::time::Duration;

/// The largest duration accepted anywhere in the configuration: `i64::MAX` nanoseconds, Go's
/// `time.Duration` limit.
pub const MAX_DURATION: Duration = Duration::new(9_223_372_036, 854_775_807);

const MAX_NANOS: u128 = i64::MAX as u128;
/// Fraction digits kept; more cannot change a nanosecond count of any supported unit.
const MAX_FRACTION_DIGITS: usize = 20;

/// Why a string is not a Go duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string (after any sign) is empty.
    #[error("empty duration")]
    Empty,
    /// A number is not followed by a unit (only a bare `0` may omit it).
    #[error("missing unit after a number")]
    MissingUnit,
    /// The unit is not one of `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`.
    #[error("unknown unit {0:?}")]
    UnknownUnit(String),
    /// A unit without a number before it, or other malformed text.
    #[error("expected a number")]
    ExpectedNumber,
    /// More than `i64::MAX` nanoseconds.
    #[error("duration out of range")]
    OutOfRange,
}

/// A parsed Go duration: Go durations are signed, [`Duration`] is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoDuration {
    /// `true` when the text started with `-` and the magnitude is not zero.
    pub negative: bool,
    /// The absolute value.
    pub magnitude: Duration,
}

impl GoDuration {
    /// The duration if it is strictly positive.
    pub fn positive(self) -> Option<Duration> {
        (!self.negative && !self.magnitude.is_zero()).then_some(self.magnitude)
    }
}

/// Parse `text` as Go's `time.ParseDuration` would.
pub fn parse_go_duration(text: &str) -> Result<GoDuration, DurationError> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest.is_empty() {
        return Err(DurationError::Empty);
    }
    if rest == "0" {
        return Ok(GoDuration {
            negative: false,
            magnitude: Duration::ZERO,
        });
    }

    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (nanos, tail) = parse_component(rest)?;
        total = total
            .checked_add(nanos)
            .filter(|t| *t <= MAX_NANOS)
            .ok_or(DurationError::OutOfRange)?;
        rest = tail;
    }

    let magnitude = nanos_to_duration(total);
    Ok(GoDuration {
        negative: negative && !magnitude.is_zero(),
        magnitude,
    })
}

/// Parse one `<number><unit>` pair at the start of `text`; return its nanoseconds and the tail.
fn parse_component(text: &str) -> Result<(u128, &str), DurationError> {
    let (whole, rest) = split_digits(text);
    let (fraction, rest) = match rest.strip_prefix('.') {
        Some(after_dot) => split_digits(after_dot),
        None => ("", rest),
    };
    if whole.is_empty() && fraction.is_empty() {
        return Err(DurationError::ExpectedNumber);
    }

    let unit_len = rest
        .find(|c: char| c == '.' || c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (unit, tail) = rest.split_at(unit_len);
    if unit.is_empty() {
        return Err(DurationError::MissingUnit);
    }
    let unit_nanos = unit_nanos(unit).ok_or_else(|| DurationError::UnknownUnit(unit.into()))?;

    let mut nanos = digits_value(whole)?
        .checked_mul(unit_nanos)
        .ok_or(DurationError::OutOfRange)?;
    if !fraction.is_empty() {
        let kept = &fraction[..fraction.len().min(MAX_FRACTION_DIGITS)];
        let scale = 10u128.pow(kept.len() as u32);
        let numerator = kept
            .bytes()
            .fold(0u128, |acc, b| acc * 10 + u128::from(b - b'0'));
        // numerator < 10^20 and unit_nanos <= 3.6e12, so the product fits in a u128.
        nanos = nanos
            .checked_add(numerator * unit_nanos / scale)
            .ok_or(DurationError::OutOfRange)?;
    }
    Ok((nanos, tail))
}

fn split_digits(text: &str) -> (&str, &str) {
    let len = text.bytes().take_while(u8::is_ascii_digit).count();
    text.split_at(len)
}

/// The value of a run of ASCII digits (empty = 0), refusing anything beyond the duration range.
fn digits_value(digits: &str) -> Result<u128, DurationError> {
    digits.bytes().try_fold(0u128, |acc, b| {
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(b - b'0')))
            .filter(|v| *v <= MAX_NANOS)
            .ok_or(DurationError::OutOfRange)
    })
}

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        _ => return None,
    })
}

fn nanos_to_duration(nanos: u128) -> Duration {
    // nanos <= i64::MAX, so the seconds fit in a u64 and the remainder in a u32.
    Duration::new(
        (nanos / 1_000_000_000) as u64,
        (nanos % 1_000_000_000) as u32,
    )
}

/// Why a timeout value was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TimeoutError {
    /// Zero or negative: ignored, as Kata and the Go agent do.
    NotPositive,
    /// Not a number of seconds nor a Go duration, or out of range.
    Invalid(String),
}

/// Parse a timeout as written on the command line or as a string in the config file: whole
/// seconds (`10`, Kata's form) or a Go duration (`10s`, the Go agent's form).
pub(crate) fn parse_timeout(text: &str) -> Result<Duration, TimeoutError> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        let secs = digits_value(unsigned).map_err(|e| TimeoutError::Invalid(e.to_string()))?;
        return if text.starts_with('-') {
            Err(TimeoutError::NotPositive)
        } else {
            timeout_from_secs(secs)
        };
    }
    match parse_go_duration(text) {
        Ok(d) => d.positive().ok_or(TimeoutError::NotPositive),
        Err(e) => Err(TimeoutError::Invalid(format!(
            "{e}: expected whole seconds (`10`) or a Go duration (`10s`, `1m30s`, `500ms`)"
        ))),
    }
}

/// A timeout of `secs` whole seconds (`u128` so callers need not pre-check the range).
pub(crate) fn timeout_from_secs(secs: u128) -> Result<Duration, TimeoutError> {
    if secs == 0 {
        return Err(TimeoutError::NotPositive);
    }
    u64::try_from(secs)
        .ok()
        .map(Duration::from_secs)
        .filter(|d| *d <= MAX_DURATION)
        .ok_or_else(|| TimeoutError::Invalid(DurationError::OutOfRange.to_string()))
}

/// Check a timeout built from parts (the config file's `{secs, nanos}` table).
pub(crate) fn check_timeout(d: Duration) -> Result<Duration, TimeoutError> {
    if d.is_zero() {
        Err(TimeoutError::NotPositive)
    } else if d > MAX_DURATION {
        Err(TimeoutError::Invalid(DurationError::OutOfRange.to_string()))
    } else {
        Ok(d)
    }
}

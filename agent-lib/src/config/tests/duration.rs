use std::time::Duration;

use super::super::duration::{TimeoutError, parse_timeout};
use super::super::{DurationError, GoDuration, MAX_DURATION, parse_go_duration};

const NS: u64 = 1;
const US: u64 = 1_000;
const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;
const M: u64 = 60 * S;
const H: u64 = 60 * M;

fn ns(n: u64) -> Duration {
    Duration::from_nanos(n)
}

#[test]
fn go_durations_parse_like_go() {
    // (text, negative, nanoseconds); cases after Go's time.ParseDuration tests.
    let cases: &[(&str, bool, u64)] = &[
        ("0", false, 0),
        ("-0", false, 0),
        ("+0", false, 0),
        ("0s", false, 0),
        ("-0s", false, 0),
        ("5s", false, 5 * S),
        ("30s", false, 30 * S),
        ("1478s", false, 1478 * S),
        ("-5s", true, 5 * S),
        ("+5s", false, 5 * S),
        ("-0.5s", true, S / 2),
        ("5.0s", false, 5 * S),
        ("5.6s", false, 5 * S + 600 * MS),
        ("5.s", false, 5 * S),
        (".5s", false, S / 2),
        ("1.0s", false, S),
        ("1.00s", false, S),
        ("1.004s", false, S + 4 * MS),
        ("1.0040s", false, S + 4 * MS),
        ("100.00100s", false, 100 * S + MS),
        ("10ns", false, 10 * NS),
        ("11us", false, 11 * US),
        ("12\u{b5}s", false, 12 * US),
        ("12\u{3bc}s", false, 12 * US),
        ("300µs", false, 300 * US),
        ("13ms", false, 13 * MS),
        ("500ms", false, 500 * MS),
        ("14s", false, 14 * S),
        ("15m", false, 15 * M),
        ("16h", false, 16 * H),
        ("1.5h", false, 90 * M),
        ("1m30s", false, 90 * S),
        ("2h45m", false, 165 * M),
        ("3h30m", false, 3 * H + 30 * M),
        ("10.5s4m", false, 4 * M + 10 * S + 500 * MS),
        ("-2m3.4s", true, 2 * M + 3 * S + 400 * MS),
        (
            "1h2m3s4ms5us6ns",
            false,
            H + 2 * M + 3 * S + 4 * MS + 5 * US + 6 * NS,
        ),
        ("39h9m14.425s", false, 39 * H + 9 * M + 14 * S + 425 * MS),
        ("52763797000ns", false, 52_763_797_000),
        ("0.100000000000000000000h", false, 6 * M),
        ("9007199254740993ns", false, 9_007_199_254_740_993),
        ("9223372036854775807ns", false, i64::MAX as u64),
        ("9223372036854775.807us", false, i64::MAX as u64),
        ("9223372036s854ms775us807ns", false, i64::MAX as u64),
        ("1.0000000000000000000000000001s", false, S),
    ];
    for &(text, negative, nanos) in cases {
        let want = GoDuration {
            negative,
            magnitude: ns(nanos),
        };
        assert_eq!(parse_go_duration(text), Ok(want), "{text}");
    }
}

#[test]
fn malformed_go_durations_are_errors() {
    let unit = |u: &str| DurationError::UnknownUnit(u.into());
    let cases: &[(&str, DurationError)] = &[
        ("", DurationError::Empty),
        ("-", DurationError::Empty),
        ("+", DurationError::Empty),
        ("3", DurationError::MissingUnit),
        ("10", DurationError::MissingUnit),
        ("1.5", DurationError::MissingUnit),
        ("1s2", DurationError::MissingUnit),
        ("s", DurationError::ExpectedNumber),
        (".", DurationError::ExpectedNumber),
        ("-.", DurationError::ExpectedNumber),
        (".s", DurationError::ExpectedNumber),
        ("+.s", DurationError::ExpectedNumber),
        ("1h-5m", unit("h-")),
        ("--5s", DurationError::ExpectedNumber),
        ("1d", unit("d")),
        ("10 s", unit(" s")),
        ("4jbsdja", unit("jbsdja")),
        ("1S", unit("S")),
        ("3000000h", DurationError::OutOfRange),
        ("9223372036854775808ns", DurationError::OutOfRange),
        ("9223372036854775.808us", DurationError::OutOfRange),
        ("9223372036s854ms775us808ns", DurationError::OutOfRange),
        (
            "99999999999999999999999999999999999999999s",
            DurationError::OutOfRange,
        ),
    ];
    for (text, want) in cases {
        assert_eq!(parse_go_duration(text).as_ref(), Err(want), "{text}");
    }
}

#[test]
fn positive_keeps_only_strictly_positive_values() {
    let pos = |s| parse_go_duration(s).unwrap().positive();
    assert_eq!(pos("1ns"), Some(ns(1)));
    assert_eq!(pos("0"), None);
    assert_eq!(pos("0s"), None);
    assert_eq!(pos("-1s"), None);
}

#[test]
fn timeouts_take_seconds_or_go_durations() {
    let ok: &[(&str, Duration)] = &[
        ("1", Duration::from_secs(1)),
        ("10", Duration::from_secs(10)),
        ("+10", Duration::from_secs(10)),
        ("3600", Duration::from_secs(3600)),
        ("10s", Duration::from_secs(10)),
        ("1m30s", Duration::from_secs(90)),
        ("500ms", Duration::from_millis(500)),
        ("1.5h", Duration::from_secs(5400)),
        ("300us", Duration::from_micros(300)),
        ("300µs", Duration::from_micros(300)),
        ("2h45m", Duration::from_secs(9900)),
        ("9223372036", Duration::from_secs(9_223_372_036)),
        ("9223372036854775807ns", MAX_DURATION),
    ];
    for &(text, want) in ok {
        assert_eq!(parse_timeout(text), Ok(want), "{text}");
    }

    let not_positive = ["0", "-0", "-1", "-10", "0s", "-5s", "-1m30s", "0.0h"];
    for text in not_positive {
        assert_eq!(
            parse_timeout(text),
            Err(TimeoutError::NotPositive),
            "{text}"
        );
    }

    let invalid = [
        "",
        "foo",
        "j",
        "4jbsdja",
        "1.5",
        "10x",
        "1h-5m",
        " 10",
        "10 ",
        "0x10",
        "9223372037",
        "99999999999999999999999",
        "3000000h",
    ];
    for text in invalid {
        assert!(
            matches!(parse_timeout(text), Err(TimeoutError::Invalid(_))),
            "{text}: {:?}",
            parse_timeout(text)
        );
    }
}
